using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Models;
using MlFunctions.Activities.Pipelines;
using MlFunctions.Activities.Probes;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Probes;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Training;
using MlFunctions.Activities.Training;
using MlFunctions.Activities.Sweeps;
using MlFunctions.Activities.Tracking;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;

namespace MlFunctions.Activities;

/// <summary>
/// Who is calling an activity. Each host builds it from its own context (Durable Task's
/// <c>TaskActivityContext</c> locally, the <c>FunctionContext</c> binding data in Azure Functions), so
/// activity code never depends on either host.
/// </summary>
/// <param name="EventCallbackUri">
/// The calling instance's sendEventPostUri (Durable HTTP API, with its {eventName} placeholder), for
/// activities that hand work to another process which reports back by raising events.
/// </param>
public sealed record ActivityCall(string Name, string InstanceId, CancellationToken Cancellation, string? EventCallbackUri = null);

/// <summary>An activity: one idempotent side effect, since activities run at least once.</summary>
public interface IActivity<TInput, TOutput>
{
    Task<TOutput> RunAsync(TInput input, ActivityCall call);
}

public interface IActivityRegistry
{
    void AddActivity<TInput, TOutput, TActivity>(string name)
        where TActivity : class, IActivity<TInput, TOutput>;
}

/// <summary>Every activity the orchestrations call. Both hosts register exactly this list.</summary>
public static class ActivityCatalog
{
    public static void Register(IActivityRegistry registry)
    {
        registry.AddActivity<ProbeStepInput, int, ProbeStepActivity>(ActivityNames.ProbeStep);
        registry.AddActivity<RegisterDatasetInput, RegisterDatasetResult, RegisterDatasetActivity>(ActivityNames.RegisterDataset);
        registry.AddActivity<ValidateDatasetInput, ValidationReport, ValidateDatasetActivity>(ActivityNames.ValidateDataset);
        registry.AddActivity<TransformDatasetInput, TransformDatasetResult, TransformDatasetActivity>(ActivityNames.TransformDataset);
        registry.AddActivity<DispatchTrainingInput, DispatchTrainingResult, DispatchTrainingActivity>(ActivityNames.DispatchTraining);
        registry.AddActivity<string, bool, RequestTrainingStopActivity>(ActivityNames.RequestTrainingStop);
        registry.AddActivity<SuggestTrialsInput, SuggestionResult, SuggestTrialsActivity>(ActivityNames.SuggestTrials);
        registry.AddActivity<EvaluateStandInInput, List<double>, EvaluateStandInActivity>(ActivityNames.EvaluateStandInTrial);
        registry.AddActivity<SweepRecord, bool, TrackSweepActivity>(ActivityNames.TrackSweep);
        registry.AddActivity<List<TrackingRun>, bool, TrackTrialsActivity>(ActivityNames.TrackTrials);
        registry.AddActivity<TrackingRun, bool, TrackTrialActivity>(ActivityNames.TrackRun);
        registry.AddActivity<TrackRunStepInput, bool, TrackRunStepActivity>(ActivityNames.TrackRunStep);
        registry.AddActivity<LookupStepCacheInput, LookupStepCacheResult, LookupStepCacheActivity>(ActivityNames.LookupStepCache);
        registry.AddActivity<StepCacheEntry, bool, StoreStepCacheActivity>(ActivityNames.StoreStepCache);
        registry.AddActivity<StepRecord, bool, RecordLineageActivity>(ActivityNames.RecordLineage);
        registry.AddActivity<EvaluateModelInput, EvaluateModelResult, EvaluateModelActivity>(ActivityNames.EvaluateModel);
        registry.AddActivity<CrossValidateBaselinesInput, CrossValidateBaselinesResult, CrossValidateBaselinesActivity>(ActivityNames.CrossValidateBaselines);
        registry.AddActivity<ExportModelInput, ExportModelResult, ExportModelActivity>(ActivityNames.ExportModel);
        registry.AddActivity<GetModelAliasInput, ModelVersion?, GetModelAliasActivity>(ActivityNames.GetModelAlias);
        registry.AddActivity<RegisterModelVersionInput, ModelVersion, RegisterModelVersionActivity>(ActivityNames.RegisterModelVersion);
        registry.AddActivity<MoveModelAliasInput, ModelAlias, MoveModelAliasActivity>(ActivityNames.MoveModelAlias);
        registry.AddActivity<SmokeInferenceInput, SmokeInferenceResult, SmokeInferenceActivity>(ActivityNames.SmokeInference);
        registry.AddActivity<WriteRunReportInput, RunReportLocation, WriteRunReportActivity>(ActivityNames.WriteRunReport);
        registry.AddActivity<TerminateInstanceInput, bool, TerminateInstanceActivity>(ActivityNames.TerminateInstance);
        registry.AddActivity<Core.OnlineValidation.SetRoutingPolicyInput, Core.OnlineValidation.SetRoutingPolicyResult, Rollouts.SetRoutingPolicyActivity>(ActivityNames.SetRoutingPolicy);
        registry.AddActivity<Core.OnlineValidation.ReadRolloutStatsInput, Core.OnlineValidation.RolloutObservation, Rollouts.ReadRolloutStatsActivity>(ActivityNames.ReadRolloutStats);
    }

    /// <summary>
    /// The services the activities need, shared by both hosts. The model activities also need what the host's
    /// inference serving registers (<c>AddInferenceServing</c>: artifact store, session factory, dataplane) and its
    /// <see cref="IModelRegistry"/>: they use the serving layer itself, so there is one integrity check and one way to load.
    /// </summary>
    public static IServiceCollection AddMlActivities(this IServiceCollection services)
    {
        // The activity classes themselves come from the catalog above (one list: a new activity is one line there).
        Register(new ServiceRegistrar(services));

        // What they depend on. TerminateInstanceActivity also needs the host's IInstanceTerminator; the two rollout
        // activities need AddInferenceServing's BlobServingStore.
        services.AddOptions<ProbeOptions>();
        services.AddSingleton<ProbeJournal>();
        services.AddOptions<DatasetOptions>();
        services.AddOptions<DispatchOptions>();
        services.AddSingleton<ITrackingStore, BlobTrackingStore>();
        services.AddSingleton<BlobStepCache>();
        services.AddSingleton<BlobLineageStore>();
        services.AddSingleton<IPipelineRunReader>(sp => sp.GetRequiredService<BlobLineageStore>());
        services.AddSingleton<IPipelineSpecStore, BlobPipelineSpecStore>();
        return services;
    }

    /// <summary>Each catalog entry's class as a transient service (TryAdd: one class may serve two names).</summary>
    private sealed class ServiceRegistrar(IServiceCollection services) : IActivityRegistry
    {
        public void AddActivity<TInput, TOutput, TActivity>(string name)
            where TActivity : class, IActivity<TInput, TOutput> => services.TryAddTransient<TActivity>();
    }

    public static IReadOnlyList<string> Names { get; } = ListNames();

    private static IReadOnlyList<string> ListNames()
    {
        var lister = new NameLister();
        Register(lister);
        return lister.Names;
    }

    private sealed class NameLister : IActivityRegistry
    {
        public List<string> Names { get; } = [];

        public void AddActivity<TInput, TOutput, TActivity>(string name)
            where TActivity : class, IActivity<TInput, TOutput> => Names.Add(name);
    }
}
