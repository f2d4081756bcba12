namespace MlFunctions.Core;

/// <summary>
/// The one place where orchestration and activity names live. Orchestrations call each other and their
/// activities only through these constants, and both hosts register exactly these names, so a typo
/// cannot split the two hosts apart.
/// </summary>
public static class OrchestrationNames
{
    public const string FanOutProbe = "FanOutProbe";
    public const string TrainModel = "TrainModel";
    public const string HyperparameterSweep = "HyperparameterSweep";
    public const string StandInTrial = "StandInTrial";
    public const string CrossValidate = "CrossValidate";

    /// <summary>
    /// No longer an orchestration: MNIST is <see cref="Pipelines.BuiltInPipelines.Mnist"/> on <see cref="TrainingPipeline"/>.
    /// The name stays for the start route that still accepts an <c>MnistPipelineInput</c> and for runs started before.
    /// </summary>
    public const string MnistPipeline = "MnistPipeline";
    public const string TrainingPipeline = "TrainingPipeline";
    public const string Rollout = "Rollout";
}

public static class ActivityNames
{
    public const string ProbeStep = "ProbeStep";
    public const string RegisterDataset = "RegisterDataset";
    public const string ValidateDataset = "ValidateDataset";
    public const string TransformDataset = "TransformDataset";
    public const string DispatchTraining = "DispatchTraining";
    public const string RequestTrainingStop = "RequestTrainingStop";
    public const string SuggestTrials = "SuggestTrials";
    public const string EvaluateStandInTrial = "EvaluateStandInTrial";
    public const string TrackSweep = "TrackSweep";

    /// <summary>Upserts the sweep's view of finished trials, a batch per call (the sweep keeps one call in flight).</summary>
    public const string TrackTrials = "TrackTrials";

    /// <summary>Upserts a tracking run (start, end) of any training run: trial, retrain or bare TrainModel.</summary>
    public const string TrackRun = "TrackRun";

    /// <summary>Writes one epoch's metrics of a tracking run (idempotent: keyed by run id and step).</summary>
    public const string TrackRunStep = "TrackRunStep";
    public const string LookupStepCache = "LookupStepCache";
    public const string StoreStepCache = "StoreStepCache";
    public const string RecordLineage = "RecordLineage";
    public const string EvaluateModel = "EvaluateModel";

    /// <summary>Majority-class and logistic-regression baselines on the cross-validation folds of train+val.</summary>
    public const string CrossValidateBaselines = "CrossValidateBaselines";
    public const string ExportModel = "ExportModel";
    public const string GetModelAlias = "GetModelAlias";
    public const string RegisterModelVersion = "RegisterModelVersion";
    public const string MoveModelAlias = "MoveModelAlias";
    public const string SmokeInference = "SmokeInference";
    public const string WriteRunReport = "WriteRunReport";
    public const string TerminateInstance = "TerminateInstance";
    public const string SetRoutingPolicy = "SetRoutingPolicy";
    public const string ReadRolloutStats = "ReadRolloutStats";
}

/// <summary>
/// Instance-id conventions of a pipeline run's children, in one place: the run's sweep is <c>{run}-sweep</c>,
/// its trials <c>{run}-sweep-t001</c>…, the final retrain <c>{run}-retrain</c>. Progress displays find them by these.
/// </summary>
public static class InstanceIds
{
    public static string Sweep(string runId) => $"{runId}-sweep";

    public static string Trial(string sweepId, int index) => $"{sweepId}-t{index:D3}";

    public static string Retrain(string runId) => $"{runId}-retrain";

    /// <summary>The pipeline's cross-validation of the best configuration (folds are <c>{id}-f0</c>…).</summary>
    public static string CrossValidation(string runId) => $"{runId}-cv";

    /// <summary>The pipeline run a sweep belongs to, when its id follows <see cref="Sweep"/>; otherwise null.</summary>
    public static string? RunOfSweep(string sweepId) =>
        sweepId.EndsWith("-sweep", StringComparison.Ordinal) && sweepId.Length > "-sweep".Length ? sweepId[..^"-sweep".Length] : null;
}
