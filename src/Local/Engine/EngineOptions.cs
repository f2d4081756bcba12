namespace MlFunctions.Local.Engine;

/// <summary>
/// Settings of the embedded Durable Task engine. The defaults are the ones measured on Azurite for
/// issue #2: table partition management (first orchestration in ~1 s instead of ~6 s with blob
/// leases), 1 s queue polling, 100 concurrent activities, and a 15 s work-item visibility timeout,
/// which is how long a restart after kill -9 waits for the lost in-flight message (DTFx renews the
/// lock of a running activity by itself, so a short timeout is safe).
/// </summary>
public sealed class EngineOptions
{
    public required string StorageConnectionString { get; init; }

    /// <summary>The same value Functions reads from host.json's durableTask.hubName.</summary>
    public const string DefaultTaskHubName = "MlFunctionsHub";

    /// <summary>The task hub a host configured this way uses; one place for the setting and its default.</summary>
    public static string TaskHubFrom(Microsoft.Extensions.Configuration.IConfiguration configuration) =>
        configuration["Local:TaskHub"] ?? DefaultTaskHubName;

    /// <summary>Task hub name (<c>Local:TaskHub</c>, default <see cref="DefaultTaskHubName"/>).</summary>
    public string TaskHubName { get; init; } = DefaultTaskHubName;

    /// <summary>
    /// Must differ per process: two processes with the same id on one task hub steal each other's
    /// partitions ("split brain") and abort work items.
    /// </summary>
    public string WorkerId { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}";

    public int MaxConcurrentActivities { get; init; } = 100;

    public int MaxConcurrentOrchestrations { get; init; } = 100;

    public int PartitionCount { get; init; } = 4;

    /// <summary>
    /// Off by default, as in Durable Functions: it saves replays on big fan-outs (1,000-way: 52/s instead
    /// of 41/s here), but it keeps orchestrations in one process's memory, and the scale-out test of two
    /// hosts on one task hub once stalled with it on under heavy load.
    /// </summary>
    public bool ExtendedSessions { get; init; }

    /// <summary>Concurrent activity fetch loops on the work-item queue (see <see cref="ParallelFetchService"/>).</summary>
    public int ActivityDispatchers { get; init; } = 4;

    public TimeSpan MaxQueuePollingInterval { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan WorkItemVisibilityTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long a control-queue message (an activity result, a sub-orchestration completion, an event)
    /// stays invisible after a host dequeues it. DTFx's default is 5 minutes: a host killed with messages
    /// in hand left its orchestrations stalled that long before the next partition owner saw them again
    /// (a killed sweep waited 5 minutes for one activity result). Episodes here take milliseconds, so 30 s
    /// loses nothing and a crashed host's work resumes within about a lease interval.
    /// </summary>
    public TimeSpan ControlQueueVisibilityTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
