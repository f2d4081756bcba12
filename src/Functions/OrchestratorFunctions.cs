using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Probes;
using MlFunctions.Core.Training;
using Training = MlFunctions.Orchestrations.Training;
using Probes = MlFunctions.Orchestrations.Probes;

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
}
