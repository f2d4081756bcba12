using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;
using MlFunctions.Core.Training;

namespace MlFunctions.Orchestrations.Training;

/// <summary>
/// Hands a training job to the worker deployment and waits durably for its events: progress renews a
/// heartbeat deadline, a stale heartbeat or a failure re-dispatches the job (the worker resumes from
/// its newest checkpoint), attempts are bounded and the last failure reason is surfaced. Kubeflow's
/// Training Operator job, done as a Durable sub-orchestration. Every run is tracked (MLflow's run, keyed
/// by this instance id): params and tags at the start, each epoch's metrics as its progress event arrives,
/// status, final metrics and artifacts at the end. The writes are activities scheduled beside the event
/// loop (idempotent per run and step) and awaited only before the result is returned.
/// </summary>
public static class TrainModel
{
    public static async Task<TrainingResult> RunAsync(TaskOrchestrationContext context, TrainModelInput? input)
    {
        if (input?.Job is null)
        {
            throw new ArgumentException("TrainModel needs an input {\"job\": {...}, \"maxAttempts\": 3, \"heartbeatTimeoutSeconds\": 300}");
        }

        var problems = input.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid TrainModel input: " + string.Join("; ", problems));
        }

        var jobId = input.Job.JobId;
        var timeout = TimeSpan.FromSeconds(input.HeartbeatTimeoutSeconds);
        var lastFailure = "no attempt ran";
        var epochsDone = 0;
        var stopRequested = false;
        var run = TrainingRuns.Started(context.InstanceId, input.Job, context.CurrentUtcDateTime);
        var tracking = new List<Task>();

        // Awaited once, so that the steps come after it: a start that finds an ended run under this id
        // (an instance id used again) clears that run's old steps.
        await AwaitTrackingAsync(tracking, Track(context, ActivityNames.TrackRun, run));

        // One waiter for the one event name, created once and replaced only when it completes: a
        // waiter left pending would swallow the next event (Durable delivers each event to the oldest waiter).
        var next = context.WaitForExternalEvent<TrainingEvent>(TrainingEvents.EventName);

        for (var attempt = 1; attempt <= input.MaxAttempts; attempt++)
        {
            var job = input.Job with { Attempt = attempt };
            await context.CallActivityAsync<DispatchTrainingResult>(
                ActivityNames.DispatchTraining,
                new DispatchTrainingInput(job, context.InstanceId),
                TaskOptions.FromRetryPolicy(new RetryPolicy(5, TimeSpan.FromSeconds(2), backoffCoefficient: 2)));
            if (stopRequested)
            {
                await context.CallActivityAsync(ActivityNames.RequestTrainingStop, jobId);
            }

            context.SetCustomStatus(new TrainModelStatus(jobId, attempt, epochsDone, null, "dispatched"));
            var deadline = context.CurrentUtcDateTime + timeout;

            while (true)
            {
                using var timerCancel = new CancellationTokenSource();
                var timer = context.WaitUntilAsync(deadline, timerCancel.Token);
                var winner = await Task.WhenAny(next, timer);
                if (winner == timer)
                {
                    lastFailure = $"attempt {attempt}: no event from the worker for {timeout.TotalSeconds:F0} s";
                    break;
                }

                timerCancel.Cancel();
                var evt = await next;
                next = context.WaitForExternalEvent<TrainingEvent>(TrainingEvents.EventName);

                if (evt.Kind == TrainingEvents.StopRequested)
                {
                    stopRequested = true;
                    await context.CallActivityAsync(ActivityNames.RequestTrainingStop, jobId);
                    context.SetCustomStatus(new TrainModelStatus(jobId, attempt, epochsDone, null, "stop requested"));
                    continue;
                }

                // Events from an earlier attempt's worker may still arrive; only a result counts from them.
                var current = evt.Attempt >= attempt;
                switch (evt.Kind)
                {
                    case TrainingEvents.Completed or TrainingEvents.Stopped when evt.Result is not null:
                        context.SetCustomStatus(new TrainModelStatus(jobId, attempt, evt.Result.History.Count, evt.Result.History.LastOrDefault(), evt.Kind == TrainingEvents.Stopped ? "stopped early" : "completed"));
                        var result = evt.Kind == TrainingEvents.Stopped ? evt.Result with { StoppedEarly = true } : evt.Result;
                                        await AwaitTrackingAsync(tracking, Track(context, ActivityNames.TrackRun, TrainingRuns.Finished(run, result, attempt, context.CurrentUtcDateTime)));
                        return result;
                    case TrainingEvents.Failed when current:
                        lastFailure = $"attempt {attempt}: {evt.Error ?? "the worker reported a failure without a reason"}";
                        break;
                    case TrainingEvents.Progress when current && evt.Metrics is not null:
                        epochsDone = Math.Max(epochsDone, evt.Metrics.Epoch);
                        tracking.Add(Track(context, ActivityNames.TrackRunStep, new TrackRunStepInput(run.RunId, TrainingRuns.StepOf(evt.Metrics))));
                        if (input.ProgressTo is { } parent)
                        {
                            // A sweep judges early stopping from these; it answers with a StopRequested event.
                            context.SendEvent(parent, SweepEvents.TrialProgress, new TrialProgress(context.InstanceId, new MetricStep(evt.Metrics.Epoch, TrialMetrics.Of(evt.Metrics))));
                        }

                        context.SetCustomStatus(new TrainModelStatus(jobId, attempt, epochsDone, evt.Metrics, "training"));
                        deadline = context.CurrentUtcDateTime + timeout;
                        continue;
                    case TrainingEvents.Heartbeat when current:
                        deadline = context.CurrentUtcDateTime + timeout;
                        continue;
                    default:
                        continue;
                }

                break;
            }
        }

        var failure = $"training job {jobId} failed after {input.MaxAttempts} attempt(s); last failure: {lastFailure}";
        await AwaitTrackingAsync(tracking, Track(context, ActivityNames.TrackRun, TrainingRuns.Failed(run, failure, input.MaxAttempts, context.CurrentUtcDateTime)));
        throw new TrainingFailedException(failure);
    }

    private static readonly TaskOptions TrackingRetry = TaskOptions.FromRetryPolicy(new RetryPolicy(3, TimeSpan.FromSeconds(1), backoffCoefficient: 2));

    private static Task Track(TaskOrchestrationContext context, string activity, object input) =>
        context.CallActivityAsync<bool>(activity, input, TrackingRetry);

    /// <summary>
    /// Awaits <paramref name="last"/> and every write still in flight. The end record goes last (steps may
    /// still be in flight: they are other blobs) and before the result: a sweep writes its view of a trial
    /// after this returns. Tracking that fails after its retries never fails the training it records.
    /// </summary>
    private static async Task AwaitTrackingAsync(List<Task> tracking, Task last)
    {
        tracking.Add(last);
        try
        {
            await Task.WhenAll(tracking);
        }
        catch (TaskFailedException)
        {
        }
    }
}

/// <summary>A training job that exhausted its attempts; the message carries the last reason.</summary>
public sealed class TrainingFailedException(string message) : Exception(message);
