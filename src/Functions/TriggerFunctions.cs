using Azure.Storage.Blobs;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using MlFunctions.Api.Pipelines;

namespace MlFunctions.Functions;

/// <summary>
/// The MNIST pipeline's event triggers over the shared <see cref="PipelineTriggers"/> (the local host runs
/// the same calls from its UploadWatcher and ScheduledRetraining services).
/// </summary>
public sealed class TriggerFunctions(PipelineTriggers triggers, BlobServiceClient blobs, ILogger<TriggerFunctions> logger)
{
    public const string UploadFunction = "MnistUploadTrigger";
    public const string ScheduleFunction = "MnistScheduledRetraining";

    /// <summary>
    /// Fires on a batch's <c>_SUCCESS</c> marker, the last blob of a complete upload. A rejected batch is
    /// logged, not thrown: retries cannot fix it. Storage or client failures are thrown so the blob trigger
    /// retries them (then poisons the marker); every retry names the same instance, so none duplicates a run.
    /// The default (polling) blob trigger source suits the Consumption and Premium plans; on Flex
    /// Consumption set <c>Source = BlobTriggerSource.EventGrid</c> and subscribe the container.
    /// </summary>
    [Function(UploadFunction)]
    public async Task OnUpload(
        [BlobTrigger(PipelineTriggers.UploadTriggerPath, Connection = "AzureWebJobsStorage")] string marker,
        string batch,
        [DurableClient] DurableTaskClient client,
        FunctionContext context)
    {
        if (batch.Contains('/'))
        {
            // The path pattern can match a marker in a nested folder; that is not a batch, and retries will not make it one.
            logger.LogWarning("Ignoring {Marker} in a nested folder under {Prefix}: batches are one folder deep", PipelineTriggers.SuccessMarker, PipelineTriggers.UploadsPrefix + batch);
            return;
        }

        var result = await triggers.StartForUploadAsync(client, blobs, PipelineTriggers.DefaultUploadsContainer, PipelineTriggers.BatchPrefix(batch), context.CancellationToken);
        logger.LogInformation("Upload batch {Batch}: {Outcome} {InstanceId} ({Reason})", batch, result.Outcome, result.InstanceId, result.Reason);
    }

    /// <summary>
    /// Scheduled retraining on <c>Pipelines:Mnist:Schedule</c> (NCRONTAB with seconds). The host needs the
    /// setting to index this function; to run without a schedule, set
    /// <c>AzureWebJobs.MnistScheduledRetraining.Disabled</c> to true. The run is named after the schedule's
    /// occurrence the fire belongs to, so a late or doubled fire (two instances) is one run.
    /// </summary>
    [Function(ScheduleFunction)]
    public async Task OnSchedule(
        [TimerTrigger("%" + PipelineTriggerOptions.Section + ":Schedule%")] TimerInfo timer,
        [DurableClient] DurableTaskClient client,
        FunctionContext context)
    {
        var now = DateTime.UtcNow;
        var schedule = triggers.Options.Schedule;
        var occurrence = string.IsNullOrWhiteSpace(schedule) ? null : PipelineSchedule.Parse(schedule).LatestAtOrBefore(now);
        var fireTime = occurrence ?? new DateTime(now.Ticks - now.Ticks % TimeSpan.TicksPerMinute, DateTimeKind.Utc);
        var result = await triggers.StartScheduledAsync(client, blobs, fireTime, context.CancellationToken);
        logger.LogInformation("Scheduled retraining{PastDue}: {Outcome} {InstanceId} ({Reason})", timer.IsPastDue ? " (past due)" : string.Empty, result.Outcome, result.InstanceId, result.Reason);
    }
}
