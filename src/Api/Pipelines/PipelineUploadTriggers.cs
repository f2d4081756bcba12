using Azure.Storage.Blobs;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Api.Pipelines;

/// <summary>
/// Starts a stored pipeline spec when an upload batch of it completes: <c>uploads/datasets/{pipeline}/{batch}/_SUCCESS</c>
/// runs <c>TrainingPipeline</c> with the stored spec of <c>{pipeline}</c> and the batch's files as its dataset, the
/// same way in both hosts (Functions: a BlobTrigger; local host: <c>PipelineUploadWatcher</c>). MNIST's batches
/// (<c>datasets/mnist/</c>) stay with <see cref="PipelineTriggers"/>.
/// </summary>
/// <remarks>
/// The run id is content-addressed (<see cref="PipelineAutomation.UploadInstanceId"/>): a marker written twice, a
/// retried trigger or the same files under another batch name start one run; a failed or terminated run is started
/// again under its id. A marker that cannot start a run (no stored spec, a bad name, a batch with no data or the
/// wrong format, a spec the batch makes invalid) is <see cref="AutomationOutcome.Rejected"/>: logged, recorded in
/// <see cref="PipelineTriggerRecords"/> (<c>GET api/pipelines/{name}/triggers</c> shows it) and never thrown, so a
/// host's retries are not spent on it. The uploaded blobs are never changed or deleted.
/// </remarks>
public sealed class PipelineUploadTriggers(IPipelineSpecStore specs, PipelineTriggerRecords records, TimeProvider time, ILogger<PipelineUploadTriggers> logger)
{
    /// <summary>The Functions BlobTrigger path: the marker of any pipeline's batch.</summary>
    public const string UploadTriggerPath = PipelineTriggers.DefaultUploadsContainer + "/" + PipelineAutomation.UploadsPrefix + "{pipeline}/{batch}/" + PipelineAutomation.SuccessMarker;

    /// <summary>
    /// Starts the stored spec of <paramref name="pipeline"/> on the batch unless it already has its run. Storage and
    /// Durable client failures are thrown (they may pass, and a retry is idempotent); everything else is a result.
    /// </summary>
    public async Task<TriggerResult> StartForMarkerAsync(
        DurableTaskClient client, BlobServiceClient blobs, string container, string pipeline, string batch, string? markerETag = null, CancellationToken ct = default)
    {
        var what = $"upload {container}/{PipelineAutomation.UploadsPrefix}{pipeline}/{batch}/";
        if (pipeline == PipelineAutomation.MnistPipeline)
            return new TriggerResult(TriggerOutcome.Skipped, null, $"{what}: MNIST batches are the mnist trigger's (PipelineTriggers, the built-in spec)");

        async Task<TriggerResult> Reject(string reason, string? contentHash = null)
        {
            logger.LogWarning("{What} rejected: {Reason}", what, reason);
            if (PipelineAutomation.NameProblem("pipeline name", pipeline, pipeline: true) is null && !batch.Contains('/'))
                await records.RecordAsync(Record(AutomationOutcome.Rejected, null, reason, contentHash), ct);
            return new TriggerResult(TriggerOutcome.Rejected, null, reason) { ContentHash = contentHash };
        }

        PipelineTriggerRecord Record(AutomationOutcome outcome, string? runId, string reason, string? contentHash) => new()
        {
            Pipeline = pipeline,
            Batch = batch,
            Container = container,
            MarkerETag = markerETag,
            Outcome = outcome,
            RunId = runId,
            Reason = reason,
            ContentHash = contentHash,
            At = time.GetUtcNow(),
        };

        if (PipelineAutomation.NameProblem("pipeline name", pipeline, pipeline: true) is { } nameProblem)
            return await Reject($"{what}: {nameProblem}");
        if (batch.Contains('/') || batch.Length == 0)
            return await Reject($"{what}: a batch is one folder under datasets/{pipeline}/");

        var read = await PipelineTriggers.ReadBatchAsync(blobs, container, PipelineAutomation.BatchPrefix(pipeline, batch), ct);
        if (!read.Complete)
            return new TriggerResult(TriggerOutcome.Skipped, null, $"{what} has no {PipelineAutomation.SuccessMarker} marker (any more): the upload is not complete");
        if (read.Problem is not null)
            return await Reject(read.Problem);

        var stored = await specs.GetAsync(pipeline, ct);
        if (stored is null)
            return await Reject($"{what}: no stored pipeline spec '{pipeline}' (PUT api/pipelines/{pipeline} stores one; then write the marker again). The upload is kept.", read.ContentHash);

        IReadOnlyList<string>? soFar = null;
        if (stored.Dataset.Accumulate)
        {
            // All the data so far (#13: each day's file retrains on the whole history): the batch that fired and every
            // complete batch named before it, hashed together the way RegisterDataset will hash their union.
            soFar = PipelineAutomation.BatchesSoFar(await CompleteBatchesAsync(blobs, container, pipeline, ct), batch);
            var files = new List<DatasetFile>(read.Files);
            foreach (var earlier in soFar.Where(b => b != batch))
            {
                var other = await PipelineTriggers.ReadBatchAsync(blobs, container, PipelineAutomation.BatchPrefix(pipeline, earlier), ct);
                if (other.Problem is not null)
                    return await Reject($"{what}: dataset.accumulate trains on every batch so far, and earlier batch '{earlier}' cannot be used: {other.Problem}");
                files.AddRange(other.Files);
            }

            if (files.GroupBy(f => f.Name).FirstOrDefault(g => g.Count() > 1) is { } clash)
                return await Reject($"{what}: dataset.accumulate merges the batches so far ({string.Join(", ", soFar)}) into one folder, and file name {clash.Key} occurs in more than one of them; give each batch's files their own names (e.g. the day)");
            files.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
            read = read with { Files = files, ContentHash = DatasetLayout.ContentHash(files) };
        }

        var spec = PipelineAutomation.ForUpload(stored, container, pipeline, batch, soFar);
        var problems = spec.Problems().ToList();
        var format = DatasetLayout.DetectFormat(read.Files.Select(f => f.Name));
        // An upload batch is one flat folder: images come as IDX or a pixel CSV (PNG class folders are registered from sourceDirectories or a container prefix).
        string[] expected = spec.Dataset.Kind == DatasetKinds.Images ? ["idx", "csv"] : ["csv"];
        if (!expected.Contains(format))
            problems.Add($"the spec's dataset.kind is '{spec.Dataset.Kind}', which reads {string.Join(" or ", expected)} files, but the batch holds {format} files ({string.Join(", ", read.Files.Select(f => f.Name).Take(4))})");
        if (problems.Count > 0)
            return await Reject($"{what}: the stored spec cannot run on this batch: {string.Join("; ", problems)}", read.ContentHash);

        var instanceId = PipelineAutomation.UploadInstanceId(spec, read.ContentHash!);
        var result = await DurableStarts.StartOnceAsync(client, OrchestrationNames.TrainingPipeline, spec, instanceId, what, restartTerminal: true, logger, ct);
        await records.RecordAsync(Record(Outcome(result.Outcome), result.InstanceId, result.Reason, read.ContentHash), ct);
        return result with { ContentHash = read.ContentHash };
    }

