using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MlFunctions.Activities.Storage;
using MlFunctions.Api.Pipelines;

namespace MlFunctions.Local.Triggers;

/// <summary>
/// The local host's stand-in for the Functions TimerTrigger on <c>%Pipelines:Mnist:Schedule%</c>: sleeps
/// until each CRON occurrence (UTC) and calls <see cref="PipelineTriggers.StartScheduledAsync"/> with it.
/// Off when the schedule is empty; a bad schedule is logged and leaves it off rather than stopping the host.
/// Occurrences missed while the host was down are not made up (the timer's monitor would run one past-due
/// fire; a local host that was off is assumed to be off on purpose).
/// </summary>
public sealed class ScheduledRetraining(
    Func<DurableTaskClient> client,
    IStorageClients storage,
    PipelineTriggers triggers,
    TimeProvider time,
    ILogger<ScheduledRetraining> logger) : BackgroundService
{
    // Sleep at most this long at once, then recompute: keeps each wait within Task.Delay's range and
    // follows wall-clock jumps (sleep/resume) that a single long delay would miss.
    private static readonly TimeSpan MaxSleep = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var text = triggers.Options.Schedule;
        if (string.IsNullOrWhiteSpace(text))
        {
            return;
        }

        PipelineSchedule schedule;
        try
        {
            schedule = PipelineSchedule.Parse(text);
        }
        catch (ArgumentException e)
        {
            logger.LogError("Scheduled retraining is off: {Setting}:Schedule is invalid: {Error}", PipelineTriggerOptions.Section, e.Message);
            return;
        }

        logger.LogInformation("Scheduled retraining on '{Schedule}' (UTC); next at {Next:u}", schedule, schedule.NextAfter(time.GetUtcNow().UtcDateTime));
        var after = time.GetUtcNow().UtcDateTime;
        while (!stoppingToken.IsCancellationRequested && schedule.NextAfter(after) is { } next)
        {
            var wait = next - time.GetUtcNow().UtcDateTime;
            if (wait > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(wait < MaxSleep ? wait : MaxSleep, time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            try
            {
                await triggers.StartScheduledAsync(client(), await storage.BlobsAsync(stoppingToken), next, stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // The next occurrence is another chance; a failure here must not end the schedule or the host.
                logger.LogError(e, "Scheduled retraining for {Occurrence:u} failed to start", next);
            }

            after = next;
        }
    }
}
