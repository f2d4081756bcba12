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
            await context.CallActivityAsync<DispatchTrainingResult>(
                ActivityNames.DispatchTraining,
                new DispatchTrainingInput(input.Job with { Attempt = attempt }, context.InstanceId),
                TaskOptions.FromRetryPolicy(new RetryPolicy(5, TimeSpan.FromSeconds(2), backoffCoefficient: 2)));
            if (stopRequested)
                await context.CallActivityAsync(ActivityNames.RequestTrainingStop, jobId);

            context.SetCustomStatus(new TrainModelStatus(jobId, attempt, epochsDone, null, "dispatched"));
            var deadline = context.CurrentUtcDateTime + timeout;
            var attemptFailed = false;
            while (!attemptFailed)
            {
                if (await NextEventAsync(context, next, deadline) is not { } evt)
                {
                    lastFailure = TrainingDecisions.Silent(attempt, timeout);
                    break;
                }

                next = context.WaitForExternalEvent<TrainingEvent>(TrainingEvents.EventName);
                var step = TrainingDecisions.OnEvent(evt, attempt);
                switch (step.Action)
                {
                    case TrainingAction.RequestStop:
                        stopRequested = true;
                        await context.CallActivityAsync(ActivityNames.RequestTrainingStop, jobId);
                        context.SetCustomStatus(new TrainModelStatus(jobId, attempt, epochsDone, null, "stop requested"));
                        break;
                    case TrainingAction.Finish:
                        context.SetCustomStatus(TrainingDecisions.Finished(jobId, attempt, step.Result!));
                        await AwaitTrackingAsync(tracking, Track(context, ActivityNames.TrackRun, TrainingRuns.Finished(run, step.Result!, attempt, context.CurrentUtcDateTime)));
                        return step.Result!;
                    case TrainingAction.FailAttempt:
                        lastFailure = step.Failure!;
                        attemptFailed = true;
                        break;
                    case TrainingAction.Progress when step.Metrics is { } metrics:
                        epochsDone = Math.Max(epochsDone, metrics.Epoch);
                        tracking.Add(Track(context, ActivityNames.TrackRunStep, new TrackRunStepInput(run.RunId, TrainingRuns.StepOf(metrics))));

                        // A sweep judges early stopping from these; it answers with a StopRequested event.
                        if (input.ProgressTo is { } parent)
                            context.SendEvent(parent, SweepEvents.TrialProgress, new TrialProgress(context.InstanceId, new MetricStep(metrics.Epoch, TrialMetrics.Of(metrics))));
                        context.SetCustomStatus(new TrainModelStatus(jobId, attempt, epochsDone, metrics, "training"));
                        deadline = context.CurrentUtcDateTime + timeout;
                        break;
                    case TrainingAction.Heartbeat:
                        deadline = context.CurrentUtcDateTime + timeout;
                        break;
                }
            }
        }

        var failure = TrainingDecisions.Exhausted(jobId, input.MaxAttempts, lastFailure);
        await AwaitTrackingAsync(tracking, Track(context, ActivityNames.TrackRun, TrainingRuns.Failed(run, failure, input.MaxAttempts, context.CurrentUtcDateTime)));
        throw new TrainingFailedException(failure);
    }

    /// <summary>The next event, or null when the deadline passes first (the timer is cancelled when an event wins).</summary>
    private static async Task<TrainingEvent?> NextEventAsync(TaskOrchestrationContext context, Task<TrainingEvent> next, DateTime deadline)
    {
        using var timerCancel = new CancellationTokenSource();
        var timer = context.WaitUntilAsync(deadline, timerCancel.Token);
        if (await Task.WhenAny(next, timer) == timer)
            return null;

        timerCancel.Cancel();
        return await next;
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
