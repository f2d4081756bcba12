using Microsoft.Extensions.Logging;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Activities.Pipelines;

/// <summary>
/// Terminates a child orchestration whose pipeline step ran past its deadline: without it, a timed-out sweep or
/// retrain would go on training (and holding workers) for a run that has already moved on or failed. Idempotent:
/// terminating an instance that already ended does nothing.
/// </summary>
public sealed class TerminateInstanceActivity(IInstanceTerminator terminator, ILogger<TerminateInstanceActivity> logger)
    : IActivity<TerminateInstanceInput, bool>
{
    public async Task<bool> RunAsync(TerminateInstanceInput input, ActivityCall call)
    {
        if (string.IsNullOrWhiteSpace(input.InstanceId))
            throw new ArgumentException("TerminateInstance needs an instance id.");
        var ended = await terminator.TerminateAsync(input.InstanceId, input.Reason, call.Cancellation);
        logger.LogWarning("Terminated {Instance} for {Caller}: {Reason} (was running: {Ended})", input.InstanceId, call.InstanceId, input.Reason, ended);
        return ended;
    }
}
