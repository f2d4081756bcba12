using Azure.Core.Serialization;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MlFunctions.Activities;
using MlFunctions.Activities.Probes;
using MlFunctions.Activities.Storage;
using MlFunctions.Activities.Training;
using MlFunctions.Core.Json;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using MlFunctions.Activities.Registry;
using MlFunctions.Api.Inference;
using MlFunctions.Api.Pipelines;
using MlFunctions.Core.Registry;

var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();

// The same JSON settings as the local engine, so payloads stored in the task hub look the same
// whichever host wrote them.
builder.Services.Configure<WorkerOptions>(options => options.Serializer = new JsonObjectSerializer(MlJson.Options));
builder.Services.AddMlActivities();
builder.Services.AddSingleton<MlFunctions.Api.Sweeps.SweepHandlers>();
builder.Services.AddSingleton<MlFunctions.Api.Tracking.TrackingHandlers>();
builder.Services.AddSingleton<MlFunctions.Api.Pipelines.PipelineRunHandlers>();
builder.Services.AddSingleton<MlFunctions.Api.Pipelines.PipelineHandlers>();
builder.Services.AddSingleton<RolloutHandlers>();
builder.Services.AddSingleton<MlFunctions.Api.Datasets.DatasetHandlers>();
builder.Services.AddSingleton<IStorageClients>(_ => new ConnectionStringStorageClients(_ =>
    Task.FromResult(builder.Configuration["AzureWebJobsStorage"] ?? throw new InvalidOperationException("AzureWebJobsStorage is not set"))));
builder.Services.Configure<DispatchOptions>(builder.Configuration.GetSection("Dispatch"));
builder.Services.AddInferenceServing(options => builder.Configuration.GetSection("Serving").Bind(options));
builder.Services.AddSingleton(sp => sp.GetRequiredService<IStorageClients>().BlobsAsync().GetAwaiter().GetResult());
builder.Services.AddSingleton<IModelRegistry>(sp =>
    new BlobModelRegistry(sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(BlobModelRegistry.DefaultContainerName)));
builder.Services.Configure<ProbeOptions>(builder.Configuration.GetSection("Probe"));
builder.Services.Configure<MlFunctions.Activities.Datasets.DatasetOptions>(builder.Configuration.GetSection("Datasets"));
builder.Services.AddPipelineTriggers(builder.Configuration);
builder.Services.AddPipelineAutomation(builder.Configuration);

builder.Build().Run();
