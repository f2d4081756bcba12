using System.Globalization;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Json;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;

namespace MlFunctions.Activities.Tracking;

/// <summary>
/// Sweeps and tracking runs as JSON blobs in the <c>tracking</c> container:
/// <list type="bullet">
/// <item><c>sweeps/{sweepId}/sweep.json</c>: a sweep record;</item>
/// <item><c>runs/{runId}/run.json</c>: a run (params, tags, status, final metrics, artifacts, and the history once it ended);</item>
/// <item><c>runs/{runId}/steps/{step:D6}.json</c>: one epoch's metrics, written as the progress event arrives;</item>
/// <item><c>experiments/{experiment}/{runId}</c>: an empty marker, so an experiment's runs are listed without reading all runs.</item>
/// </list>
/// Records written before this layout (<c>sweeps/{sweepId}/runs/{runId}.json</c>) are still read.
/// Why blobs and not Table storage: a run is read and written whole (params, a per-epoch metric history
/// that outgrows Table's 64 KiB property limit in long runs, tags, artifacts); the queries the API answers
/// are per experiment or over tens to hundreds of runs, sorted in memory; and models, checkpoints and
/// datasets already live in the same blob account, locally on Azurite and in Azure. A step blob has one
/// writer and is idempotent (same run and step, same content); the run blob has a few writers one after
/// another (start, end, the sweep), merged under an ETag so a redelivered write cannot lose another.
/// </summary>
public sealed class BlobTrackingStore(IStorageClients storage) : ITrackingStore
{
    public const string ContainerName = "tracking";

    public async Task SaveSweepAsync(SweepRecord sweep, CancellationToken ct = default) =>
        await UploadAsync(SweepBlob(sweep.SweepId), sweep, ct);

    public async Task SaveRunAsync(TrackingRun run, CancellationToken ct = default)
    {
        var container = await ContainerAsync(ct);
        var blob = container.GetBlobClient(RunBlob(run.RunId));
        for (var attempt = 1; ; attempt++)
        {
            var (existing, etag) = await DownloadWithETagAsync<TrackingRun>(blob, ct);
            existing ??= await LegacyRunAsync(run.Experiment, run.RunId, ct);
            var (merged, fresh) = TrackingRunMerge.Merge(existing, run);
            try
            {
                var conditions = etag is { } e ? new BlobRequestConditions { IfMatch = e } : new BlobRequestConditions { IfNoneMatch = ETag.All };
                await blob.UploadAsync(BinaryData.FromObjectAsJson(merged, MlJson.Options), new BlobUploadOptions { Conditions = conditions }, ct);
            }
            catch (RequestFailedException x) when (x.Status is 409 or 412 && attempt < 8)
            {
                continue; // another writer came in between: merge with theirs
            }

            if (fresh && existing is not null)
            {
                await DeleteStepsAsync(container, run.RunId, ct);
            }

            if (existing is null || existing.Experiment != merged.Experiment)
            {
                await container.GetBlobClient(ExperimentMarker(merged.Experiment, merged.RunId)).UploadAsync(BinaryData.Empty, overwrite: true, ct);
            }

            return;
        }
    }

    public async Task SaveStepAsync(string runId, MetricStep step, CancellationToken ct = default) =>
        await UploadAsync(StepBlob(runId, step.Step), step, ct);

    public async Task<SweepRecord?> GetSweepAsync(string sweepId, CancellationToken ct = default) =>
        await DownloadAsync<SweepRecord>(SweepBlob(sweepId), ct);

    public async Task<TrackingRun?> GetRunAsync(string runId, CancellationToken ct = default)
    {
        var run = await DownloadAsync<TrackingRun>(RunBlob(runId), ct);
        return run is null ? null : await WithStepsAsync(run, ct);
    }

