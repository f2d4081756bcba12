using Microsoft.DurableTask;

namespace MlFunctions.Orchestrations.Pipelines;

/// <summary>A pipeline step failed after its attempts; its Failed lineage record is already stored.</summary>
public class PipelineStepFailedException : Exception
{
    public PipelineStepFailedException(string step, int attempts, string reason, TaskFailureDetails? failure = null, Exception? inner = null)
        : base($"step '{step}' failed after {attempts} attempt(s): {reason}", inner)
    {
        Step = step;
        Attempts = attempts;
        Reason = reason;
        Failure = failure;
    }

    public string Step { get; }

    public int Attempts { get; }

    public string Reason { get; }

    /// <summary>The last attempt's failure as Durable reported it (type, message, inner failures).</summary>
    public TaskFailureDetails? Failure { get; }
}

/// <summary>A step did not finish within its <see cref="StepOptions.Timeout"/>.</summary>
public sealed class PipelineStepTimeoutException(string step, int attempts, TimeSpan timeout)
    : PipelineStepFailedException(step, attempts, $"timed out after {timeout}")
{
    public TimeSpan Timeout { get; } = timeout;
}
