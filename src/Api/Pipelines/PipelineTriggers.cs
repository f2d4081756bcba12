using System.Globalization;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MlFunctions.Api.Durable;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Api.Pipelines;

/// <summary>What a trigger did.</summary>
public enum TriggerOutcome
{
    /// <summary>A new pipeline instance was scheduled.</summary>
    Started,

    /// <summary>An instance with the id had failed or been terminated; it was scheduled again under the same id.</summary>
    Restarted,

    /// <summary>An instance with the id is pending, running or completed: this content (or fire time) already has its run.</summary>
    Duplicate,

    /// <summary>Nothing to run yet: the batch has no completion marker, or a scheduled run has no data source.</summary>
    Skipped,

    /// <summary>The upload cannot become a dataset (no data files, subfolders, unknown format); retrying will not help.</summary>
    Rejected,
}

/// <summary>The outcome, the instance id it concerns (null when none was derived) and why.</summary>
public sealed record TriggerResult(TriggerOutcome Outcome, string? InstanceId, string Reason)
{
    /// <summary>The upload's dataset content hash (<see cref="DatasetLayout.ContentHash"/>), when one was computed.</summary>
    public string? ContentHash { get; init; }
}

/// <summary>
/// An upload batch as read from storage: its data files with their hashes. <see cref="Problem"/> says why
/// the batch cannot be registered; <see cref="ContentHash"/> is set only for a complete, usable batch.
/// </summary>
public sealed record UploadBatch(string Container, string Prefix, bool Complete, IReadOnlyList<DatasetFile> Files, string? ContentHash, string? Problem);

/// <summary>
/// Starts the MNIST pipeline (<see cref="BuiltInPipelines.Mnist"/> on <c>TrainingPipeline</c>) from outside events, the same way in both hosts: a completed upload batch
/// (Functions' BlobTrigger, the local host's <c>UploadWatcher</c>) and a schedule (Functions' TimerTrigger,
/// the local host's <c>ScheduledRetraining</c>). The hosts only adapt their events to these calls.
/// </summary>
/// <remarks>
/// <para>An upload is a <em>batch folder</em> <c>uploads/datasets/mnist/{batch}/</c>, complete when a
/// <c>_SUCCESS</c> marker is written after the data files (the Hadoop/Spark output committer's
/// convention). A trigger per data file cannot work: MNIST is four files, a per-file event fires four
/// times, and at each of the first three the dataset is incomplete; nothing in one file says how many
/// more are coming. The marker, written last, is the one event that means "all files are there".</para>
/// <para>Uploads go to their own container, not <c>datasets</c>: <c>RegisterDataset</c> copies each new
/// version into <c>datasets/{name}/{version}/</c>, so a trigger on that container would fire on the
/// pipeline's own copies and start a run from every run.</para>
/// <para>Idempotency comes from the instance id, not from remembering events: an upload's id is
/// <c>mnist-{first 16 hex of the dataset content hash}</c> (the hash <c>RegisterDataset</c> computes,
/// so the id starts with the dataset version the run will register), and a scheduled run's is
/// <c>mnist-scheduled-{occurrence:yyyyMMddHHmm}</c>. The same content uploaded twice, under any batch name,
/// a blob trigger retried, a watcher restarted, or a timer fired twice, all name one instance. An
/// existing instance that is pending, running, suspended or completed is left alone (<see cref="TriggerOutcome.Duplicate"/>:
/// a completed run of the same content would reproduce itself; to retrain on purpose, start the
/// pipeline over HTTP); one that failed or was terminated is scheduled again under the same id
/// (<see cref="TriggerOutcome.Restarted"/>), since a re-upload after a failure is asking for another try.</para>
/// </remarks>
public sealed class PipelineTriggers(IOptions<PipelineTriggerOptions> options, ILogger<PipelineTriggers> logger)
{
    public const string DefaultUploadsContainer = "uploads";

    /// <summary>Folder of the MNIST upload batches in the uploads container.</summary>
    public const string UploadsPrefix = "datasets/mnist/";

    public const string SuccessMarker = "_SUCCESS";

    /// <summary>The Functions BlobTrigger path: the marker of any batch.</summary>
    public const string UploadTriggerPath = DefaultUploadsContainer + "/" + UploadsPrefix + "{batch}/" + SuccessMarker;

    public const string DatasetName = "mnist";

    /// <summary>Hex digits of the content hash in an upload run's instance id (64 bits).</summary>
    public const int InstanceHashLength = 16;

    public PipelineTriggerOptions Options => options.Value;

    /// <summary>The batch folder of batch <paramref name="batch"/>, e.g. <c>datasets/mnist/2024-06-01</c>.</summary>
    public static string BatchPrefix(string batch)
    {
        if (string.IsNullOrWhiteSpace(batch) || batch.Contains('/'))
        {
            throw new ArgumentException($"batch name '{batch}' must be one non-empty folder name (no '/')", nameof(batch));
        }

        return UploadsPrefix + batch;
    }

