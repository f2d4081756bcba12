using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using MlFunctions.Activities;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Models;
using MlFunctions.Activities.Pipelines;
using MlFunctions.Activities.Probes;
using MlFunctions.Activities.Training;
using MlFunctions.Activities.Sweeps;
using MlFunctions.Activities.Tracking;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Probes;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Training;

namespace MlFunctions.Functions;

/// <summary>
/// Thin [Function] wrappers over the shared activity classes: each resolves its activity from the
/// invocation's services and runs it, exactly as the local engine's shim registry does.
/// </summary>
public static class ActivityFunctions
{
    [Function(ActivityNames.ProbeStep)]
    public static Task<int> ProbeStep([ActivityTrigger] ProbeStepInput input, FunctionContext context) =>
        Run<ProbeStepActivity, ProbeStepInput, int>(ActivityNames.ProbeStep, input, context);

    /// <summary>The Durable client binding lets the extension build the calling instance's sendEventPostUri.</summary>
    [Function(ActivityNames.DispatchTraining)]
    public static Task<DispatchTrainingResult> DispatchTraining(
        [ActivityTrigger] DispatchTrainingInput input,
        [DurableClient] DurableTaskClient client,
        FunctionContext context) =>
        Run<DispatchTrainingActivity, DispatchTrainingInput, DispatchTrainingResult>(
            ActivityNames.DispatchTraining, input, context, client.CreateHttpManagementPayload(input.InstanceId).SendEventPostUri);

    [Function(ActivityNames.RequestTrainingStop)]
    public static Task<bool> RequestTrainingStop([ActivityTrigger] string jobId, FunctionContext context) =>
        Run<RequestTrainingStopActivity, string, bool>(ActivityNames.RequestTrainingStop, jobId, context);

    [Function(ActivityNames.RegisterDataset)]
    public static Task<RegisterDatasetResult> RegisterDataset([ActivityTrigger] RegisterDatasetInput input, FunctionContext context) =>
        Run<RegisterDatasetActivity, RegisterDatasetInput, RegisterDatasetResult>(ActivityNames.RegisterDataset, input, context);

    [Function(ActivityNames.ValidateDataset)]
    public static Task<ValidationReport> ValidateDataset([ActivityTrigger] ValidateDatasetInput input, FunctionContext context) =>
        Run<ValidateDatasetActivity, ValidateDatasetInput, ValidationReport>(ActivityNames.ValidateDataset, input, context);

    [Function(ActivityNames.TransformDataset)]
    public static Task<TransformDatasetResult> TransformDataset([ActivityTrigger] TransformDatasetInput input, FunctionContext context) =>
        Run<TransformDatasetActivity, TransformDatasetInput, TransformDatasetResult>(ActivityNames.TransformDataset, input, context);

    [Function(ActivityNames.SuggestTrials)]
    public static Task<SuggestionResult> SuggestTrials([ActivityTrigger] SuggestTrialsInput input, FunctionContext context) =>
        Run<SuggestTrialsActivity, SuggestTrialsInput, SuggestionResult>(ActivityNames.SuggestTrials, input, context);

    [Function(ActivityNames.EvaluateStandInTrial)]
    public static Task<List<double>> EvaluateStandInTrial([ActivityTrigger] EvaluateStandInInput input, FunctionContext context) =>
        Run<EvaluateStandInActivity, EvaluateStandInInput, List<double>>(ActivityNames.EvaluateStandInTrial, input, context);

    [Function(ActivityNames.TrackSweep)]
    public static Task<bool> TrackSweep([ActivityTrigger] SweepRecord input, FunctionContext context) =>
        Run<TrackSweepActivity, SweepRecord, bool>(ActivityNames.TrackSweep, input, context);

    [Function(ActivityNames.TrackTrials)]
    public static Task<bool> TrackTrials([ActivityTrigger] List<TrackingRun> input, FunctionContext context) =>
        Run<TrackTrialsActivity, List<TrackingRun>, bool>(ActivityNames.TrackTrials, input, context);

    [Function(ActivityNames.TrackRun)]
    public static Task<bool> TrackRun([ActivityTrigger] TrackingRun input, FunctionContext context) =>
        Run<TrackTrialActivity, TrackingRun, bool>(ActivityNames.TrackRun, input, context);

    [Function(ActivityNames.TrackRunStep)]
    public static Task<bool> TrackRunStep([ActivityTrigger] TrackRunStepInput input, FunctionContext context) =>
        Run<TrackRunStepActivity, TrackRunStepInput, bool>(ActivityNames.TrackRunStep, input, context);

    [Function(ActivityNames.LookupStepCache)]
    public static Task<LookupStepCacheResult> LookupStepCache([ActivityTrigger] LookupStepCacheInput input, FunctionContext context) =>
        Run<LookupStepCacheActivity, LookupStepCacheInput, LookupStepCacheResult>(ActivityNames.LookupStepCache, input, context);

    [Function(ActivityNames.StoreStepCache)]
    public static Task<bool> StoreStepCache([ActivityTrigger] StepCacheEntry input, FunctionContext context) =>
        Run<StoreStepCacheActivity, StepCacheEntry, bool>(ActivityNames.StoreStepCache, input, context);

