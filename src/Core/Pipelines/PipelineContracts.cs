using System.Globalization;
using System.Text.Json;

namespace MlFunctions.Core.Pipelines;

public enum StepStatus
{
    Succeeded,
    Failed,
    Skipped,
}

/// <summary>
/// Lineage of one step execution in a pipeline run: what went in (content digests), what came out, when,
/// how many attempts, and whether the output came from the cache. Stored as
/// <c>pipeline-runs/{runId}/lineage/{sequence:D4}-{step}.json</c>.
/// </summary>
public sealed record StepRecord
{
    public const int CurrentSchemaVersion = 1;

    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    public required string RunId { get; init; }

    /// <summary>1, 2, … in the order the orchestration started the steps (deterministic under replay).</summary>
    public required int Sequence { get; init; }

    public required string Step { get; init; }

    public required string CodeVersion { get; init; }

    /// <summary>The activity or sub-orchestration that does the work.</summary>
    public required string Target { get; init; }

    /// <summary>Null for a skipped step, whose input never existed.</summary>
    public string? CacheKey { get; init; }

    /// <summary>Member of the cache content → sha256 of its canonical JSON (see <see cref="StepFingerprint"/>).</summary>
    public IReadOnlyDictionary<string, string> Inputs { get; init; } = new Dictionary<string, string>();

    /// <summary>sha256 of the output's canonical JSON; null unless the step succeeded.</summary>
    public string? OutputDigest { get; init; }

    /// <summary>Orchestration clock (replay-safe), UTC.</summary>
    public required DateTime StartedAt { get; init; }

    public required DateTime EndedAt { get; init; }

    public bool Cached { get; init; }

    /// <summary>For a cache hit: the run whose execution produced the output.</summary>
    public string? CachedFromRunId { get; init; }

    /// <summary>Executions of the target: 0 for a cache hit or a skip.</summary>
    public int Attempts { get; init; }

    public required StepStatus Status { get; init; }

    /// <summary>Why the step failed or was skipped.</summary>
    public string? Error { get; init; }
}

/// <summary>
/// A cached step output: blob <c>pipeline-cache/{key}.json</c>. <see cref="CreatedAt"/> is the producing
/// orchestration's clock, so staleness is decided on replay-safe times only.
/// </summary>
public sealed record StepCacheEntry
{
    public required string Key { get; init; }

    public required string Step { get; init; }

    public required string CodeVersion { get; init; }

    /// <summary>The run that executed the step and produced the output.</summary>
    public required string RunId { get; init; }

    public required DateTime CreatedAt { get; init; }

    /// <summary>The output as MlJson wrote it.</summary>
    public required JsonElement Output { get; init; }

    public required string OutputDigest { get; init; }

    /// <summary>An entry older than <paramref name="maxStaleness"/> at <paramref name="now"/> is a miss; null = no limit.</summary>
    public bool IsFreshAt(DateTime now, TimeSpan? maxStaleness) => maxStaleness is not { } limit || now - CreatedAt <= limit;
}

/// <summary>Input of <c>LookupStepCache</c>: the key, the orchestration's now, and the oldest acceptable entry age (null = any).</summary>
public sealed record LookupStepCacheInput(string Key, DateTime Now, TimeSpan? MaxStaleness);

/// <summary>Output of <c>LookupStepCache</c>: the entry on a hit, null on a miss (absent or stale).</summary>
public sealed record LookupStepCacheResult(StepCacheEntry? Entry);

/// <summary>What an exit handler is told about a failed pipeline body: the failed step (null when the failure was not a step's) and why.</summary>
public sealed record PipelineFailure(string? Step, string Reason);

/// <summary>Reads stored pipeline runs back: lineage (as a summary) and the run report.</summary>
public interface IPipelineRunReader
{
    /// <summary>The run's lineage summary; no steps when the run is unknown.</summary>
    Task<PipelineRunRecord> SummarizeAsync(string runId, CancellationToken ct = default);

    /// <summary>The run report (Markdown), or null before the report step has run.</summary>
    Task<string?> ReadReportMarkdownAsync(string runId, CancellationToken ct = default);
}

/// <summary>The summary of a run for a run report, built from its lineage records.</summary>
public sealed record PipelineRunRecord
{
    public required string RunId { get; init; }

    public DateTime? StartedAt { get; init; }

    public DateTime? EndedAt { get; init; }

    /// <summary>Steps that ran their target (succeeded or failed).</summary>
    public int Executed { get; init; }

    public int Cached { get; init; }

    public int Skipped { get; init; }

    public int Failed { get; init; }

    /// <summary>All records, by sequence.</summary>
    public required IReadOnlyList<StepRecord> Steps { get; init; }

    public static PipelineRunRecord From(string runId, IEnumerable<StepRecord> records)
    {
        var steps = records.OrderBy(r => r.Sequence).ToList();
        return new PipelineRunRecord
        {
            RunId = runId,
            StartedAt = steps.Count == 0 ? null : steps.Min(s => s.StartedAt),
            EndedAt = steps.Count == 0 ? null : steps.Max(s => s.EndedAt),
            Executed = steps.Count(s => !s.Cached && s.Status != StepStatus.Skipped),
            Cached = steps.Count(s => s.Cached),
            Skipped = steps.Count(s => s.Status == StepStatus.Skipped),
            Failed = steps.Count(s => s.Status == StepStatus.Failed),
            Steps = steps,
        };
    }
}

/// <summary>Blob names of the step cache and of run lineage.</summary>
public static class PipelineLayout
{
    public const string CacheContainer = "pipeline-cache";
    public const string RunsContainer = "pipeline-runs";

    public static string CacheBlob(string key) => $"{key}.json";

    public static string LineagePrefix(string runId) => $"{runId}/lineage/";

    /// <summary>The run report, next to the run's lineage: JSON for tools, Markdown for people.</summary>
    public static string ReportJsonBlob(string runId) => $"{runId}/report.json";

    public static string ReportMarkdownBlob(string runId) => $"{runId}/report.md";

    /// <summary>Zero-padded so a prefix listing comes back in step order.</summary>
    public static string LineageBlob(string runId, int sequence, string step) =>
        $"{LineagePrefix(runId)}{sequence.ToString("D4", CultureInfo.InvariantCulture)}-{step}.json";
}

/// <summary>Input of <c>TerminateInstance</c>: the orchestration instance to end and why.</summary>
public sealed record TerminateInstanceInput(string InstanceId, string Reason);

/// <summary>Ends an orchestration instance: each host's <c>DurableTaskClient</c> (the local engine's, or Functions' binding).</summary>
public interface IInstanceTerminator
{
    /// <summary>Returns false when the instance does not exist or has already ended.</summary>
    Task<bool> TerminateAsync(string instanceId, string reason, CancellationToken ct);
}
