using System.Diagnostics.Metrics;
using Azure.Storage.Blobs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using MlFunctions.Serving;
using MlFunctions.Serving.Online;

namespace MlFunctions.Api.Inference;

public static class InferenceServiceCollectionExtensions
{
    /// <summary>
    /// Registers the dataplane and the handlers. The host must also register an <see cref="Core.Registry.IModelRegistry"/>
    /// (e.g. <c>BlobModelRegistry</c> over the <c>models</c> container) and either a <see cref="BlobServiceClient"/>
    /// (for the default <see cref="BlobArtifactStore"/>) or its own <see cref="IArtifactStore"/>.
    /// </summary>
    public static IServiceCollection AddInferenceServing(this IServiceCollection services, Action<ServingOptions>? configure = null)
    {
        var options = new ServingOptions();
        configure?.Invoke(options);
        services.TryAddSingleton(options);
        services.TryAddSingleton(sp => new ServingMetrics(sp.GetService<IMeterFactory>()));
        services.TryAddSingleton<ServingStats>();
        services.AddHostedService<ServingStats.Starter>();
        services.TryAddSingleton<IArtifactStore>(sp => new BlobArtifactStore(sp.GetRequiredService<BlobServiceClient>()));
        services.TryAddSingleton<ISessionFactory>(sp =>
        {
            var o = sp.GetRequiredService<ServingOptions>();
            return new OrtSessionFactory(OrtSessionFactory.ProvidersFor(o), o.IntraOpNumThreads, sp.GetService<ILogger<OrtSessionFactory>>());
        });
        services.TryAddSingleton(sp => new ModelRepository(
            sp.GetRequiredService<Core.Registry.IModelRegistry>(),
            sp.GetRequiredService<IArtifactStore>(),
            sp.GetRequiredService<ISessionFactory>(),
            sp.GetRequiredService<ServingOptions>(),
            sp.GetRequiredService<ServingMetrics>(),
            sp.GetService<ILogger<ModelRepository>>()));
        services.TryAddSingleton<IPayloadSink>(sp => new BlobPayloadSink(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(sp.GetRequiredService<ServingOptions>().PayloadLogging.Container)));
        services.TryAddSingleton(sp => new PayloadLogger(
            sp.GetRequiredService<ServingOptions>().PayloadLogging,
            sp.GetRequiredService<IPayloadSink>(),
            sp.GetRequiredService<ServingMetrics>(),
            sp.GetService<ILogger<PayloadLogger>>()));
        services.TryAddSingleton(sp => new InferenceDataplane(
            sp.GetRequiredService<ModelRepository>(),
            sp.GetRequiredService<ServingOptions>(),
            sp.GetRequiredService<ServingMetrics>(),
            sp.GetService<ILogger<InferenceDataplane>>(),
            sp.GetRequiredService<PayloadLogger>()));
        // Policies, learned state and the request journal live beside the registry, in the "serving" container.
        services.TryAddSingleton(sp => new BlobServingStore(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(BlobServingStore.DefaultContainerName)));
        services.TryAddSingleton(sp => new PolicyRouter(sp.GetRequiredService<BlobServingStore>(), sp.GetRequiredService<ServingOptions>()));
        services.TryAddSingleton(sp => new InferenceHandlers(
            sp.GetRequiredService<InferenceDataplane>(),
            sp.GetRequiredService<Core.Registry.IModelRegistry>(),
            sp.GetService<ILogger<InferenceHandlers>>(),
            sp.GetRequiredService<PolicyRouter>()));
        return services;
    }
}
