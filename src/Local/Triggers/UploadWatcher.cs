using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MlFunctions.Activities.Storage;
using MlFunctions.Api.Pipelines;

namespace MlFunctions.Local.Triggers;

/// <summary>
/// The local host's stand-in for the Functions BlobTrigger on <see cref="PipelineTriggers.UploadTriggerPath"/>:
/// Azurite raises no Event Grid events, so this polls the uploads container for batch markers and hands
/// each new one to <see cref="PipelineTriggers.StartForUploadAsync"/>, as the blob trigger does.
/// </summary>
/// <remarks>
/// A handled marker gets blob metadata (<see cref="HandledMetadata"/>: the instance id or outcome), so a
/// restarted host lists it and moves on without re-reading the batch. The metadata is only a shortcut:
/// duplicates are prevented by the content-addressed instance id, so a crash between the start and the
/// metadata write re-reads the batch once and finds its run. Re-uploading the marker replaces the blob and
/// its metadata, which makes the batch new again. (The Functions host must not do this: a metadata write
/// changes the blob's ETag, and its blob trigger would fire again.) A failed attempt is retried on later
/// polls up to <see cref="MaxAttempts"/> times per marker version, like the blob trigger's dequeue count,
/// then logged as given up; no exception ever leaves the loop.
/// </remarks>
public sealed class UploadWatcher(
    Func<DurableTaskClient> client,
    IStorageClients storage,
    PipelineTriggers triggers,
    ILogger<UploadWatcher> logger) : BackgroundService
{
    public const string HandledMetadata = "mlfpipelinerun";
    public const int MaxAttempts = 5;

    private readonly Dictionary<(string Name, ETag ETag), int> failures = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = triggers.Options;
        if (!settings.WatchUploads)
        {
            return;
        }

        var interval = TimeSpan.FromSeconds(Math.Max(0.1, settings.PollSeconds));
        logger.LogInformation("Watching {Container}/{Prefix}*/{Marker} every {Interval}s for pipeline uploads", settings.UploadsContainer, PipelineTriggers.UploadsPrefix, PipelineTriggers.SuccessMarker, interval.TotalSeconds);
        using var timer = new PeriodicTimer(interval);
        do
        {
            try
            {
                await PollOnceAsync(client(), await storage.BlobsAsync(stoppingToken), stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // A storage outage must not end the watcher (nor the host): try again next tick.
                logger.LogWarning(e, "Polling {Container} for uploads failed; retrying in {Interval}s", settings.UploadsContainer, interval.TotalSeconds);
            }
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    /// <summary>One pass over the markers: starts runs for the new ones. Returns what each new marker led to.</summary>
    public async Task<IReadOnlyList<TriggerResult>> PollOnceAsync(DurableTaskClient durable, BlobServiceClient blobs, CancellationToken ct)
    {
        var container = blobs.GetBlobContainerClient(triggers.Options.UploadsContainer);
        var markers = new List<BlobItem>();
        try
        {
            await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = PipelineTriggers.UploadsPrefix, Traits = BlobTraits.Metadata }, ct))
            {
                if (PipelineTriggers.TryParseMarker(item.Name, out _) && !item.Metadata.ContainsKey(HandledMetadata))
                {
                    markers.Add(item);
                }
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return [];
        }

        var results = new List<TriggerResult>();
        foreach (var marker in markers)
        {
            var key = (marker.Name, marker.Properties.ETag ?? default);
            if (failures.GetValueOrDefault(key) >= MaxAttempts)
            {
                continue;
            }

            PipelineTriggers.TryParseMarker(marker.Name, out var batchPrefix);
            try
            {
                var result = await triggers.StartForUploadAsync(durable, blobs, container.Name, batchPrefix, ct);
                results.Add(result);
                await MarkAsync(container.GetBlobClient(marker.Name), marker, result, ct);
                failures.Remove(key);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                var attempts = failures[key] = failures.GetValueOrDefault(key) + 1;
                logger.LogWarning(
                    e,
                    "Upload {Container}/{Marker}: attempt {Attempt} of {Max} failed{GivingUp}",
                    container.Name,
                    marker.Name,
                    attempts,
                    MaxAttempts,
                    attempts >= MaxAttempts ? "; giving up until the marker is uploaded again or the host restarts" : string.Empty);
            }
        }

        return results;
    }

    private static async Task MarkAsync(BlobClient blob, BlobItem marker, TriggerResult result, CancellationToken ct)
    {
        var metadata = new Dictionary<string, string>(marker.Metadata) { [HandledMetadata] = result.InstanceId ?? result.Outcome.ToString() };
        try
        {
            // If-Match: a marker re-uploaded since the listing is a new upload and must stay unmarked.
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
