using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MlFunctions.Activities.Storage;
using MlFunctions.Api.Pipelines;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Local.Triggers;

/// <summary>
/// The local host's stand-in for the Functions BlobTrigger on <see cref="PipelineUploadTriggers.UploadTriggerPath"/>:
/// polls the uploads container for <c>datasets/{pipeline}/{batch}/_SUCCESS</c> markers of any pipeline but MNIST
/// (whose markers <see cref="UploadWatcher"/> handles) and hands each new one to
/// <see cref="PipelineUploadTriggers.StartForMarkerAsync"/>.
/// </summary>
/// <remarks>
/// As <see cref="UploadWatcher"/>: a handled marker gets blob metadata (<see cref="UploadWatcher.HandledMetadata"/>)
/// so a restarted host skips it; duplicates are prevented by the content-addressed run id, so a crash between the
/// start and the metadata write finds the run again. The metadata write is conditional on the listed ETag: a marker
/// re-uploaded meanwhile stays new. A failing marker is retried on later polls up to <see cref="MaxAttempts"/>
/// times per marker version, then recorded as failed (the API shows it) and left alone; no exception leaves the loop.
/// </remarks>
public sealed class PipelineUploadWatcher(
    Func<DurableTaskClient> client,
    IStorageClients storage,
    PipelineUploadTriggers triggers,
    PipelineAutomationOptions options,
    ILogger<PipelineUploadWatcher> logger) : BackgroundService
{
    public const int MaxAttempts = 5;

    private readonly Dictionary<(string Name, ETag ETag), int> failures = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.WatchUploads)
            return;

        var interval = TimeSpan.FromSeconds(Math.Max(0.1, options.UploadPollSeconds));
        logger.LogInformation("Watching {Container}/{Prefix}{{pipeline}}/{{batch}}/{Marker} every {Interval}s for pipeline uploads", options.UploadsContainer, PipelineAutomation.UploadsPrefix, PipelineAutomation.SuccessMarker, interval.TotalSeconds);
        using var timer = new PeriodicTimer(interval);
        do
        {
            try
            {
                await PollOnceAsync(client(), await storage.BlobsAsync(stoppingToken), stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(e, "Polling {Container} for pipeline uploads failed; retrying in {Interval}s", options.UploadsContainer, interval.TotalSeconds);
            }
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    /// <summary>One pass over the markers: handles the new ones and returns what each led to.</summary>
    public async Task<IReadOnlyList<TriggerResult>> PollOnceAsync(DurableTaskClient durable, BlobServiceClient blobs, CancellationToken ct)
    {
        var container = blobs.GetBlobContainerClient(options.UploadsContainer);
        var markers = new List<(BlobItem Item, string Pipeline, string Batch)>();
        try
        {
            await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = PipelineAutomation.UploadsPrefix, Traits = BlobTraits.Metadata }, ct))
            {
                if (PipelineAutomation.TryParseMarker(item.Name, out var pipeline, out var batch)
                    && pipeline != PipelineAutomation.MnistPipeline
                    && !item.Metadata.ContainsKey(UploadWatcher.HandledMetadata))
                {
                    markers.Add((item, pipeline, batch));
                }
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return [];
        }

        var results = new List<TriggerResult>();
        foreach (var (marker, pipeline, batch) in markers)
        {
            var etag = marker.Properties.ETag ?? default;
            var key = (marker.Name, etag);
            if (failures.GetValueOrDefault(key) >= MaxAttempts)
                continue;
            try
            {
                var result = await triggers.StartForMarkerAsync(durable, blobs, container.Name, pipeline, batch, etag.ToString(), ct);
                results.Add(result);
                if (result.Outcome != TriggerOutcome.Skipped)
                    await MarkAsync(container.GetBlobClient(marker.Name), marker, result, ct);
                failures.Remove(key);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                var attempts = failures[key] = failures.GetValueOrDefault(key) + 1;
                logger.LogWarning(e, "Upload {Container}/{Marker}: attempt {Attempt} of {Max} failed", container.Name, marker.Name, attempts, MaxAttempts);
                if (attempts >= MaxAttempts)
                    await GiveUpAsync(container.Name, pipeline, batch, etag, e, ct);
            }
        }

        return results;
    }

    private async Task GiveUpAsync(string container, string pipeline, string batch, ETag etag, Exception e, CancellationToken ct)
    {
        try
        {
            await triggers.RecordGivenUpAsync(container, pipeline, batch, etag.ToString(), $"gave up after {MaxAttempts} attempts: {e.GetType().Name}: {e.Message}; write the marker again (or restart the host) to retry", ct);
        }
        catch (Exception recordFailure) when (!ct.IsCancellationRequested)
        {
            logger.LogWarning(recordFailure, "Could not record the failure of {Pipeline}/{Batch}", pipeline, batch);
        }
    }

    private static async Task MarkAsync(BlobClient blob, BlobItem marker, TriggerResult result, CancellationToken ct)
    {
        var metadata = new Dictionary<string, string>(marker.Metadata) { [UploadWatcher.HandledMetadata] = result.InstanceId ?? result.Outcome.ToString() };
        try
        {
            await blob.SetMetadataAsync(metadata, new BlobRequestConditions { IfMatch = marker.Properties.ETag }, ct);
        }
        catch (RequestFailedException e) when (e.Status is 404 or 412)
        {
            // Deleted or replaced meanwhile: the next poll sees the new state.
        }
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try
        {
            return await timer.WaitForNextTickAsync(ct);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
