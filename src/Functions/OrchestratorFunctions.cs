using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Probes;
using MlFunctions.Core.Training;
using Training = MlFunctions.Orchestrations.Training;
using Probes = MlFunctions.Orchestrations.Probes;
using Sweeps = MlFunctions.Orchestrations.Sweeps;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Functions;

/// <summary>
/// Thin [Function] wrappers: each hands the context to the same static orchestrator the local engine
/// runs. A test checks that this list and the orchestration catalog are the same.
/// </summary>
public static class OrchestratorFunctions
{
    [Function(OrchestrationNames.FanOutProbe)]
    public static Task<int> FanOutProbe([OrchestrationTrigger] TaskOrchestrationContext context) =>
        Probes.FanOutProbe.RunAsync(context, context.GetInput<FanOutProbeInput>());

    [Function(OrchestrationNames.TrainModel)]
    public static Task<TrainingResult> TrainModel([OrchestrationTrigger] TaskOrchestrationContext context) =>
        Training.TrainModel.RunAsync(context, context.GetInput<TrainModelInput>());

    [Function(OrchestrationNames.HyperparameterSweep)]
    public static Task<SweepResult> HyperparameterSweep([OrchestrationTrigger] TaskOrchestrationContext context) =>
        Sweeps.HyperparameterSweep.RunAsync(context, context.GetInput<SweepInput>());

    [Function(OrchestrationNames.StandInTrial)]
    public static Task<TrialOutcome> StandInTrial([OrchestrationTrigger] TaskOrchestrationContext context) =>
        Sweeps.StandInTrial.RunAsync(context, context.GetInput<StandInTrialInput>());

    [Function(OrchestrationNames.CrossValidate)]
    public static Task<TrialOutcome> CrossValidate([OrchestrationTrigger] TaskOrchestrationContext context) =>
        Sweeps.CrossValidate.RunAsync(context, context.GetInput<CrossValidationInput>());

    [Function(OrchestrationNames.TrainingPipeline)]
    public static Task<PipelineRunResult> TrainingPipeline([OrchestrationTrigger] TaskOrchestrationContext context) =>
        Orchestrations.Pipelines.TrainingPipeline.RunAsync(context, context.GetInput<PipelineSpec>());

    [Function(OrchestrationNames.Rollout)]
    public static Task<Core.OnlineValidation.RolloutReport> Rollout([OrchestrationTrigger] TaskOrchestrationContext context) =>
        Orchestrations.Rollouts.Rollout.RunAsync(context, context.GetInput<Core.OnlineValidation.RolloutInput>());
}
