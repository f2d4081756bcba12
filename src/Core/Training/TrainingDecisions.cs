namespace MlFunctions.Core.Training;

/// <summary>What TrainModel does with one event from its worker or its parent.</summary>
public enum TrainingAction
{
    /// <summary>Nothing: an event of an earlier attempt that is not a result, or an unknown kind.</summary>
    Ignore,

    /// <summary>A parent asked to stop: write the stop marker and keep waiting for the stopped result.</summary>
    RequestStop,

    /// <summary>The job ended with a result (completed, or stopped early): return it.</summary>
    Finish,

    /// <summary>This attempt failed: dispatch the next one if any is left.</summary>
    FailAttempt,

    /// <summary>An epoch's metrics: track them, forward them to the parent, renew the deadline.</summary>
    Progress,

    /// <summary>The worker is alive: renew the deadline.</summary>
    Heartbeat,
}

/// <summary>A decision about one event; <see cref="Result"/>, <see cref="Failure"/> and <see cref="Metrics"/> go with their actions.</summary>
public sealed record TrainingStep(TrainingAction Action, TrainingResult? Result = null, string? Failure = null, EpochMetrics? Metrics = null);

/// <summary>TrainModel's decisions as pure functions, so its orchestration is an event loop around them.</summary>
public static class TrainingDecisions
{
    /// <summary>
    /// What an event means during <paramref name="attempt"/>. Events from an earlier attempt's worker may
    /// still arrive: only a result counts from them (that worker did finish the job).
    /// </summary>
    public static TrainingStep OnEvent(TrainingEvent evt, int attempt)
    {
        var current = evt.Attempt >= attempt;
        return evt.Kind switch
        {
            TrainingEvents.StopRequested => new TrainingStep(TrainingAction.RequestStop),
            TrainingEvents.Completed when evt.Result is not null => new TrainingStep(TrainingAction.Finish, evt.Result),
            TrainingEvents.Stopped when evt.Result is not null => new TrainingStep(TrainingAction.Finish, evt.Result with { StoppedEarly = true }),
            TrainingEvents.Failed when current => new TrainingStep(TrainingAction.FailAttempt, Failure: $"attempt {attempt}: {evt.Error ?? "the worker reported a failure without a reason"}"),
            TrainingEvents.Progress when current && evt.Metrics is not null => new TrainingStep(TrainingAction.Progress, Metrics: evt.Metrics),
            TrainingEvents.Heartbeat when current => new TrainingStep(TrainingAction.Heartbeat),
            _ => new TrainingStep(TrainingAction.Ignore),
        };
    }

    /// <summary>The reason an attempt failed when its worker went silent past the heartbeat timeout.</summary>
    public static string Silent(int attempt, TimeSpan timeout) => $"attempt {attempt}: no event from the worker for {timeout.TotalSeconds:F0} s";

    /// <summary>The job's failure once every attempt failed, with the last reason.</summary>
    public static string Exhausted(string jobId, int maxAttempts, string lastFailure) =>
        $"training job {jobId} failed after {maxAttempts} attempt(s); last failure: {lastFailure}";

    /// <summary>The custom status after a result: epochs done, last metrics, completed or stopped early.</summary>
    public static TrainModelStatus Finished(string jobId, int attempt, TrainingResult result) =>
        new(jobId, attempt, result.History.Count, result.History.LastOrDefault(), result.StoppedEarly ? "stopped early" : "completed");
}
