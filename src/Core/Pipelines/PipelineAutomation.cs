using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;

namespace MlFunctions.Core.Pipelines;

/// <summary>What an upload marker or a schedule's fire did (recorded, and shown by the API).</summary>
public enum AutomationOutcome
{
    /// <summary>A new pipeline run was scheduled.</summary>
    Started,

    /// <summary>The run under the same id had failed or been terminated; it was scheduled again.</summary>
    Restarted,

    /// <summary>A run under the same id already exists: this content (or occurrence) has its run.</summary>
    Duplicate,

    /// <summary>Nothing to do (an incomplete batch; a marker another trigger owns).</summary>
    Skipped,

    /// <summary>It cannot start a run (no stored spec, a bad spec or batch); only a change by the user can fix it.</summary>
    Rejected,

    /// <summary>Starting failed (storage, the Durable client) after the host's retries.</summary>
    Failed,
}

/// <summary>The body of <c>PUT api/pipelines/{name}/schedules/{id}</c>.</summary>
public sealed record PipelineScheduleRequest
{
    /// <summary>CRON: 5 fields (minute hour day month day-of-week) or 6 with seconds first.</summary>
    public string? Cron { get; init; }

    /// <summary>IANA or Windows time zone id the CRON is read in (default UTC); DST gaps and overlaps as Cronos handles them.</summary>
    public string? TimeZone { get; init; }

    /// <summary>A JSON merge patch (RFC 7386) applied to the stored spec at each fire, e.g. <c>{"sweep": {"maxTrials": 2}}</c>.</summary>
    public JsonObject? Overrides { get; init; }

    /// <summary>Run on the newest complete upload batch (<c>datasets/{pipeline}/{batch}/_SUCCESS</c>) instead of the spec's own data.</summary>
    public bool LatestBatch { get; init; }

    /// <summary>Create paused (or pause/resume on a replace); null keeps the current state (new: active).</summary>
    public bool? Paused { get; init; }
}

/// <summary>
/// A stored schedule (<c>pipeline-schedules/{pipeline}/{id}.json</c>). <see cref="ArmedAt"/> and
/// <see cref="LastOccurrence"/> decide what is due: only occurrences strictly after both fire, and only the
/// latest of them, so a host that was down catches up once and never fires an occurrence twice.
/// </summary>
public sealed record PipelineScheduleRecord
{
    public string Pipeline { get; init; } = "";

    public string Id { get; init; } = "";

    public string Cron { get; init; } = "";

    public string TimeZone { get; init; } = "UTC";

    public JsonObject? Overrides { get; init; }

    /// <summary>Each fire runs on the newest complete upload batch of the pipeline, not the spec's own data.</summary>
    public bool LatestBatch { get; init; }

    public bool Paused { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset UpdatedAt { get; init; }

    /// <summary>Occurrences at or before this never fire: set on create, replace and resume (no catch-up of a pause).</summary>
    public DateTimeOffset ArmedAt { get; init; }

    /// <summary>The latest occurrence handled (started, duplicate or rejected); the restart-safe memory of the timer.</summary>
    public DateTimeOffset? LastOccurrence { get; init; }

    public DateTimeOffset? LastFiredAt { get; init; }

    public string? LastRunId { get; init; }

    public AutomationOutcome? LastOutcome { get; init; }

    public string? LastReason { get; init; }

    /// <summary>Computed when read over the API, not stored.</summary>
    public DateTimeOffset? NextOccurrence { get; init; }

    /// <summary>Occurrences strictly after this may fire.</summary>
    public DateTimeOffset FireAfter => LastOccurrence is { } last && last > ArmedAt ? last : ArmedAt;
}

/// <summary>What one marker led to (<c>pipeline-triggers/{pipeline}/{batch}.json</c>, the latest per batch).</summary>
public sealed record PipelineTriggerRecord
{
    public string Pipeline { get; init; } = "";

    public string Batch { get; init; } = "";

    public string Container { get; init; } = "";

    /// <summary>The marker blob's ETag when the host knew it (the local watcher does).</summary>
    public string? MarkerETag { get; init; }

    public AutomationOutcome Outcome { get; init; }

    public string? RunId { get; init; }

    public string Reason { get; init; } = "";

    public string? ContentHash { get; init; }

    public DateTimeOffset At { get; init; }
}

/// <summary>Instance ids and spec rewriting for triggered and scheduled runs: pure and deterministic.</summary>
public static class PipelineAutomation
{
    public const string SuccessMarker = "_SUCCESS";

    /// <summary>Folder of every pipeline's upload batches in the uploads container: <c>datasets/{pipeline}/{batch}/</c>.</summary>
    public const string UploadsPrefix = "datasets/";

    /// <summary>MNIST keeps its own trigger (<c>PipelineTriggers</c>, <c>Pipelines:Mnist</c>, the built-in spec); the generic path leaves its markers alone.</summary>
    public const string MnistPipeline = "mnist";

    /// <summary>Durable Functions' limit on an instance id.</summary>
    public const int MaxInstanceIdLength = 100;

