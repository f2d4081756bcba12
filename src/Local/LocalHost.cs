using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using MlFunctions.Activities;
using MlFunctions.Activities.Probes;
using MlFunctions.Activities.Storage;
using MlFunctions.Activities.Training;
using MlFunctions.Local.Engine;
using MlFunctions.Local.Http;
using MlFunctions.Local.Storage;
using Azure.Storage.Blobs;
using MlFunctions.Activities.Registry;
using MlFunctions.Api.Inference;
using MlFunctions.Api.Pipelines;
using MlFunctions.Local.Triggers;
using MlFunctions.Core.Registry;
using MlFunctions.Serving;
using OpenTelemetry.Metrics;

namespace MlFunctions.Local;

/// <summary>
/// Builds the embedded host: storage (Azurite unless AzureWebJobsStorage is set), the Durable engine,
/// the activities' services, keys and HTTP routes. <c>serve</c> runs it; tests build it in-process.
/// </summary>
public static class LocalHost
{
    public const string DefaultUrl = "http://127.0.0.1:7071";

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args });
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            // func's port, so scripts written against `func start` work against this host too.
            builder.WebHost.UseUrls(DefaultUrl);
        }

        // The engine and ASP.NET Core log every poll and request at Information; a person running the host
        // wants the product's own lines. Settings (Logging:LogLevel:...) still override these defaults.
        foreach (var noisy in new[] { "DurableTask", "Microsoft.DurableTask", "Microsoft.AspNetCore", "Microsoft.Hosting.Lifetime" })
        {
            if (builder.Configuration[$"Logging:LogLevel:{noisy}"] is null)
            {
                builder.Logging.AddFilter(noisy, Microsoft.Extensions.Logging.LogLevel.Warning);
            }
        }

        builder.Services.AddSingleton<LocalPaths>();
        builder.Services.AddSingleton<LocalStorage>();
        builder.Services.AddSingleton<ApiKeys>();
        builder.Services.AddSingleton<ManagementLinks>();
        builder.Services.AddSingleton<EngineService>();
        builder.Services.AddSingleton<IStorageClients>(sp =>
            new ConnectionStringStorageClients(ct => sp.GetRequiredService<LocalStorage>().GetConnectionStringAsync(ct)));
        builder.Services.Configure<DispatchOptions>(builder.Configuration.GetSection("Dispatch"));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<EngineService>());
        builder.Services.AddHostedService<Training.WorkerProcesses>();
        builder.Services.AddMlActivities();
        builder.Services.AddSingleton<MlFunctions.Core.Pipelines.IInstanceTerminator>(sp => new MlFunctions.Api.Durable.ClientTerminator(sp.GetRequiredService<EngineService>().Client));
        builder.Services.AddSingleton<MlFunctions.Api.Sweeps.SweepHandlers>();
        builder.Services.AddSingleton<MlFunctions.Api.Tracking.TrackingHandlers>();
        builder.Services.AddSingleton<MlFunctions.Api.Pipelines.PipelineRunHandlers>();
        builder.Services.AddSingleton<MlFunctions.Api.Pipelines.PipelineHandlers>();
        builder.Services.AddSingleton<RolloutHandlers>();
        builder.Services.AddSingleton<MlFunctions.Api.Datasets.DatasetHandlers>();
        builder.Services.Configure<ProbeOptions>(builder.Configuration.GetSection("Probe"));
        builder.Services.Configure<MlFunctions.Activities.Datasets.DatasetOptions>(builder.Configuration.GetSection("Datasets"));
        AddInference(builder);
        AddPipelineTriggers(builder);
        configure?.Invoke(builder);

        var app = builder.Build();
        DashboardFiles.Map(app);
        LocalRoutes.Map(app);
        return app;
    }

    /// <summary>
    /// The pipeline's upload and schedule triggers, which Functions has as blob and timer triggers. Registered
    /// after the engine, so they start once its client exists; each is cheap or off when not configured.
    /// </summary>
    private static void AddPipelineTriggers(WebApplicationBuilder builder)
    {
        builder.Services.AddPipelineTriggers(builder.Configuration);
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddHostedService(sp => new UploadWatcher(
            () => sp.GetRequiredService<EngineService>().Client,
            sp.GetRequiredService<IStorageClients>(),
            sp.GetRequiredService<PipelineTriggers>(),
            sp.GetRequiredService<ILogger<UploadWatcher>>()));
        builder.Services.AddPipelineAutomation(builder.Configuration);
        builder.Services.AddHostedService(sp => new PipelineUploadWatcher(
            () => sp.GetRequiredService<EngineService>().Client,
            sp.GetRequiredService<IStorageClients>(),
            sp.GetRequiredService<PipelineUploadTriggers>(),
            sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<PipelineAutomationOptions>>().Value,
            sp.GetRequiredService<ILogger<PipelineUploadWatcher>>()));
        builder.Services.AddHostedService(sp => new PipelineScheduleTimer(
            () => sp.GetRequiredService<EngineService>().Client,
            sp.GetRequiredService<PipelineScheduleRunner>(),
            sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<PipelineAutomationOptions>>().Value,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<PipelineScheduleTimer>>()));
        builder.Services.AddHostedService(sp => new ScheduledRetraining(
            () => sp.GetRequiredService<EngineService>().Client,
            sp.GetRequiredService<IStorageClients>(),
            sp.GetRequiredService<PipelineTriggers>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<ScheduledRetraining>>()));
    }

    /// <summary>The KServe dataplane over the blob-backed registry, and its meters on /metrics.</summary>
    private static void AddInference(WebApplicationBuilder builder)
    {
        builder.Services.AddInferenceServing(options => builder.Configuration.GetSection("Serving").Bind(options));

        // Resolved on first use, after the engine has started, so the storage connection (possibly an
        // Azurite this host started) is already known and the wait completes at once.
        builder.Services.AddSingleton(sp => sp.GetRequiredService<IStorageClients>().BlobsAsync().GetAwaiter().GetResult());
        builder.Services.AddSingleton<IModelRegistry>(sp =>
            new BlobModelRegistry(sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(BlobModelRegistry.DefaultContainerName)));
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(ServingMetrics.MeterName).AddPrometheusExporter());
    }
}
