using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MlFunctions.Local.Storage;

namespace MlFunctions.Local.Engine;

/// <summary>Starts the embedded engine with the host, before the HTTP server listens, and stops it last.</summary>
public sealed class EngineService(
    LocalStorage storage,
    IConfiguration configuration,
    IServiceProvider services,
    ILoggerFactory loggerFactory,
    Http.ManagementLinks links) : IHostedService, IAsyncDisposable
{
    private DurableEngine? engine;

    public DurableEngine Engine => engine ?? throw new InvalidOperationException("the durable engine has not started");

    public DurableTaskClient Client => Engine.Client;

    /// <summary>Extra registrations (tests add their own orchestrations); set before the host starts.</summary>
    public Action<ShimRegistry>? Extra { get; set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var local = configuration.GetSection("Local");
        var defaults = new EngineOptions { StorageConnectionString = string.Empty };
        var options = new EngineOptions
        {
            StorageConnectionString = await storage.GetConnectionStringAsync(cancellationToken),
            TaskHubName = EngineOptions.TaskHubFrom(configuration),
            WorkerId = local["WorkerId"] ?? defaults.WorkerId,
            MaxConcurrentActivities = local.GetValue("MaxConcurrentActivities", defaults.MaxConcurrentActivities),
            MaxConcurrentOrchestrations = local.GetValue("MaxConcurrentOrchestrations", defaults.MaxConcurrentOrchestrations),
            PartitionCount = local.GetValue("PartitionCount", defaults.PartitionCount),
            ExtendedSessions = local.GetValue("ExtendedSessions", defaults.ExtendedSessions),
            ActivityDispatchers = local.GetValue("ActivityDispatchers", defaults.ActivityDispatchers),
        };
        engine = await DurableEngine.StartAsync(options, services, loggerFactory, Extra, links.SendEventUri, cancellationToken);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (engine is not null)
        {
            await engine.StopAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (engine is not null)
        {
            await engine.DisposeAsync();
        }
    }
}