    /// <summary>True for <c>datasets/{pipeline}/{batch}/_SUCCESS</c> with two non-empty one-level names.</summary>
    public static bool TryParseMarker(string blobName, out string pipeline, out string batch)
    {
        pipeline = batch = string.Empty;
        const string suffix = "/" + SuccessMarker;
        if (!blobName.StartsWith(UploadsPrefix, StringComparison.Ordinal) || !blobName.EndsWith(suffix, StringComparison.Ordinal))
            return false;
        var middle = blobName[UploadsPrefix.Length..^suffix.Length].Split('/');
        if (middle.Length != 2 || middle[0].Length == 0 || middle[1].Length == 0)
            return false;
        (pipeline, batch) = (middle[0], middle[1]);
        return true;
    }

    public static string BatchPrefix(string pipeline, string batch) => $"{UploadsPrefix}{pipeline}/{batch}";

    /// <summary>
    /// The spec a marker runs: the stored spec with the batch as its dataset source and trigger "blob". With
    /// <paramref name="batchesSoFar"/> (a spec with <see cref="PipelineDataset.Accumulate"/>), every one of those batches
    /// is the source (<see cref="PipelineDataset.SourcePrefixes"/>); <c>SourcePrefix</c> still names the batch that fired.
    /// </summary>
    public static PipelineSpec ForUpload(PipelineSpec stored, string container, string pipeline, string batch, IReadOnlyList<string>? batchesSoFar = null) => stored with
    {
        Name = pipeline,
        Dataset = stored.Dataset with
        {
            SourceContainer = container,
            SourcePrefix = BatchPrefix(pipeline, batch),
            SourcePrefixes = batchesSoFar is { Count: > 0 } ? [.. batchesSoFar.Select(b => BatchPrefix(pipeline, b))] : [],
            SourceDirectories = [],
        },
        Trigger = "blob",
    };

    /// <summary>
    /// The batches an accumulating run of <paramref name="batch"/> trains on: the complete ones whose names sort
    /// (ordinally) at or before it, so date-named batches (<c>2010-12-01</c>, …) mean "all the data up to this day",
    /// whatever order the markers arrive in; <paramref name="batch"/> itself is always included.
    /// </summary>
    public static IReadOnlyList<string> BatchesSoFar(IEnumerable<string> completeBatches, string batch) =>
        [.. completeBatches.Append(batch).Where(b => string.CompareOrdinal(b, batch) <= 0).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    /// <summary>
    /// <c>{pipeline}-u-{16 hex}</c> over the batch's content hash and the spec without its data location: the same
    /// files under another batch name (or a marker written twice, or a retried trigger) are one run; a changed spec
    /// or a changed byte is another.
    /// </summary>
    public static string UploadInstanceId(PipelineSpec spec, string contentHash)
    {
        var located = spec with { Dataset = spec.Dataset with { SourceContainer = null, SourcePrefix = null, SourcePrefixes = [] } };
        return $"{spec.Name}-u-" + ContentDigest.Sha256Hex(contentHash + "\n" + ContentDigest.Of(located))[..16];
    }

    /// <summary><c>{pipeline}-s-{schedule}-{occurrence yyyyMMddHHmmss UTC}</c>: one run per occurrence, however often it fires.</summary>
    public static string ScheduledInstanceId(string pipeline, string scheduleId, DateTimeOffset occurrence)
    {
        var stamp = occurrence.UtcDateTime.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        var readable = $"{pipeline}-s-{scheduleId}-{stamp}";
        return readable.Length <= MaxInstanceIdLength ? readable : $"{pipeline}-s-" + ContentDigest.Sha256Hex(scheduleId + "\n" + stamp)[..16];
    }

    /// <summary>
    /// The stored spec with a schedule's overrides merged in (RFC 7386: objects merge, null deletes, anything else
    /// replaces) and trigger "timer". The name stays the pipeline's.
    /// </summary>
    public static PipelineSpec WithOverrides(PipelineSpec stored, JsonObject? overrides, string trigger = "timer")
    {
        var spec = stored;
        if (overrides is { Count: > 0 })
        {
            var node = JsonSerializer.SerializeToNode(stored, MlJson.Options)!.AsObject();
            MergePatch(node, overrides);
            spec = node.Deserialize<PipelineSpec>(MlJson.Options) ?? stored;
        }

        return spec with { Name = stored.Name, Trigger = trigger };
    }

    /// <summary>Problems of a schedule id or pipeline name (the rule every route uses for names).</summary>
    public static string? NameProblem(string what, string name, bool pipeline) =>
        DatasetLayout.IsValidName(name) && !(pipeline && PipelineSpec.ReservedNames.Contains(name))
            ? null
            : $"'{name}' is not a valid {what}: 1-63 characters of a-z, 0-9, '-', '_' or '.', starting with a letter or digit" + (pipeline ? $", and not {string.Join("/", PipelineSpec.ReservedNames)}" : string.Empty);

    private static void MergePatch(JsonObject target, JsonObject patch)
    {
        foreach (var (key, value) in patch.ToList())
        {
            // Member names match the way the options read them (camelCase, case-insensitive).
            var existing = target.FirstOrDefault(p => string.Equals(p.Key, key, StringComparison.OrdinalIgnoreCase)).Key ?? key;
            if (value is null)
            {
                target.Remove(existing);
            }
            else if (value is JsonObject child && target[existing] is JsonObject current)
            {
                MergePatch(current, child);
            }
            else
            {
                target[existing] = value.DeepClone();
            }
        }
    }
}
