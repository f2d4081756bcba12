using MlFunctions.Core.Sweeps;

namespace MlFunctions.Core.Tracking;

/// <summary>
/// A tracking run in MLflow's terms: params, metrics per step, tags and artifacts. Every sweep trial
/// is one; its experiment is the sweep.
/// </summary>
public sealed record TrackingRun
{
    public required string RunId { get; init; }

    /// <summary>The sweep (MLflow's experiment) the run belongs to.</summary>
    public required string Experiment { get; init; }

    public required TrialState Status { get; init; }

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

/// <summary>A sweep as the tracking store keeps it: spec, state and, once finished, what it found.</summary>
public sealed record SweepRecord
{
    public required string SweepId { get; init; }

    public required SweepSpec Spec { get; init; }

    /// <summary>Running, Completed or Failed.</summary>
    public required string Status { get; init; }

    public string? Outcome { get; init; }

    public string? Reason { get; init; }

    public TrialSummary? Best { get; init; }

    public IReadOnlyList<TrialSummary>? ParetoFront { get; init; }

    public int TrialCount { get; init; }

    public DateTime CreatedAt { get; init; }

    public DateTime UpdatedAt { get; init; }
}

public static class SweepRecordStatus
{
    public const string Running = "Running";
    public const string Completed = "Completed";
    public const string Failed = "Failed";
}

/// <summary>Where sweeps and their runs are kept (blobs in both hosts; see BlobTrackingStore for why).</summary>
public interface ITrackingStore
{
    Task SaveSweepAsync(SweepRecord sweep, CancellationToken ct = default);

    Task SaveRunAsync(TrackingRun run, CancellationToken ct = default);

    Task<SweepRecord?> GetSweepAsync(string sweepId, CancellationToken ct = default);

    Task<TrackingRun?> GetRunAsync(string sweepId, string runId, CancellationToken ct = default);

    Task<IReadOnlyList<SweepRecord>> ListSweepsAsync(CancellationToken ct = default);

    Task<IReadOnlyList<TrackingRun>> ListRunsAsync(string sweepId, CancellationToken ct = default);
}