    public async Task<IReadOnlyList<SweepRecord>> ListSweepsAsync(CancellationToken ct = default)
    {
        var container = await ContainerAsync(ct);
        var sweeps = new List<SweepRecord>();
        await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = "sweeps/" }, ct))
        {
            if (item.Name.EndsWith("/sweep.json", StringComparison.Ordinal) && await DownloadAsync<SweepRecord>(item.Name, ct) is { } sweep)
            {
                sweeps.Add(sweep);
            }
        }

        return sweeps.OrderByDescending(s => s.CreatedAt).ToList();
    }

    public async Task<IReadOnlyList<TrackingRun>> ListRunsAsync(string? experiment, CancellationToken ct = default)
    {
        var container = await ContainerAsync(ct);
        var ids = new List<string>();
        var legacy = new List<string>();
        if (experiment is null)
        {
            await foreach (var item in container.GetBlobsByHierarchyAsync(BlobTraits.None, BlobStates.None, "/", "runs/", ct))
            {
                if (item.IsPrefix)
                    ids.Add(item.Prefix["runs/".Length..].TrimEnd('/'));
            }

            await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = "sweeps/" }, ct))
            {
                if (item.Name.Contains("/runs/", StringComparison.Ordinal))
                    legacy.Add(item.Name);
            }
        }
        else
        {
            var prefix = $"experiments/{Check(experiment)}/";
            await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix }, ct))
            {
                ids.Add(item.Name[prefix.Length..]);
            }

            await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = $"sweeps/{experiment}/runs/" }, ct))
            {
                legacy.Add(item.Name);
            }
        }

        using var throttle = new SemaphoreSlim(16);
        async Task<TrackingRun?> Read(Func<Task<TrackingRun?>> read)
        {
            await throttle.WaitAsync(ct);
            try
            {
                var run = await read();

                // A running run's metrics are in its step blobs; its latest step is what lists rank by.
                return run is { Status: TrialState.Running } ? await WithStepsAsync(run, ct) : run;
            }
            finally
            {
                throttle.Release();
            }
        }

        var current = await Task.WhenAll(ids.Distinct(StringComparer.Ordinal).Select(id => Read(() => DownloadAsync<TrackingRun>(RunBlob(id), ct))));
        var old = await Task.WhenAll(legacy.Select(name => Read(() => DownloadAsync<TrackingRun>(name, ct))));
        var runs = current.OfType<TrackingRun>().Where(r => experiment is null || r.Experiment == experiment).ToList();
        var known = runs.Select(r => r.RunId).ToHashSet(StringComparer.Ordinal);
        runs.AddRange(old.OfType<TrackingRun>().Where(r => known.Add(r.RunId)));
        return runs;
    }

    public async Task<IReadOnlyList<string>> ListExperimentsAsync(CancellationToken ct = default)
    {
        var container = await ContainerAsync(ct);
        var names = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var item in container.GetBlobsByHierarchyAsync(BlobTraits.None, BlobStates.None, "/", "experiments/", ct))
        {
            if (item.IsPrefix)
                names.Add(item.Prefix["experiments/".Length..].TrimEnd('/'));
        }

        await foreach (var item in container.GetBlobsByHierarchyAsync(BlobTraits.None, BlobStates.None, "/", "sweeps/", ct))
        {
            if (item.IsPrefix)
                names.Add(item.Prefix["sweeps/".Length..].TrimEnd('/'));
        }

        return names.ToList();
    }

    private async Task<TrackingRun> WithStepsAsync(TrackingRun run, CancellationToken ct)
    {
        var container = await ContainerAsync(ct);
        var names = new List<string>();
        await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = $"runs/{Check(run.RunId)}/steps/" }, ct))
        {
            names.Add(item.Name);
        }

        if (names.Count == 0)
            return run;
        var steps = await Task.WhenAll(names.Select(n => DownloadAsync<MetricStep>(n, ct)));
        return run with { Metrics = TrackingRunMerge.History(run.Metrics, steps.OfType<MetricStep>()) };
    }

    private async Task DeleteStepsAsync(BlobContainerClient container, string runId, CancellationToken ct)
    {
        await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = $"runs/{Check(runId)}/steps/" }, ct))
        {
            await container.GetBlobClient(item.Name).DeleteIfExistsAsync(cancellationToken: ct);
        }
    }

    private async Task<TrackingRun?> LegacyRunAsync(string experiment, string runId, CancellationToken ct) =>
        IsValid(experiment) ? await DownloadAsync<TrackingRun>($"sweeps/{experiment}/runs/{Check(runId)}.json", ct) : null;

    private static string SweepBlob(string sweepId) => $"sweeps/{Check(sweepId)}/sweep.json";

    private static string RunBlob(string runId) => $"runs/{Check(runId)}/run.json";

    private static string StepBlob(string runId, int step) =>
        $"runs/{Check(runId)}/steps/{step.ToString("D6", CultureInfo.InvariantCulture)}.json";

    private static string ExperimentMarker(string experiment, string runId) => $"experiments/{Check(experiment)}/{Check(runId)}";

    /// <summary>Ids come from URLs too: a slash or dot-dot would reach another run's blobs.</summary>
    private static string Check(string id) =>
        IsValid(id) ? id : throw new ArgumentException($"'{id}' is not a valid sweep, experiment or run id");

    private static bool IsValid(string id) =>
        !string.IsNullOrWhiteSpace(id) && !id.Contains('/') && !id.Contains('\\') && !id.Contains("..", StringComparison.Ordinal);

    private async Task UploadAsync<T>(string name, T value, CancellationToken ct)
    {
        var container = await ContainerAsync(ct);
        await container.GetBlobClient(name).UploadAsync(BinaryData.FromObjectAsJson(value, MlJson.Options), overwrite: true, ct);
    }

    private async Task<T?> DownloadAsync<T>(string name, CancellationToken ct)
        where T : class
    {
        var container = await ContainerAsync(ct);
        return (await DownloadWithETagAsync<T>(container.GetBlobClient(name), ct)).Value;
    }

    private static async Task<(T? Value, ETag? ETag)> DownloadWithETagAsync<T>(BlobClient blob, CancellationToken ct)
        where T : class
    {
        try
        {
            var content = await blob.DownloadContentAsync(ct);
            return (content.Value.Content.ToObjectFromJson<T>(MlJson.Options), content.Value.Details.ETag);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return (null, null);
        }
        catch (JsonException)
        {
            return (null, null); // a foreign or truncated blob is not a record; the listing skips it
        }
    }

    private BlobContainerClient? container;

    private async Task<BlobContainerClient> ContainerAsync(CancellationToken ct)
    {
        if (container is null)
        {
            var c = (await storage.BlobsAsync(ct)).GetBlobContainerClient(ContainerName);
            await c.CreateIfNotExistsAsync(cancellationToken: ct);
            container = c;
        }

        return container;
    }
}

