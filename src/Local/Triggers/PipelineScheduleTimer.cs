using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MlFunctions.Api.Pipelines;

namespace MlFunctions.Local.Triggers;

/// <summary>
/// The local host's stand-in for the Functions timer that fires pipeline schedules: every
/// <see cref="PipelineAutomationOptions.SchedulePollSeconds"/> it calls <see cref="PipelineScheduleRunner.FireDueAsync"/>
/// with the host's clock. The runner records each fired occurrence in the schedule, so a restarted host catches up
/// at most once and never fires an occurrence twice; no exception leaves the loop.
/// </summary>
public sealed class PipelineScheduleTimer(
    Func<DurableTaskClient> client,
    PipelineScheduleRunner runner,
    PipelineAutomationOptions options,
    TimeProvider time,
    ILogger<PipelineScheduleTimer> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.FireSchedules)
            return;

        var interval = TimeSpan.FromSeconds(Math.Max(0.1, options.SchedulePollSeconds));
        using var timer = new PeriodicTimer(interval, time);
        do
        {
            try
            {
                foreach (var fired in await runner.FireDueAsync(client(), time.GetUtcNow(), stoppingToken))
                    logger.LogInformation("Schedule {Pipeline}/{Schedule} at {Occurrence:u}: {Outcome} {RunId}", fired.Pipeline, fired.Schedule, fired.Occurrence, fired.Outcome, fired.RunId);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(e, "Firing due pipeline schedules failed; retrying in {Interval}s", interval.TotalSeconds);
            }
        }
        while (await WaitAsync(timer, stoppingToken));
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
