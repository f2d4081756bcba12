using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Json;
using MlFunctions.Core.Tracking;

namespace MlFunctions.Activities.Tracking;

/// <summary>
/// Sweeps and their runs (trials) as JSON blobs: <c>tracking/sweeps/{sweepId}/sweep.json</c> and
/// <c>tracking/sweeps/{sweepId}/runs/{runId}.json</c>.
/// Why blobs and not Table storage: a run is read and written whole (params, a per-epoch metric history
/// that outgrows Table's 64 KiB property limit in long runs, tags, artifacts); each blob has exactly one
/// writer (the sweep orchestration's activities, one at a time), so upserts need no ETag dance; the
/// queries the API answers are per sweep (tens to hundreds of runs, sorted in memory); and models,
/// checkpoints and datasets already live in the same blob account, locally on Azurite and in Azure.
/// </summary>
public sealed class BlobTrackingStore(IStorageClients storage) : ITrackingStore
{
    public const string ContainerName = "tracking";

    public async Task SaveSweepAsync(SweepRecord sweep, CancellationToken ct = default) =>
        await UploadAsync(SweepBlob(sweep.SweepId), sweep, ct);

    public async Task SaveRunAsync(TrackingRun run, CancellationToken ct = default) =>
        await UploadAsync(RunBlob(run.Experiment, run.RunId), run, ct);

    public async Task<SweepRecord?> GetSweepAsync(string sweepId, CancellationToken ct = default) =>
        await DownloadAsync<SweepRecord>(SweepBlob(sweepId), ct);

    public async Task<TrackingRun?> GetRunAsync(string sweepId, string runId, CancellationToken ct = default) =>
        await DownloadAsync<TrackingRun>(RunBlob(sweepId, runId), ct);

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

    public async Task<IReadOnlyList<TrackingRun>> ListRunsAsync(string sweepId, CancellationToken ct = default)
    {
        var container = await ContainerAsync(ct);
        var names = new List<string>();
        await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = $"sweeps/{Check(sweepId)}/runs/" }, ct))
        {
            names.Add(item.Name);
        }

        var runs = await Task.WhenAll(names.Select(n => DownloadAsync<TrackingRun>(n, ct)));
        return runs.OfType<TrackingRun>().ToList();
    }

    private static string SweepBlob(string sweepId) => $"sweeps/{Check(sweepId)}/sweep.json";

    private static string RunBlob(string sweepId, string runId) => $"sweeps/{Check(sweepId)}/runs/{Check(runId)}.json";

    /// <summary>Ids come from URLs too: a slash or dot-dot would reach another sweep's blobs.</summary>
    private static string Check(string id) =>
        string.IsNullOrWhiteSpace(id) || id.Contains('/') || id.Contains('\\') || id.Contains("..", StringComparison.Ordinal)
            ? throw new ArgumentException($"'{id}' is not a valid sweep or run id")
            : id;

    private async Task UploadAsync<T>(string name, T value, CancellationToken ct)
    {
        var container = await ContainerAsync(ct);
        await container.GetBlobClient(name).UploadAsync(BinaryData.FromObjectAsJson(value, MlJson.Options), overwrite: true, ct);
    }

    private async Task<T?> DownloadAsync<T>(string name, CancellationToken ct)
        where T : class
    {
        var container = await ContainerAsync(ct);
        try
        {
            var content = await container.GetBlobClient(name).DownloadContentAsync(ct);
            return content.Value.Content.ToObjectFromJson<T>(MlJson.Options);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
        catch (JsonException)
        {
            return null; // a foreign or truncated blob is not a record; the listing skips it
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

/// <summary>Records a finished trial as a tracking run.</summary>
public sealed class TrackTrialActivity(ITrackingStore store) : IActivity<TrackingRun, bool>
{
    public async Task<bool> RunAsync(TrackingRun input, ActivityCall call)
    {
        await store.SaveRunAsync(input, call.Cancellation);
        return true;
    }
}