    /// <summary>True when <paramref name="blobName"/> is a batch's marker, <c>datasets/mnist/{batch}/_SUCCESS</c>.</summary>
    public static bool TryParseMarker(string blobName, out string batchPrefix)
    {
        batchPrefix = string.Empty;
        const string suffix = "/" + SuccessMarker;
        if (!blobName.StartsWith(UploadsPrefix, StringComparison.Ordinal) || !blobName[UploadsPrefix.Length..].EndsWith(suffix, StringComparison.Ordinal))
        {
            return false;
        }

        var batch = blobName[UploadsPrefix.Length..^suffix.Length];
        if (batch.Length == 0 || batch.Contains('/'))
        {
            return false;
        }

        batchPrefix = UploadsPrefix + batch;
        return true;
    }

    public static string UploadInstanceId(string contentHash) => $"mnist-{contentHash[..InstanceHashLength]}";

    public static string ScheduledInstanceId(DateTime fireTime) =>
        "mnist-scheduled-" + PipelineSchedule.AsUtc(fireTime).ToString("yyyyMMddHHmm", CultureInfo.InvariantCulture);

    /// <summary>
    /// The spec for an upload batch: the built-in MNIST spec (or <paramref name="template"/>) with the batch's blobs as the
    /// dataset source, every file of it (the marker is a hidden file, see <see cref="DatasetLayout.IsHiddenFile"/>, so
    /// registration skips it; no include patterns, so the run registers exactly the files the trigger hashed), trigger "blob".
    /// </summary>
    public static PipelineSpec ForUpload(string container, string batchPrefix, PipelineSpec? template = null) =>
        WithSource(template ?? BuiltInPipelines.Mnist, "blob", [], container, batchPrefix.TrimEnd('/'));

    /// <summary>The MNIST spec reading <paramref name="directories"/> or a container's prefix, all files, started by <paramref name="trigger"/>.</summary>
    private static PipelineSpec WithSource(PipelineSpec spec, string trigger, IReadOnlyList<string> directories, string? container = null, string? prefix = null) => spec with
    {
        Dataset = spec.Dataset with { Name = DatasetName, SourceDirectories = directories, SourceContainer = container, SourcePrefix = prefix, SourcePrefixes = [], Include = [] },
        Trigger = trigger,
    };

    /// <summary>
    /// Lists a batch and, when it is complete and usable, hashes its data files the way registration does.
    /// A missing container reads as an empty batch.
    /// </summary>
    public static async Task<UploadBatch> ReadBatchAsync(BlobServiceClient blobs, string container, string batchPrefix, CancellationToken ct = default)
    {
        var source = blobs.GetBlobContainerClient(container);
        var prefix = batchPrefix.TrimEnd('/') + "/";
        var complete = false;
        var data = new List<string>();
        var nested = new List<string>();
        try
        {
            await foreach (var item in source.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix }, ct))
            {
                var name = item.Name[prefix.Length..];
                if (name == SuccessMarker)
                {
                    complete = true;
                }
                else if (name.Contains('/'))
                {
                    nested.Add(name);
                }
                else if (!DatasetLayout.IsHiddenFile(name))
                {
                    data.Add(name);
                }
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // No container yet: nothing was uploaded.
        }

        UploadBatch Result(string? problem) => new(container, prefix.TrimEnd('/'), complete, [], null, problem);
        if (!complete)
        {
            return Result(null);
        }

        if (nested.Count > 0)
        {
            return Result($"{container}/{prefix} has files in subfolders ({string.Join(", ", nested.Take(3))}); a dataset batch is one flat folder");
        }

        if (data.Count == 0)
        {
            return Result($"{container}/{prefix} has a {SuccessMarker} marker but no data files");
        }

        try
        {
            DatasetLayout.DetectFormat(data);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            return Result($"{container}/{prefix}: {e.Message}");
        }

        var files = new List<DatasetFile>(data.Count);
        foreach (var name in data.Order(StringComparer.Ordinal))
        {
            await using var stream = await source.GetBlobClient(prefix + name).OpenReadAsync(cancellationToken: ct);
            var (sha, bytes) = await DatasetLayout.HashFileAsync(stream, ct);
            files.Add(new DatasetFile(name, bytes, sha));
        }