    /// <summary>The names of <paramref name="pipeline"/>'s batches that have their <c>_SUCCESS</c> marker.</summary>
    public static async Task<IReadOnlyList<string>> CompleteBatchesAsync(BlobServiceClient blobs, string container, string pipeline, CancellationToken ct = default)
    {
        var batches = new List<string>();
        try
        {
            await foreach (var item in blobs.GetBlobContainerClient(container).GetBlobsAsync(new Azure.Storage.Blobs.Models.GetBlobsOptions { Prefix = $"{PipelineAutomation.UploadsPrefix}{pipeline}/" }, ct))
            {
                if (PipelineAutomation.TryParseMarker(item.Name, out var p, out var b) && p == pipeline)
                    batches.Add(b);
            }
        }
        catch (Azure.RequestFailedException e) when (e.Status == 404)
        {
            // No container: no batches.
        }

        return batches;
    }

    /// <summary>Records a marker the host gave up on (its attempts failed), so the API shows why no run started.</summary>
    public Task RecordGivenUpAsync(string container, string pipeline, string batch, string? markerETag, string reason, CancellationToken ct = default) =>
        PipelineAutomation.NameProblem("pipeline name", pipeline, pipeline: true) is null && !batch.Contains('/')
            ? records.RecordAsync(new PipelineTriggerRecord { Pipeline = pipeline, Batch = batch, Container = container, MarkerETag = markerETag, Outcome = AutomationOutcome.Failed, Reason = reason, At = time.GetUtcNow() }, ct)
            : Task.CompletedTask;

    internal static AutomationOutcome Outcome(TriggerOutcome outcome) => outcome switch
    {
        TriggerOutcome.Started => AutomationOutcome.Started,
        TriggerOutcome.Restarted => AutomationOutcome.Restarted,
        TriggerOutcome.Duplicate => AutomationOutcome.Duplicate,
        TriggerOutcome.Skipped => AutomationOutcome.Skipped,
        _ => AutomationOutcome.Rejected,
    };
}

/// <summary>Starting an orchestration under a deterministic id at most once, for triggers and schedules.</summary>
internal static class DurableStarts
{
    /// <summary>
    /// Schedules <paramref name="orchestration"/> under <paramref name="instanceId"/> unless an instance with the id
    /// exists; one that failed or was terminated is scheduled again when <paramref name="restartTerminal"/>.
    /// A concurrent start of the same id (another host, a retried trigger) is a duplicate.
    /// </summary>
    public static async Task<TriggerResult> StartOnceAsync(
        DurableTaskClient client, string orchestration, object input, string instanceId, string what, bool restartTerminal, ILogger logger, CancellationToken ct)
    {
        var outcome = TriggerOutcome.Started;
        var existing = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: false, ct);
        if (existing is not null)
        {
            if (!restartTerminal || existing.RuntimeStatus is not (OrchestrationRuntimeStatus.Failed or OrchestrationRuntimeStatus.Terminated))
            {
                logger.LogInformation("{What}: run {InstanceId} already exists ({Status}); not started again", what, instanceId, existing.RuntimeStatus);
                return new TriggerResult(TriggerOutcome.Duplicate, instanceId, $"{what}: run {instanceId} already exists ({existing.RuntimeStatus})");
            }

            outcome = TriggerOutcome.Restarted;
        }

        try
        {
            await client.ScheduleNewOrchestrationInstanceAsync(orchestration, input, new StartOrchestrationOptions(instanceId), ct);
        }
        catch (Exception e) when (Durable.OrchestrationStarter.IsAlreadyRunning(e))
        {
            return new TriggerResult(TriggerOutcome.Duplicate, instanceId, $"{what}: run {instanceId} was started concurrently");
        }

        logger.LogInformation("{What}: {Outcome} pipeline run {InstanceId}", what, outcome, instanceId);
        return new TriggerResult(outcome, instanceId, outcome == TriggerOutcome.Restarted ? $"{what}: previous run {instanceId} had {existing!.RuntimeStatus}; started again" : $"{what}: started {instanceId}");
    }
}