    [Function(ActivityNames.RecordLineage)]
    public static Task<bool> RecordLineage([ActivityTrigger] StepRecord input, FunctionContext context) =>
        Run<RecordLineageActivity, StepRecord, bool>(ActivityNames.RecordLineage, input, context);

    [Function(ActivityNames.EvaluateModel)]
    public static Task<EvaluateModelResult> EvaluateModel([ActivityTrigger] EvaluateModelInput input, FunctionContext context) =>
        Run<EvaluateModelActivity, EvaluateModelInput, EvaluateModelResult>(ActivityNames.EvaluateModel, input, context);

    [Function(ActivityNames.CrossValidateBaselines)]
    public static Task<CrossValidateBaselinesResult> CrossValidateBaselines([ActivityTrigger] CrossValidateBaselinesInput input, FunctionContext context) =>
        Run<CrossValidateBaselinesActivity, CrossValidateBaselinesInput, CrossValidateBaselinesResult>(ActivityNames.CrossValidateBaselines, input, context);

    [Function(ActivityNames.ExportModel)]
    public static Task<ExportModelResult> ExportModel([ActivityTrigger] ExportModelInput input, FunctionContext context) =>
        Run<ExportModelActivity, ExportModelInput, ExportModelResult>(ActivityNames.ExportModel, input, context);

    [Function(ActivityNames.GetModelAlias)]
    public static Task<ModelVersion?> GetModelAlias([ActivityTrigger] GetModelAliasInput input, FunctionContext context) =>
        Run<GetModelAliasActivity, GetModelAliasInput, ModelVersion?>(ActivityNames.GetModelAlias, input, context);

    [Function(ActivityNames.RegisterModelVersion)]
    public static Task<ModelVersion> RegisterModelVersion([ActivityTrigger] RegisterModelVersionInput input, FunctionContext context) =>
        Run<RegisterModelVersionActivity, RegisterModelVersionInput, ModelVersion>(ActivityNames.RegisterModelVersion, input, context);

    [Function(ActivityNames.MoveModelAlias)]
    public static Task<ModelAlias> MoveModelAlias([ActivityTrigger] MoveModelAliasInput input, FunctionContext context) =>
        Run<MoveModelAliasActivity, MoveModelAliasInput, ModelAlias>(ActivityNames.MoveModelAlias, input, context);

    [Function(ActivityNames.SetRoutingPolicy)]
    public static Task<Core.OnlineValidation.SetRoutingPolicyResult> SetRoutingPolicy([ActivityTrigger] Core.OnlineValidation.SetRoutingPolicyInput input, FunctionContext context) =>
        Run<Activities.Rollouts.SetRoutingPolicyActivity, Core.OnlineValidation.SetRoutingPolicyInput, Core.OnlineValidation.SetRoutingPolicyResult>(ActivityNames.SetRoutingPolicy, input, context);

    [Function(ActivityNames.ReadRolloutStats)]
    public static Task<Core.OnlineValidation.RolloutObservation> ReadRolloutStats([ActivityTrigger] Core.OnlineValidation.ReadRolloutStatsInput input, FunctionContext context) =>
        Run<Activities.Rollouts.ReadRolloutStatsActivity, Core.OnlineValidation.ReadRolloutStatsInput, Core.OnlineValidation.RolloutObservation>(ActivityNames.ReadRolloutStats, input, context);

    [Function(ActivityNames.SmokeInference)]
    public static Task<SmokeInferenceResult> SmokeInference([ActivityTrigger] SmokeInferenceInput input, FunctionContext context) =>
        Run<SmokeInferenceActivity, SmokeInferenceInput, SmokeInferenceResult>(ActivityNames.SmokeInference, input, context);

    [Function(ActivityNames.WriteRunReport)]
    public static Task<RunReportLocation> WriteRunReport([ActivityTrigger] WriteRunReportInput input, FunctionContext context) =>
        Run<WriteRunReportActivity, WriteRunReportInput, RunReportLocation>(ActivityNames.WriteRunReport, input, context);

    /// <summary>The Durable client binding is the terminator here; the local host registers one over its engine's client.</summary>
    [Function(ActivityNames.TerminateInstance)]
    public static Task<bool> TerminateInstance([ActivityTrigger] TerminateInstanceInput input, [DurableClient] DurableTaskClient client, FunctionContext context) =>
        new TerminateInstanceActivity(new MlFunctions.Api.Durable.ClientTerminator(client), context.InstanceServices.GetRequiredService<Microsoft.Extensions.Logging.ILogger<TerminateInstanceActivity>>())
            .RunAsync(input, Call(ActivityNames.TerminateInstance, context, null));

    private static Task<TOutput> Run<TActivity, TInput, TOutput>(string name, TInput input, FunctionContext context, string? eventCallbackUri = null)
        where TActivity : class, IActivity<TInput, TOutput> =>
        context.InstanceServices.GetRequiredService<TActivity>().RunAsync(input, Call(name, context, eventCallbackUri));

    /// <summary>The activity's caller, from the Durable binding data Functions passes along.</summary>
    private static ActivityCall Call(string name, FunctionContext context, string? eventCallbackUri) =>
        new(
            name,
            context.BindingContext.BindingData.TryGetValue("instanceId", out var id) ? id?.ToString() ?? string.Empty : string.Empty,
            context.CancellationToken,
            eventCallbackUri);
}