        return new UploadBatch(container, prefix.TrimEnd('/'), true, files, DatasetLayout.ContentHash(files), null);
    }

    /// <summary>The newest complete batch (by its marker's time) in <paramref name="container"/>, or null when there is none.</summary>
    public static async Task<string?> FindLatestBatchAsync(BlobServiceClient blobs, string container, CancellationToken ct = default)
    {
        (string Prefix, DateTimeOffset At)? latest = null;
        try
        {
            await foreach (var item in blobs.GetBlobContainerClient(container).GetBlobsAsync(new GetBlobsOptions { Prefix = UploadsPrefix }, ct))
            {
                if (TryParseMarker(item.Name, out var prefix) && item.Properties.LastModified is { } at && (latest is null || at > latest.Value.At))
                {
                    latest = (prefix, at);
                }
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }

        return latest?.Prefix;
    }

    /// <summary>
    /// Starts the pipeline for the batch at <paramref name="batchPrefix"/> unless this content already has
    /// its run. An incomplete batch is <see cref="TriggerOutcome.Skipped"/>, an unusable one
    /// <see cref="TriggerOutcome.Rejected"/> (logged; not thrown, so a host's retries are not spent on it).
    /// Storage and client failures are thrown: they may pass, and a retry is idempotent.
    /// </summary>
    public async Task<TriggerResult> StartForUploadAsync(DurableTaskClient client, BlobServiceClient blobs, string container, string batchPrefix, CancellationToken ct = default)
    {
        var batch = await ReadBatchAsync(blobs, container, batchPrefix, ct);
        if (!batch.Complete)
        {
            return new TriggerResult(TriggerOutcome.Skipped, null, $"{container}/{batch.Prefix}/ has no {SuccessMarker} marker yet: the upload is not complete");
        }

        if (batch.Problem is not null)
        {
            logger.LogWarning("Upload batch {Container}/{Prefix} rejected: {Problem}", container, batch.Prefix, batch.Problem);
            return new TriggerResult(TriggerOutcome.Rejected, null, batch.Problem);
        }

        var contentHash = batch.ContentHash!;
        var result = await StartOnceAsync(client, UploadInstanceId(contentHash), ForUpload(container, batch.Prefix), $"upload {container}/{batch.Prefix}/", ct);
        return result with { ContentHash = contentHash };
    }

    /// <summary>
    /// Starts the scheduled retraining for the occurrence <paramref name="fireTime"/>, on
    /// <see cref="PipelineTriggerOptions.DataDirectories"/> or else the latest complete upload batch.
    /// </summary>
    public async Task<TriggerResult> StartScheduledAsync(DurableTaskClient client, BlobServiceClient blobs, DateTime fireTime, CancellationToken ct = default)
    {
        var settings = options.Value;
        var instanceId = ScheduledInstanceId(fireTime);
        PipelineSpec spec;
        if (settings.DataDirectories.Count > 0)
        {
            spec = WithSource(BuiltInPipelines.Mnist, "timer", [.. settings.DataDirectories]);
        }
        else if (await FindLatestBatchAsync(blobs, settings.UploadsContainer, ct) is { } latest)
        {
            spec = ForUpload(settings.UploadsContainer, latest) with { Trigger = "timer" };
        }
        else
        {
            var reason = $"no data for scheduled retraining: {PipelineTriggerOptions.Section}:DataDirectories is empty and {settings.UploadsContainer}/{UploadsPrefix} has no complete batch";
            logger.LogWarning("Scheduled run {InstanceId} skipped: {Reason}", instanceId, reason);
            return new TriggerResult(TriggerOutcome.Skipped, instanceId, reason);
        }

        return await StartOnceAsync(client, instanceId, spec, "scheduled retraining", ct);
    }

    private async Task<TriggerResult> StartOnceAsync(DurableTaskClient client, string instanceId, PipelineSpec input, string what, CancellationToken ct)
    {
        var outcome = TriggerOutcome.Started;
        var existing = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: false, ct);
        if (existing is not null)
        {
            if (existing.RuntimeStatus is not (OrchestrationRuntimeStatus.Failed or OrchestrationRuntimeStatus.Terminated))
            {
                logger.LogInformation("{What}: run {InstanceId} already exists ({Status}); not started again", what, instanceId, existing.RuntimeStatus);
                return new TriggerResult(TriggerOutcome.Duplicate, instanceId, $"{what}: run {instanceId} already exists ({existing.RuntimeStatus})");
            }

            // Both backends replace a terminal instance when one is scheduled under its id.
            outcome = TriggerOutcome.Restarted;
        }

        try
        {
            await client.ScheduleNewOrchestrationInstanceAsync(OrchestrationNames.TrainingPipeline, input, new StartOrchestrationOptions(instanceId), ct);
        }
        catch (Exception e) when (OrchestrationStarter.IsAlreadyRunning(e))
        {
            // Another trigger for the same content (a second batch, another host instance) won the race.
            return new TriggerResult(TriggerOutcome.Duplicate, instanceId, $"{what}: run {instanceId} was started concurrently");
        }

        logger.LogInformation("{What}: {Outcome} pipeline run {InstanceId}", what, outcome, instanceId);
        return new TriggerResult(outcome, instanceId, outcome == TriggerOutcome.Restarted ? $"{what}: previous run {instanceId} had {existing!.RuntimeStatus}; started again" : $"{what}: started {instanceId}");
    }
}

public static class PipelineTriggerServiceCollectionExtensions
{
    /// <summary>Registers <see cref="PipelineTriggers"/> with its settings from <c>Pipelines:Mnist</c>.</summary>
    public static IServiceCollection AddPipelineTriggers(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<PipelineTriggerOptions>(configuration.GetSection(PipelineTriggerOptions.Section));
        services.AddSingleton<PipelineTriggers>();
        return services;
    }
}
