using DurableTask.AzureStorage;
using DurableTask.Core;
using Microsoft.DurableTask.Converters;
using Microsoft.DurableTask.Worker;
using Microsoft.DurableTask.Worker.Shims;
using Microsoft.Extensions.Logging;
using MlFunctions.Activities;
using MlFunctions.Core.Json;
using MlFunctions.Orchestrations;

namespace MlFunctions.Local.Engine;

/// <summary>
/// The embedded engine: DTFx's <see cref="TaskHubWorker"/> and <see cref="TaskHubClient"/> on the Azure
/// Storage backend (the one Durable Functions uses by default), with no gRPC sidecar in between.
/// </summary>
public sealed class DurableEngine : IAsyncDisposable
{
    private readonly AzureStorageOrchestrationService service;
    private readonly TaskHubWorker worker;
    private readonly CancellationTokenSource stopping;
    private readonly ILogger logger;
    private bool stopped;

    private DurableEngine(
        AzureStorageOrchestrationService service,
        TaskHubWorker worker,
        LocalDurableTaskClient client,
        IReadOnlyCollection<string> orchestrationNames,
        CancellationTokenSource stopping,
        ILogger logger)
    {
        this.service = service;
        this.worker = worker;
        Client = client;
        OrchestrationNames = orchestrationNames;
        this.stopping = stopping;
        this.logger = logger;
    }

    public LocalDurableTaskClient Client { get; }

    public IReadOnlyCollection<string> OrchestrationNames { get; }

    public static Microsoft.DurableTask.DataConverter SdkConverter { get; } = new JsonDataConverter(MlJson.Options);

    /// <summary>Starts a worker on the task hub with the product's catalog, plus optional extras (tests).</summary>
    public static async Task<DurableEngine> StartAsync(
        EngineOptions options,
        IServiceProvider services,
        ILoggerFactory loggerFactory,
        Action<ShimRegistry>? extra = null,
        Func<string, string?>? eventCallbackUri = null,
        CancellationToken cancellation = default)
    {
        var settings = new AzureStorageOrchestrationServiceSettings
        {
            StorageAccountClientProvider = new StorageAccountClientProvider(options.StorageConnectionString),
            TaskHubName = options.TaskHubName,
            WorkerId = options.WorkerId,
            UseTablePartitionManagement = true,

            // Without this the backend silently ignores a start whose id is already running.
            ThrowExceptionOnInvalidDedupeStatus = true,
            PartitionCount = options.PartitionCount,
            MaxConcurrentTaskActivityWorkItems = options.MaxConcurrentActivities,
            MaxConcurrentTaskOrchestrationWorkItems = options.MaxConcurrentOrchestrations,
            MaxQueuePollingInterval = options.MaxQueuePollingInterval,
            WorkItemQueueVisibilityTimeout = options.WorkItemVisibilityTimeout,
            ControlQueueVisibilityTimeout = options.ControlQueueVisibilityTimeout,

            // When on, keeps a running orchestration in memory between episodes instead of replaying its
            // history on every batch of activity results (see EngineOptions.ExtendedSessions).
            ExtendedSessionsEnabled = options.ExtendedSessions,
            ExtendedSessionIdleTimeout = TimeSpan.FromSeconds(30),
            LoggerFactory = loggerFactory,
        };

        var service = new AzureStorageOrchestrationService(settings);
        await service.CreateIfNotExistsAsync();

        var stopping = new CancellationTokenSource();
        var shims = new DurableTaskShimFactory(new DurableTaskWorkerOptions { DataConverter = SdkConverter }, loggerFactory);
        var registry = new ShimRegistry(shims, services, stopping.Token, eventCallbackUri);
        OrchestrationCatalog.Register(registry);
        ActivityCatalog.Register(registry);
        extra?.Invoke(registry);

        var worker = new TaskHubWorker(new ParallelFetchService(service, options.ActivityDispatchers), loggerFactory)
        {
            // The SDK shims turn FailureDetails into TaskFailedException; without this mode DTFx would
            // serialize exceptions its own way and the orchestration would see none of the details.
            ErrorPropagationMode = ErrorPropagationMode.UseFailureDetails,
        };
        worker.AddTaskOrchestrations(registry.Orchestrations.ToArray());
        worker.AddTaskActivities(registry.Activities.ToArray());
        await worker.StartAsync();

        var hubClient = new TaskHubClient(service, StjDataConverter.Instance, loggerFactory);
        var client = new LocalDurableTaskClient(options.TaskHubName, hubClient, service, SdkConverter);
        var logger = loggerFactory.CreateLogger<DurableEngine>();
        logger.LogInformation(
            "Durable engine started: task hub {Hub}, worker {Worker}, {Count} orchestrations",
            options.TaskHubName,
            options.WorkerId,
            registry.Orchestrations.Count);
        return new DurableEngine(service, worker, client, registry.OrchestrationNames, stopping, logger);
    }

    public async Task StopAsync()
    {
        if (stopped)
        {
            return;
        }

        stopped = true;
        await stopping.CancelAsync();
        try
        {
            // Not forced: in-flight activities finish or abandon their messages cleanly.
            await worker.StopAsync(isForced: false);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Durable engine did not stop cleanly");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        worker.Dispose();
        stopping.Dispose();
        GC.KeepAlive(service);
    }
}
