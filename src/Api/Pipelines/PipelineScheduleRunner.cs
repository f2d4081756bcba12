using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using MlFunctions.Core;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Api.Pipelines;

/// <summary>What one due schedule led to.</summary>
public sealed record ScheduleFireResult(string Pipeline, string Schedule, DateTimeOffset Occurrence, AutomationOutcome Outcome, string? RunId, string Reason);

/// <summary>
/// Fires due schedules: the shared body of the local host's timer loop and the Functions TimerTrigger.
/// </summary>
/// <remarks>
/// <para>For each active schedule the due occurrence is the latest one in (<see cref="PipelineScheduleRecord.FireAfter"/>,
/// now]: after downtime a schedule catches up once, with its latest missed occurrence, not once per miss.</para>
/// <para>A fire starts <c>TrainingPipeline</c> with the stored spec plus the schedule's overrides under
/// <see cref="PipelineAutomation.ScheduledInstanceId"/> (one id per occurrence), then records the occurrence in the
/// schedule with an ETag-conditional write. Two hosts (or a restart between the start and the write) name the same
/// instance, so an occurrence never starts two runs; the recorded occurrence stops a restarted host from even
/// looking at it again. A schedule whose pipeline has no stored spec, or whose overrides make the spec invalid,
/// records the occurrence as <see cref="AutomationOutcome.Rejected"/> with the reason (shown by the API) and waits
/// for the next one. A storage or client failure leaves the occurrence unrecorded, so the next tick retries it.</para>
/// </remarks>
public sealed class PipelineScheduleRunner(
    PipelineScheduleStore schedules,
    IPipelineSpecStore specs,
    Func<BlobServiceClient> blobs,
    string uploadsContainer,
    ILogger<PipelineScheduleRunner> logger)
{
    private const int WriteAttempts = 3;

    public async Task<IReadOnlyList<ScheduleFireResult>> FireDueAsync(DurableTaskClient client, DateTimeOffset now, CancellationToken ct = default)
    {
        var results = new List<ScheduleFireResult>();
        foreach (var stored in await schedules.ListAsync(null, ct))
        {
            try
            {
                if (await FireIfDueAsync(client, stored, now, ct) is { } result)
                    results.Add(result);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                // One schedule's failure must not stop the others; its occurrence stays unrecorded and is retried.
                logger.LogWarning(e, "Schedule {Pipeline}/{Schedule} failed to fire; retrying on the next tick", stored.Value.Pipeline, stored.Value.Id);
            }
        }

        return results;
    }

    private async Task<ScheduleFireResult?> FireIfDueAsync(DurableTaskClient client, Stored<PipelineScheduleRecord> stored, DateTimeOffset now, CancellationToken ct)
    {
        var record = stored.Value;
        if (record.Paused)
            return null;
        CronSchedule cron;
        try
        {
            cron = CronSchedule.Parse(record.Cron, record.TimeZone);
        }
        catch (ArgumentException e)
        {
            // Written by hand, or a zone this machine lacks: say so once per tick, fire nothing.
            logger.LogWarning("Schedule {Pipeline}/{Schedule} cannot be read: {Problem}", record.Pipeline, record.Id, e.Message);
            return null;
        }

        if (cron.DueAt(record.FireAfter, now) is not { } occurrence)
            return null;

        var what = $"schedule {record.Pipeline}/{record.Id} ({record.Cron} {record.TimeZone}) at {occurrence:u}";
        var instanceId = PipelineAutomation.ScheduledInstanceId(record.Pipeline, record.Id, occurrence);
        AutomationOutcome outcome;
        string reason;
        string? runId = null;
        var spec = await specs.GetAsync(record.Pipeline, ct);
        if (spec is null)
        {
            (outcome, reason) = (AutomationOutcome.Rejected, $"{what}: no stored pipeline spec '{record.Pipeline}' (PUT api/pipelines/{record.Pipeline} stores one)");
        }
        else
        {
            PipelineSpec? run = null;
            IReadOnlyList<string> problems;
            try
            {
                run = PipelineAutomation.WithOverrides(spec, record.Overrides);
                if (record.LatestBatch)
                {
                    var batch = await LatestBatchAsync(record.Pipeline, ct);
                    var soFar = batch is not null && run.Dataset.Accumulate
                        ? PipelineAutomation.BatchesSoFar(await PipelineUploadTriggers.CompleteBatchesAsync(blobs(), uploadsContainer, record.Pipeline, ct), batch)
                        : null;
                    run = batch is null ? null : PipelineAutomation.ForUpload(run, uploadsContainer, record.Pipeline, batch, soFar) with { Trigger = "timer" };
                }

                problems = run is null
                    ? [$"latestBatch: {uploadsContainer}/{PipelineAutomation.UploadsPrefix}{record.Pipeline}/ has no complete batch (no {PipelineAutomation.SuccessMarker} marker) yet"]
                    : run.Problems();
            }
            catch (System.Text.Json.JsonException e)
            {
                problems = [$"the overrides do not fit the spec: {e.Message}"];
            }

            if (problems.Count > 0)
            {
                (outcome, reason) = (AutomationOutcome.Rejected, $"{what}: the spec with the schedule's overrides is invalid: {string.Join("; ", problems)}");
            }
            else
            {
                var started = await DurableStarts.StartOnceAsync(client, OrchestrationNames.TrainingPipeline, run!, instanceId, what, restartTerminal: false, logger, ct);
                (outcome, reason, runId) = (PipelineUploadTriggers.Outcome(started.Outcome), started.Reason, started.InstanceId);
            }
        }

        if (outcome == AutomationOutcome.Rejected)
            logger.LogWarning("{Reason}", reason);

        await RecordAsync(stored, occurrence, now, outcome, runId, reason, ct);
        return new ScheduleFireResult(record.Pipeline, record.Id, occurrence, outcome, runId, reason);
    }

    /// <summary>The batch whose marker is newest (ties: the greatest name), or null when no batch is complete.</summary>
    private async Task<string?> LatestBatchAsync(string pipeline, CancellationToken ct)
    {
        (string Batch, DateTimeOffset At)? latest = null;
        try
        {
            var prefix = $"{PipelineAutomation.UploadsPrefix}{pipeline}/";
            await foreach (var item in blobs().GetBlobContainerClient(uploadsContainer).GetBlobsAsync(new GetBlobsOptions { Prefix = prefix }, ct))
            {
                if (PipelineAutomation.TryParseMarker(item.Name, out _, out var batch) && item.Properties.LastModified is { } at
                    && (latest is null || at > latest.Value.At || at == latest.Value.At && string.CompareOrdinal(batch, latest.Value.Batch) > 0))
                {
                    latest = (batch, at);
                }
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }

        return latest?.Batch;
    }

    /// <summary>Records the occurrence, re-reading on an ETag conflict (a user's edit or another host's record meanwhile).</summary>
    private async Task RecordAsync(Stored<PipelineScheduleRecord> stored, DateTimeOffset occurrence, DateTimeOffset now, AutomationOutcome outcome, string? runId, string reason, CancellationToken ct)
    {
        var current = stored;
        for (var attempt = 0; attempt < WriteAttempts; attempt++)
        {
            if (current.Value.LastOccurrence >= occurrence)
                return; // Another host recorded this occurrence (or a later one).
            var updated = current.Value with
            {
                LastOccurrence = occurrence,
                LastFiredAt = now,
                LastOutcome = outcome,
                LastRunId = runId,
                LastReason = reason,
                NextOccurrence = null,
            };
            if (await schedules.TryWriteAsync(updated, current.ETag, ct: ct) is not null)
                return;
            if (await schedules.GetAsync(current.Value.Pipeline, current.Value.Id, ct) is not { } reread)
                return; // Deleted meanwhile: nothing to record on.
            current = reread;
        }

        logger.LogWarning("Schedule {Pipeline}/{Schedule}: could not record occurrence {Occurrence:u} after {Attempts} conflicts; its run id keeps it single", stored.Value.Pipeline, stored.Value.Id, occurrence, WriteAttempts);
    }
}
