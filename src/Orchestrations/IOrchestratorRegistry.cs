using Microsoft.DurableTask;

namespace MlFunctions.Orchestrations;

/// <summary>
/// What a host does with each orchestrator: the local engine wraps it in a Durable Task shim, a test
/// lists its name. Orchestrators are plain static functions, as in durabletask-dotnet's samples.
/// </summary>
public interface IOrchestratorRegistry
{
    void AddOrchestrator<TInput, TOutput>(string name, Func<TaskOrchestrationContext, TInput?, Task<TOutput>> run);
}

/// <summary>Every orchestration the product exposes. Both hosts register exactly this list.</summary>
public static class OrchestrationCatalog
{
    public static void Register(IOrchestratorRegistry registry)
    {
        registry.AddOrchestrator<Core.Probes.FanOutProbeInput, int>(Core.OrchestrationNames.FanOutProbe, Probes.FanOutProbe.RunAsync);
        registry.AddOrchestrator<Core.Training.TrainModelInput, Core.Training.TrainingResult>(Core.OrchestrationNames.TrainModel, Training.TrainModel.RunAsync);
        registry.AddOrchestrator<Core.Sweeps.SweepInput, Core.Sweeps.SweepResult>(Core.OrchestrationNames.HyperparameterSweep, Sweeps.HyperparameterSweep.RunAsync);
        registry.AddOrchestrator<Core.Sweeps.StandInTrialInput, Core.Sweeps.TrialOutcome>(Core.OrchestrationNames.StandInTrial, Sweeps.StandInTrial.RunAsync);
        registry.AddOrchestrator<Core.Sweeps.CrossValidationInput, Core.Sweeps.TrialOutcome>(Core.OrchestrationNames.CrossValidate, Sweeps.CrossValidate.RunAsync);
        registry.AddOrchestrator<Core.Pipelines.PipelineSpec, Core.Pipelines.PipelineRunResult>(Core.OrchestrationNames.TrainingPipeline, Pipelines.TrainingPipeline.RunAsync);
        registry.AddOrchestrator<Core.OnlineValidation.RolloutInput, Core.OnlineValidation.RolloutReport>(Core.OrchestrationNames.Rollout, Rollouts.Rollout.RunAsync);
    }

    /// <summary>The names, for the starter's "unknown orchestration" answer and for tests.</summary>
    public static IReadOnlyList<string> Names { get; } = ListNames();

    private static IReadOnlyList<string> ListNames()
    {
        var lister = new NameLister();
        Register(lister);
        return lister.Names;
    }

    private sealed class NameLister : IOrchestratorRegistry
    {
        public List<string> Names { get; } = [];

        public void AddOrchestrator<TInput, TOutput>(string name, Func<TaskOrchestrationContext, TInput?, Task<TOutput>> run) => Names.Add(name);
    }
}
