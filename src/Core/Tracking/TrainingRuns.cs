using System.Globalization;
using System.Text.Json;
using MlFunctions.Core.Json;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;

namespace MlFunctions.Core.Tracking;

/// <summary>
/// Pure decisions of training-run tracking, used by the TrainModel orchestration (which only schedules the
/// writes) and unit-tested alone: which experiment and role a job's run has, its params and tags, and the
/// record at its start and at its end.
/// </summary>
public static class TrainingRuns
{
    /// <summary>The experiment of runs that name none (MLflow's default experiment).</summary>
    public const string DefaultExperiment = "Default";

    /// <summary>Labels with a meaning to tracking (all labels become tags).</summary>
    public static class Labels
    {
        public const string Experiment = "experiment";
        public const string Role = "role";
        public const string Sweep = "sweep";
        public const string Trial = "trial";
        public const string Pipeline = "pipeline";
        public const string PipelineRun = "pipelineRun";
    }

    /// <summary>An explicit "role" label wins; then a fold, a trial (has a sweep or trial label), a pipeline's job (retrain); else a bare train.</summary>
    public static RunRole RoleOf(TrainingJob job)
    {
        if (job.Labels.TryGetValue(Labels.Role, out var role) && Enum.TryParse<RunRole>(role, ignoreCase: true, out var explicitRole))
            return explicitRole;
        if (job.Fold is not null)
            return RunRole.Fold;
        if (job.Labels.ContainsKey(Labels.Trial) || job.Labels.ContainsKey(Labels.Sweep))
            return RunRole.Trial;
        return job.Labels.ContainsKey(Labels.PipelineRun) ? RunRole.Retrain : RunRole.Train;
    }

    /// <summary>An "experiment" label; else a trial's (or fold's) sweep, as sweep trials always were; else the pipeline; else <see cref="DefaultExperiment"/>.</summary>
    public static string ExperimentOf(TrainingJob job)
    {
        string? Label(string key) => job.Labels.TryGetValue(key, out var v) && !string.IsNullOrWhiteSpace(v) ? v : null;
        return Label(Labels.Experiment)
            ?? (RoleOf(job) is RunRole.Trial or RunRole.Fold ? Label(Labels.Sweep) : null)
            ?? Label(Labels.Pipeline)
            ?? DefaultExperiment;
    }

    /// <summary>
    /// Every hyperparameter (whatever fields <see cref="HyperParameters"/> has, by their JSON names; lists as
    /// "a,b"), the model and the data it trained on. Params are strings, as in MLflow.
    /// </summary>
    public static ParameterSet ParamsOf(TrainingJob job)
    {
        var p = new ParameterSet { ["model"] = job.Model };
        foreach (var property in JsonSerializer.SerializeToElement(job.Hyperparameters, MlJson.Options).EnumerateObject())
        {
            p[property.Name] = property.Value.ValueKind switch
            {
                JsonValueKind.Array => string.Join(",", property.Value.EnumerateArray().Select(Text)),
                _ => Text(property.Value),
            };
        }

        p["dataContainer"] = job.Data.Container;
        p["dataPrefix"] = job.Data.Prefix;
        p["dataHash"] = job.Data.ContentHash;
        p["trainOnValidation"] = job.TrainOnValidation ? "true" : "false";
        return p;
    }

    /// <summary>The job's labels, the role, and where known the pipeline run (a trial's sweep id names it).</summary>
    public static Dictionary<string, string> TagsOf(TrainingJob job)
    {
        var tags = new Dictionary<string, string>(job.Labels, StringComparer.Ordinal)
        {
            [Labels.Role] = RoleOf(job).ToString().ToLowerInvariant(),
            ["jobId"] = job.JobId,
        };
        if (!tags.ContainsKey(Labels.PipelineRun) && tags.TryGetValue(Labels.Sweep, out var sweep) && InstanceIds.RunOfSweep(sweep) is { } run)
            tags[Labels.PipelineRun] = run;
        if (job.Fold is { } fold)
        {
            tags["fold"] = fold.Index.ToString(CultureInfo.InvariantCulture);
            tags["folds"] = fold.Count.ToString(CultureInfo.InvariantCulture);
        }

        return tags;
    }

    /// <summary>The record written before the first dispatch: Running, with params and tags.</summary>
    public static TrackingRun Started(string runId, TrainingJob job, DateTime now) => new()
    {
        RunId = runId,
        Experiment = ExperimentOf(job),
        Role = RoleOf(job),
        Status = TrialState.Running,
        Params = ParamsOf(job),
        Tags = TagsOf(job),
        StartTime = now,
    };

    /// <summary>One progress event's metrics as a step (the same named values trials and sweeps use).</summary>
    public static MetricStep StepOf(EpochMetrics metrics) => new(metrics.Epoch, TrialMetrics.Of(metrics));

