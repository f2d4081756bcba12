using System.Text.Json.Serialization;
using MlFunctions.Core.Sweeps;

namespace MlFunctions.Core.Tracking;

/// <summary>
/// A tracking run in MLflow's terms: params, metrics per step, tags and artifacts. Every training run is
/// one (a sweep trial, a fold of one, a pipeline's retrain, a bare TrainModel); its id is the instance id
/// of the orchestration that ran it. A trial's experiment is its sweep; see <see cref="TrainingRuns"/>.
/// </summary>
public sealed record TrackingRun
{
    public required string RunId { get; init; }

    /// <summary>MLflow's experiment: the sweep for a trial, the pipeline for a retrain, else the job's "experiment" label or "Default".</summary>
    public required string Experiment { get; init; }

    /// <summary>Running while training; then Succeeded, EarlyStopped or Failed (the one run-state enum, shared with trials).</summary>
    public required TrialState Status { get; init; }

    /// <summary>What the run was for. Records written before roles existed were all sweep trials.</summary>
    public RunRole Role { get; init; } = RunRole.Trial;

    public required ParameterSet Params { get; init; }

    /// <summary>Metrics per step (epoch), in order.</summary>
    public IReadOnlyList<MetricStep> Metrics { get; init; } = [];

    /// <summary>The final value of each metric.</summary>
    public IReadOnlyDictionary<string, double> FinalMetrics { get; init; } = new Dictionary<string, double>();

    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();

    /// <summary>Artifact name → URI (checkpoint, onnx).</summary>
    public IReadOnlyDictionary<string, string> Artifacts { get; init; } = new Dictionary<string, string>();

    public double? Objective { get; init; }

    public double? Secondary { get; init; }

    public CrossValidationSummary? CrossValidation { get; init; }

    public string? Error { get; init; }

    public DateTime StartTime { get; init; }

    public DateTime? EndTime { get; init; }
}

/// <summary>
/// A run without its per-epoch history: what lists, searches and rankings need (params, the latest value of
/// each metric, tags, state), so a list of hundreds of runs does not read hundreds of metric histories.
/// </summary>
public sealed record RunSummary
{
    public required string RunId { get; init; }

    public required string Experiment { get; init; }

    public required TrialState Status { get; init; }

    public RunRole Role { get; init; } = RunRole.Trial;

    public required ParameterSet Params { get; init; }

    /// <summary>Final metrics once ended; the latest step's while running (<see cref="TrackingRunMerge.Latest"/>).</summary>
    public IReadOnlyDictionary<string, double> FinalMetrics { get; init; } = new Dictionary<string, double>();

    /// <summary>The highest step (epoch) with metrics; null when none was recorded.</summary>
    public int? LastStep { get; init; }

    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, string> Artifacts { get; init; } = new Dictionary<string, string>();

    public double? Objective { get; init; }

    public double? Secondary { get; init; }

    public string? Error { get; init; }

    public DateTime StartTime { get; init; }

    public DateTime? EndTime { get; init; }

    /// <summary>The summary of a whole run (with its steps so far, for a running one).</summary>
    public static RunSummary Of(TrackingRun run) => new()
    {
        RunId = run.RunId,
        Experiment = run.Experiment,
        Status = run.Status,
        Role = run.Role,
        Params = run.Params,
        FinalMetrics = TrackingRunMerge.Latest(run),
        LastStep = run.Metrics.Count == 0 ? null : run.Metrics.Max(m => m.Step),
        Tags = run.Tags,
        Artifacts = run.Artifacts,
        Objective = run.Objective,
        Secondary = run.Secondary,
        Error = run.Error,
        StartTime = run.StartTime,
        EndTime = run.EndTime,
    };
}

/// <summary>A sweep as the tracking store keeps it: spec, state and, once finished, what it found.</summary>
public sealed record SweepRecord
{
    public required string SweepId { get; init; }

    public required SweepSpec Spec { get; init; }

    public required SweepRecordStatus Status { get; init; }

    public string? Outcome { get; init; }

    public string? Reason { get; init; }

    public TrialSummary? Best { get; init; }

    public IReadOnlyList<TrialSummary>? ParetoFront { get; init; }

    public int TrialCount { get; init; }

    public DateTime CreatedAt { get; init; }

    public DateTime UpdatedAt { get; init; }
}

/// <summary>A sweep's state in its record. The names are written as they always were ("Running", ...).</summary>
public enum SweepRecordStatus
{
    [JsonStringEnumMemberName("Running")]
    Running,

    [JsonStringEnumMemberName("Completed")]
    Completed,

    [JsonStringEnumMemberName("Failed")]
    Failed,
}

/// <summary>What a training run was for; the <c>role</c> of a tracking run.</summary>
public enum RunRole
{
    /// <summary>A bare TrainModel (started through the API or by other code).</summary>
    Train,

    /// <summary>A sweep trial.</summary>
    Trial,

    /// <summary>One fold of a cross-validated trial.</summary>
    Fold,

    /// <summary>A pipeline's final retrain of the best configuration.</summary>
    Retrain,
}

/// <summary>Input of <c>TrackRunStep</c>: one epoch's metrics of a run, written once per (run, step).</summary>
public sealed record TrackRunStepInput(string RunId, MetricStep Step);

/// <summary>Where sweeps and their runs are kept (blobs in both hosts; see BlobTrackingStore for why).</summary>
public interface ITrackingStore
{
    Task SaveSweepAsync(SweepRecord sweep, CancellationToken ct = default);

    /// <summary>Upserts a run, merged with what is stored by <see cref="TrackingRunMerge.Merge"/> (start, end, the sweep's view of a trial).</summary>
    Task SaveRunAsync(TrackingRun run, CancellationToken ct = default);

    /// <summary>Writes one step (epoch) of a run's metrics; writing the same step again replaces it.</summary>
    Task SaveStepAsync(string runId, MetricStep step, CancellationToken ct = default);

    Task<SweepRecord?> GetSweepAsync(string sweepId, CancellationToken ct = default);

    /// <summary>A run with its whole metric history so far (the steps written while it runs included); null when unknown.</summary>
    Task<TrackingRun?> GetRunAsync(string runId, CancellationToken ct = default);

    Task<IReadOnlyList<SweepRecord>> ListSweepsAsync(CancellationToken ct = default);

    /// <summary>
    /// The runs of one experiment, or of all when <paramref name="experiment"/> is null. A running run's
    /// <see cref="TrackingRun.FinalMetrics"/> are its latest step's, so lists and rankings see live values.
    /// </summary>
    Task<IReadOnlyList<TrackingRun>> ListRunsAsync(string? experiment, CancellationToken ct = default);

    /// <summary>
    /// The runs of one experiment (or all) without their histories, for lists and rankings. A store that
    /// keeps no summaries answers from <see cref="ListRunsAsync"/>; the blob store reads them from one listing.
    /// </summary>
    async Task<IReadOnlyList<RunSummary>> ListRunSummariesAsync(string? experiment, CancellationToken ct = default) =>
        (await ListRunsAsync(experiment, ct)).Select(RunSummary.Of).ToList();

    /// <summary>Experiment names that have runs.</summary>
    Task<IReadOnlyList<string>> ListExperimentsAsync(CancellationToken ct = default);
}
