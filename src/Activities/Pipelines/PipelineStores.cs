using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Activities.Pipelines;

/// <summary>
/// The step cache: one JSON blob per cache key in <c>pipeline-cache</c>. A key is a content hash, so
/// writers of the same key store equivalent outputs and the last write simply wins (a later execution
/// refreshes the entry's age).
/// </summary>
public sealed class BlobStepCache(IStorageClients storage)
{
    public async Task<StepCacheEntry?> LookupAsync(string key, DateTime now, TimeSpan? maxStaleness, CancellationToken ct = default)
    {
        var container = await ContainerAsync(ct);
        var entry = await DatasetBlobs.ReadJsonAsync<StepCacheEntry>(container.GetBlobClient(PipelineLayout.CacheBlob(key)), ct);

        // A missing container reads as a missing blob (404), i.e. a miss.
        return entry is not null && entry.Key == key && entry.IsFreshAt(now, maxStaleness) ? entry : null;
    }

    public async Task StoreAsync(StepCacheEntry entry, CancellationToken ct = default)
    {
        var container = await ContainerAsync(ct);
        await container.CreateIfNotExistsAsync(cancellationToken: ct);
        await DatasetBlobs.WriteJsonAsync(container.GetBlobClient(PipelineLayout.CacheBlob(entry.Key)), entry, ct);
    }

    private async Task<BlobContainerClient> ContainerAsync(CancellationToken ct) =>
        (await storage.BlobsAsync(ct)).GetBlobContainerClient(PipelineLayout.CacheContainer);
}

/// <summary>
/// Run lineage: <c>pipeline-runs/{runId}/lineage/{sequence:D4}-{step}.json</c>, one immutable record per
/// step execution. Also the reader the run report and the HTTP API use.
/// </summary>
public sealed class BlobLineageStore(IStorageClients storage) : IPipelineRunReader
{
    /// <summary>Writes the record; a retried activity rewrites the same blob with the same record.</summary>
    public async Task RecordAsync(StepRecord record, CancellationToken ct = default)
    {
        var container = await ContainerAsync(ct);
        await container.CreateIfNotExistsAsync(cancellationToken: ct);
        await DatasetBlobs.WriteJsonAsync(container.GetBlobClient(PipelineLayout.LineageBlob(record.RunId, record.Sequence, record.Step)), record, ct);
    }

    /// <summary>The run's records by sequence; empty when the run has none.</summary>
    public async Task<IReadOnlyList<StepRecord>> ReadRunAsync(string runId, CancellationToken ct = default)
    {
        var container = await ContainerAsync(ct);
        var names = new List<string>();
        try
        {
            await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = PipelineLayout.LineagePrefix(runId) }, ct))
            {
                names.Add(item.Name);
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return [];
        }

        var records = await Task.WhenAll(names.Select(n => DatasetBlobs.ReadJsonAsync<StepRecord>(container.GetBlobClient(n), ct)));
        return records.OfType<StepRecord>().OrderBy(r => r.Sequence).ToList();
    }

    /// <summary>The run report's summary of a stored run.</summary>
    public async Task<PipelineRunRecord> SummarizeAsync(string runId, CancellationToken ct = default) =>
        PipelineRunRecord.From(runId, await ReadRunAsync(runId, ct));

    public async Task<string?> ReadReportMarkdownAsync(string runId, CancellationToken ct = default)
    {
        var container = await ContainerAsync(ct);
        try
        {
            var content = await container.GetBlobClient(PipelineLayout.ReportMarkdownBlob(runId)).DownloadContentAsync(ct);
            return content.Value.Content.ToString();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    private async Task<BlobContainerClient> ContainerAsync(CancellationToken ct) =>
        (await storage.BlobsAsync(ct)).GetBlobContainerClient(PipelineLayout.RunsContainer);
}

/// <summary>Pipeline specs as JSON blobs, <c>pipeline-specs/{name}.json</c>; a PUT replaces the spec, runs keep the copy they started with.</summary>
public sealed class BlobPipelineSpecStore(IStorageClients storage) : IPipelineSpecStore
{
    public const string Container = "pipeline-specs";

    public async Task<PipelineSpec?> GetAsync(string name, CancellationToken ct = default) =>
        await DatasetBlobs.ReadJsonAsync<PipelineSpec>((await ContainerAsync(ct)).GetBlobClient($"{name}.json"), ct);

    public async Task PutAsync(PipelineSpec spec, CancellationToken ct = default) =>
        await DatasetBlobs.WriteJsonAsync((await ContainerAsync(ct)).GetBlobClient($"{spec.Name}.json"), spec, ct);

    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken ct = default)
    {
        var names = new List<string>();
        await foreach (var blob in (await ContainerAsync(ct)).GetBlobsAsync(cancellationToken: ct))
            names.Add(blob.Name[..^".json".Length]);
        return names;
    }

    private async Task<BlobContainerClient> ContainerAsync(CancellationToken ct) =>
        await DatasetBlobs.ContainerAsync(await storage.BlobsAsync(ct), Container, ct);
}
