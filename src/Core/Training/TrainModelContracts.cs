namespace MlFunctions.Core.Training;

/// <summary>Input of the <c>TrainModel</c> sub-orchestration.</summary>
/// <param name="Job">The job; its CallbackUri and Attempt are filled in per dispatch.</param>
/// <param name="MaxAttempts">Dispatches before giving up (a stale heartbeat or a failure uses one).</param>
/// <param name="HeartbeatTimeoutSeconds">
/// How long without any event from the worker before the job counts as lost and is re-dispatched
/// (the worker then resumes from its newest checkpoint). It covers queueing time for the first event.
/// </param>
/// <param name="ProgressTo">
/// An orchestration (a sweep) that gets a <c>TrialProgress</c> event after each epoch, to judge early stopping.
/// </param>
public sealed record TrainModelInput(TrainingJob Job, int MaxAttempts = 3, int HeartbeatTimeoutSeconds = 300, string? ProgressTo = null)
{
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(Job.JobId))
        {
            problems.Add("job.jobId is required");
        }

        if (string.IsNullOrWhiteSpace(Job.Model))
        {
            problems.Add("job.model is required");
        }

        if (Job.Hyperparameters.Epochs is < 1 or > 1000)
        {
            problems.Add($"job.hyperparameters.epochs must be between 1 and 1000, got {Job.Hyperparameters.Epochs}");
        }

        if (Job.Hyperparameters.BatchSize is < 1 or > 65536)
        {
            problems.Add($"job.hyperparameters.batchSize must be between 1 and 65536, got {Job.Hyperparameters.BatchSize}");
        }

        if (!(Job.Hyperparameters.LearningRate > 0))
        {
            problems.Add($"job.hyperparameters.learningRate must be positive, got {Job.Hyperparameters.LearningRate}");
        }

        if (Job.Hyperparameters.LrSchedule is not ("constant" or "cosine"))
        {
            problems.Add($"job.hyperparameters.lrSchedule must be 'constant' or 'cosine', got '{Job.Hyperparameters.LrSchedule}'");
        }

        if (Job.Fold is { } fold && (fold.Count < 2 || fold.Index < 0 || fold.Index >= fold.Count))
        {
            problems.Add($"job.fold must have count >= 2 and 0 <= index < count, got index {fold.Index} of {fold.Count}");
        }

        if (MaxAttempts is < 1 or > 20)
        {
            problems.Add($"maxAttempts must be between 1 and 20, got {MaxAttempts}");
        }

        if (HeartbeatTimeoutSeconds is < 5 or > 86_400)
        {
            problems.Add($"heartbeatTimeoutSeconds must be between 5 and 86400, got {HeartbeatTimeoutSeconds}");
        }

        return problems;
    }
}

/// <summary>What the dispatch activity needs: the job for this attempt and the calling instance.</summary>
public sealed record DispatchTrainingInput(TrainingJob Job, string InstanceId);

/// <summary>Where the job went: the queue message id or the Kubernetes Job name.</summary>
public sealed record DispatchTrainingResult(string Mode, string Target);

/// <summary>Custom status of a running TrainModel orchestration.</summary>
public sealed record TrainModelStatus(string JobId, int Attempt, int EpochsDone, EpochMetrics? Last, string State);
