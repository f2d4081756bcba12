using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;

namespace MlFunctions.Orchestrations.Pipelines;

/// <summary>
/// The life-cycle steps every pipeline runs, defined once: name, code version (bump when a step's behaviour
/// changes, to invalidate its cache) and the cache content — content hashes and parameters, never blob names or paths.
/// </summary>
public static class PipelineSteps
{
    public static readonly PipelineStep<RegisterDatasetInput, RegisterDatasetResult> Register =
        PipelineStep<RegisterDatasetInput, RegisterDatasetResult>.Activity("register-dataset", "v1", ActivityNames.RegisterDataset, i => new { i.Name, i.Include });

    public static readonly PipelineStep<ValidateDatasetInput, ValidationReport> Validate =
        PipelineStep<ValidateDatasetInput, ValidationReport>.Activity("validate-dataset", "v2", ActivityNames.ValidateDataset, i => new { i.Dataset.ContentHash, i.Rules });

    public static readonly PipelineStep<TransformDatasetInput, TransformDatasetResult> Transform =
        PipelineStep<TransformDatasetInput, TransformDatasetResult>.Activity("transform-dataset", "v2", ActivityNames.TransformDataset, i => new { i.Dataset.ContentHash, i.Recipe });

    public static readonly PipelineStep<SweepInput, SweepResult> Sweep =
        PipelineStep<SweepInput, SweepResult>.SubOrchestration("sweep", "v1", OrchestrationNames.HyperparameterSweep, i => SweepContent(i.Spec));

    public static readonly PipelineStep<TrainModelInput, TrainingResult> Retrain =
        PipelineStep<TrainModelInput, TrainingResult>.SubOrchestration("retrain", "v1", OrchestrationNames.TrainModel, i => new
        {
            data = i.Job.Data.ContentHash,
            i.Job.Model,
            i.Job.Hyperparameters,
            i.Job.TrainOnValidation,
        });

    // v2: scored through the serving path (ModelScorer) on raw inputs, with the model's own transform.
    public static readonly PipelineStep<EvaluateModelInput, EvaluateModelResult> Evaluate =
        PipelineStep<EvaluateModelInput, EvaluateModelResult>.Activity("evaluate", "v2", ActivityNames.EvaluateModel, i => new { i.OnnxSha256, data = i.Data.ContentHash, i.Split, i.MaxSamples, i.Transform });

    // The best configuration on k stratified folds of train+val, and the baselines on the same folds (#12).
    public static readonly PipelineStep<CrossValidationInput, TrialOutcome> CrossValidateBest =
        PipelineStep<CrossValidationInput, TrialOutcome>.SubOrchestration("cross-validate", "v1", OrchestrationNames.CrossValidate, i => new
        {
            data = i.Job!.Data.ContentHash,
            i.Folds,
            i.Job.Model,
            i.Job.Hyperparameters,
        });

    public static readonly PipelineStep<CrossValidateBaselinesInput, CrossValidateBaselinesResult> Baselines =
        PipelineStep<CrossValidateBaselinesInput, CrossValidateBaselinesResult>.Activity("baselines", "v1", ActivityNames.CrossValidateBaselines, i => new { data = i.Data.ContentHash, i.Folds });

    public static readonly PipelineStep<GetModelAliasInput, ModelVersion?> GetChampion =
        PipelineStep<GetModelAliasInput, ModelVersion?>.Activity("get-champion", "v1", ActivityNames.GetModelAlias, i => i);

    public static readonly PipelineStep<EvaluateModelInput, EvaluateModelResult> EvaluateChampion =
        PipelineStep<EvaluateModelInput, EvaluateModelResult>.Activity("evaluate-champion", "v2", ActivityNames.EvaluateModel, i => new { i.OnnxSha256, data = i.Data.ContentHash, i.Split, i.MaxSamples, i.Transform });

    public static readonly PipelineStep<ExportModelInput, ExportModelResult> Export =
        PipelineStep<ExportModelInput, ExportModelResult>.Activity("export-onnx", "v1", ActivityNames.ExportModel, i => new { i.Model, i.OnnxSha256 });

    public static readonly PipelineStep<RegisterModelVersionInput, ModelVersion> RegisterVersion =
        PipelineStep<RegisterModelVersionInput, ModelVersion>.Activity("register-model", "v1", ActivityNames.RegisterModelVersion, i => new { i.Model, i.Draft.Sha256 });

    public static readonly PipelineStep<MoveModelAliasInput, ModelAlias> Promote =
        PipelineStep<MoveModelAliasInput, ModelAlias>.Activity("promote", "v1", ActivityNames.MoveModelAlias, i => i);

    public static readonly PipelineStep<SmokeInferenceInput, SmokeInferenceResult> Smoke =
        PipelineStep<SmokeInferenceInput, SmokeInferenceResult>.Activity("smoke-inference", "v2", ActivityNames.SmokeInference, i => new { i.Model, i.Version, data = i.Data.ContentHash, i.ImageIndex });

    public static readonly PipelineStep<WriteRunReportInput, RunReportLocation> Report =
        PipelineStep<WriteRunReportInput, RunReportLocation>.Activity("report", "v1", ActivityNames.WriteRunReport, i => new { i.RunId });

    // Steps whose output is not a function of their input content (the registry changes under them,
    // or they have side effects) never use the cache.
    public static readonly StepOptions Io = new() { MaxAttempts = 3, FirstRetryInterval = TimeSpan.FromSeconds(2) };
    public static readonly StepOptions Live = Io with { Cache = false };

    /// <summary>Sub-orchestrations run once per step attempt, under a fixed instance id, for hours at most.</summary>
    public static StepOptions Child(string instanceId) => Io with { MaxAttempts = 1, InstanceId = instanceId, Timeout = TimeSpan.FromHours(12) };

    /// <summary>The sweep's cache content: the data's content hash and every setting, not where the data lives.</summary>
    public static object SweepContent(SweepSpec spec) => new
    {
        data = spec.Trial.Job?.Data.ContentHash,
        spec = spec with { Trial = spec.Trial with { Job = spec.Trial.Job! with { Data = spec.Trial.Job.Data with { Container = "", Prefix = "" } } } },
    };
}
