using Microsoft.DurableTask;

namespace MlFunctions.Orchestrations;

/// <summary>Timer helpers for orchestrations.</summary>
public static class DurableTime
{
    /// <summary>
    /// Waits until <paramref name="fireAt"/> on the orchestration clock. The Azure Storage backend
    /// schedules a timer as a queue message whose visibility delay is whole seconds, so a timer can
    /// fire up to a second early (seen on Azurite: a 2 s timer after 1.1 s). Re-arming until the
    /// replay-safe clock has passed the deadline makes deadlines exact, and stays deterministic.
    /// </summary>
    public static async Task WaitUntilAsync(this TaskOrchestrationContext context, DateTime fireAt, CancellationToken cancellation = default)
    {
        while (context.CurrentUtcDateTime < fireAt)
        {
            await context.CreateTimer(fireAt, cancellation);
        }
    }
}