    /// <summary>A finished (or early-stopped) run: the worker's history, final metrics and artifacts.</summary>
    public static TrackingRun Finished(TrackingRun started, TrainingResult result, int attempts, DateTime now)
    {
        var outcome = TrialMetrics.FromTraining(started.RunId, result);
        var tags = new Dictionary<string, string>(started.Tags, StringComparer.Ordinal)
        {
            ["device"] = result.Device,
            ["attempts"] = attempts.ToString(CultureInfo.InvariantCulture),
        };
        return started with
        {
            Status = outcome.State,
            Metrics = outcome.History,
            FinalMetrics = outcome.Metrics,
            Artifacts = outcome.Artifacts,
            Tags = tags,
            EndTime = now,
        };
    }

    /// <summary>A run whose attempts were exhausted: Failed with the last reason; the steps already written stay.</summary>
    public static TrackingRun Failed(TrackingRun started, string error, int attempts, DateTime now) => started with
    {
        Status = TrialState.Failed,
        Error = error,
        Tags = new Dictionary<string, string>(started.Tags, StringComparer.Ordinal) { ["attempts"] = attempts.ToString(CultureInfo.InvariantCulture) },
        EndTime = now,
    };

    private static string Text(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();
}

/// <summary>
/// How a write of a run combines with what is stored. A run has several writers, one after another: TrainModel
/// at its start and its end, then (for a trial) the sweep with the objective and its own tags. Each write adds
/// to the record instead of replacing it, so under redelivery or any order they converge.
/// </summary>
public static class TrackingRunMerge
{
    /// <summary>
    /// The stored record after <paramref name="incoming"/>. <c>Fresh</c> is true when the incoming record starts
    /// a new run under an id whose earlier run had ended (a completed instance id used again): the caller then
    /// drops the old per-step metrics.
    /// </summary>
    public static (TrackingRun Run, bool Fresh) Merge(TrackingRun? existing, TrackingRun incoming)
    {
        if (existing is null)
            return (incoming, true);

        if (incoming.Status == TrialState.Running)
        {
            if (existing.Status != TrialState.Running && existing.EndTime is { } ended && incoming.StartTime > ended)
                return (incoming, true);

            // A start written again (redelivered) never turns an ended run back to Running.
            if (existing.Status != TrialState.Running)
                return (Union(incoming, existing) with { Status = existing.Status, Error = existing.Error, EndTime = existing.EndTime }, false);
        }

        return (Union(existing, incoming), false);
    }

    /// <summary>The later write's values win; maps are unions; the start is the earliest known.</summary>
    private static TrackingRun Union(TrackingRun older, TrackingRun newer) => newer with
    {
        Params = new ParameterSet(Combine(older.Params, newer.Params)),
        Tags = Combine(older.Tags, newer.Tags),
        Artifacts = Combine(older.Artifacts, newer.Artifacts),
        FinalMetrics = Combine(older.FinalMetrics, newer.FinalMetrics),
        Metrics = newer.Metrics.Count > 0 ? newer.Metrics : older.Metrics,
        Objective = newer.Objective ?? older.Objective,
        Secondary = newer.Secondary ?? older.Secondary,
        CrossValidation = newer.CrossValidation ?? older.CrossValidation,
        StartTime = older.StartTime == default || (newer.StartTime != default && newer.StartTime < older.StartTime) ? newer.StartTime : older.StartTime,
        EndTime = newer.EndTime ?? older.EndTime,
    };

    private static Dictionary<string, TValue> Combine<TValue>(IReadOnlyDictionary<string, TValue> older, IReadOnlyDictionary<string, TValue> newer)
    {
        var merged = new Dictionary<string, TValue>(older, StringComparer.Ordinal);
        foreach (var (k, v) in newer)
            merged[k] = v;
        return merged;
    }

    /// <summary>
    /// A run's history: the steps written one by one while it ran, with the record's own history (the worker's
    /// final one, or a trial's) taking precedence for the steps both have.
    /// </summary>
    public static IReadOnlyList<MetricStep> History(IReadOnlyList<MetricStep> recorded, IEnumerable<MetricStep> live)
    {
        var byStep = new SortedDictionary<int, MetricStep>();
        foreach (var s in live)
            byStep[s.Step] = s;
        foreach (var s in recorded)
            byStep[s.Step] = s;
        return byStep.Values.ToList();
    }

    /// <summary>Final metrics when the run has ended; the latest step's while it runs (what a list ranks by).</summary>
    public static IReadOnlyDictionary<string, double> Latest(TrackingRun run) =>
        run.Status != TrialState.Running || run.Metrics.Count == 0
            ? run.FinalMetrics
            : new Dictionary<string, double>(run.Metrics[^1].Metrics, StringComparer.Ordinal);
}
