using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using MlFunctions.Api;
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

/// <summary>
/// Triggers and schedules for any pipeline over the shared <see cref="PipelineUploadTriggers"/>,
/// <see cref="PipelineScheduleRunner"/> and <see cref="PipelineScheduleHandlers"/> (the local host runs the same
/// calls from its PipelineUploadWatcher and PipelineScheduleTimer, and maps the same routes).
/// </summary>
public sealed class PipelineAutomationFunctions(
    PipelineUploadTriggers uploads,
    PipelineScheduleRunner runner,
    PipelineScheduleHandlers schedules,
    BlobServiceClient blobs,
    TimeProvider time,
    ILogger<PipelineAutomationFunctions> logger)
{
    public const string UploadFunction = "PipelineUploadTrigger";
    public const string ScheduleFunction = "PipelineSchedules";

    /// <summary>Checks schedules every minute (NCRONTAB with seconds); a schedule with a seconds field is caught up once per minute here.</summary>
    public const string ScheduleTick = "0 * * * * *";

    /// <summary>
    /// Fires on <c>uploads/datasets/{pipeline}/{batch}/_SUCCESS</c>. A marker that cannot start a run is recorded
    /// and logged, not thrown; storage or client failures are thrown so the trigger retries them, and every retry
    /// names the same content-addressed run. MNIST's markers are left to <see cref="TriggerFunctions.OnUpload"/>.
    /// </summary>
    [Function(UploadFunction)]
    public async Task OnUpload(
        [BlobTrigger(PipelineUploadTriggers.UploadTriggerPath, Connection = "AzureWebJobsStorage")] string marker,
        string pipeline,
        string batch,
        [DurableClient] DurableTaskClient client,
        FunctionContext context)
    {
        var result = await uploads.StartForMarkerAsync(client, blobs, PipelineTriggers.DefaultUploadsContainer, pipeline, batch, null, context.CancellationToken);
        logger.LogInformation("Upload {Pipeline}/{Batch}: {Outcome} {InstanceId} ({Reason})", pipeline, batch, result.Outcome, result.InstanceId, result.Reason);
    }

    /// <summary>Fires every due schedule (the shared runner records each occurrence, so a doubled or late tick starts nothing twice).</summary>
    [Function(ScheduleFunction)]
    public async Task OnTick([TimerTrigger(ScheduleTick)] TimerInfo timer, [DurableClient] DurableTaskClient client, FunctionContext context)
    {
        foreach (var fired in await runner.FireDueAsync(client, time.GetUtcNow(), context.CancellationToken))
            logger.LogInformation("Schedule {Pipeline}/{Schedule} at {Occurrence:u}: {Outcome} {RunId} ({Reason})", fired.Pipeline, fired.Schedule, fired.Occurrence, fired.Outcome, fired.RunId, fired.Reason);
    }

    [Function("ListAllPipelineSchedules")]
    public Task ListAll([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.AllPipelineSchedules)] HttpRequest request) =>
        Run(request, schedules.HandleListAll);

    [Function("ListPipelineSchedules")]
    public Task List([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.PipelineSchedules)] HttpRequest request, string name) =>
        Run(request, schedules.HandleList, ("name", name));

    [Function("PutPipelineSchedule")]
    public Task Put([HttpTrigger(AuthorizationLevel.Function, "put", Route = ApiRoutes.PipelineSchedule)] HttpRequest request, string name, string schedule) =>
        Run(request, schedules.HandlePut, ("name", name), ("schedule", schedule));

    [Function("GetPipelineSchedule")]
    public Task Get([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.PipelineSchedule)] HttpRequest request, string name, string schedule) =>
        Run(request, schedules.HandleGet, ("name", name), ("schedule", schedule));

    [Function("DeletePipelineSchedule")]
    public Task Delete([HttpTrigger(AuthorizationLevel.Function, "delete", Route = ApiRoutes.PipelineSchedule)] HttpRequest request, string name, string schedule) =>
        Run(request, schedules.HandleDelete, ("name", name), ("schedule", schedule));

    [Function("PausePipelineSchedule")]
    public Task Pause([HttpTrigger(AuthorizationLevel.Function, "post", Route = ApiRoutes.PipelineSchedulePause)] HttpRequest request, string name, string schedule) =>
        Run(request, schedules.HandlePause, ("name", name), ("schedule", schedule));

    [Function("ResumePipelineSchedule")]
    public Task Resume([HttpTrigger(AuthorizationLevel.Function, "post", Route = ApiRoutes.PipelineScheduleResume)] HttpRequest request, string name, string schedule) =>
        Run(request, schedules.HandleResume, ("name", name), ("schedule", schedule));

    [Function("ListPipelineTriggers")]
    public Task Triggers([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.PipelineTriggerRecords)] HttpRequest request, string name) =>
        Run(request, schedules.HandleTriggers, ("name", name));

    /// <summary>Route parameters are bound to arguments here; the shared handlers read RouteValues, so copy them.</summary>
    private Task Run(HttpRequest request, Func<HttpContext, Task> handler, params (string Key, string Value)[] routeValues)
    {
        foreach (var (key, value) in routeValues)
            request.RouteValues[key] = value;
        return ApiGuard.RunAsync(request.HttpContext, logger, () => handler(request.HttpContext));
    }
}