/// <summary>Records a sweep (at its start and its end).</summary>
public sealed class TrackSweepActivity(ITrackingStore store) : IActivity<SweepRecord, bool>
{
    public async Task<bool> RunAsync(SweepRecord input, ActivityCall call)
    {
        await store.SaveSweepAsync(input, call.Cancellation);
        return true;
    }
}

/// <summary>
/// Upserts a tracking run: the start and end of every TrainModel (<c>TrackRun</c>). Writes merge (see <see cref="TrackingRunMerge"/>), so a redelivery is harmless.
/// </summary>
public sealed class TrackTrialActivity(ITrackingStore store) : IActivity<TrackingRun, bool>
{
    public async Task<bool> RunAsync(TrackingRun input, ActivityCall call)
    {
        await store.SaveRunAsync(input, call.Cancellation);
        return true;
    }
}

/// <summary>
/// Upserts the sweep's view of finished trials (<c>TrackTrials</c>): several per call when trials end
/// while the previous write is in flight, each its own blob, written side by side.
/// </summary>
public sealed class TrackTrialsActivity(ITrackingStore store) : IActivity<List<TrackingRun>, bool>
{
    public async Task<bool> RunAsync(List<TrackingRun> input, ActivityCall call)
    {
        await Task.WhenAll(input.Select(run => store.SaveRunAsync(run, call.Cancellation)));
        return true;
    }
}

/// <summary>Writes one epoch's metrics of a run as TrainModel receives the progress event; idempotent per (run, step).</summary>
public sealed class TrackRunStepActivity(ITrackingStore store) : IActivity<TrackRunStepInput, bool>
{
    public async Task<bool> RunAsync(TrackRunStepInput input, ActivityCall call)
    {
        await store.SaveStepAsync(input.RunId, input.Step, call.Cancellation);
        return true;
    }
}
