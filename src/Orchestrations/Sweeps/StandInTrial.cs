using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;

namespace MlFunctions.Orchestrations.Sweeps;

/// <summary>
/// A trial that trains nothing, with the same contract as a real one: it reports one metric step per
/// "epoch" to the sweep, honours a StopRequested event at an epoch boundary, and fails when its activity
/// fails. Its objective comes from an activity (a closed-form test function), so the platform's cost per
/// trial — sub-orchestration, activity, events, tracking — is what remains.
/// </summary>
public static class StandInTrial
{
    public static async Task<TrialOutcome> RunAsync(TaskOrchestrationContext context, StandInTrialInput? input)
    {
        if (input?.Spec is null || input.Parameters is null)
        {
            throw new ArgumentException("StandInTrial needs an input {\"trialId\", \"parameters\", \"spec\"}");
        }

        var epochs = input.Budget ?? input.Spec.Epochs;
        var curve = await context.CallActivityAsync<List<double>>(
            ActivityNames.EvaluateStandInTrial,
            new EvaluateStandInInput(input.TrialId, input.Parameters, input.Spec, epochs, input.Fold));

        var stop = context.WaitForExternalEvent<TrainingEvent>(TrainingEvents.EventName);
        var history = new List<MetricStep>();
        for (var epoch = 1; epoch <= curve.Count; epoch++)
        {
            var loss = curve[epoch - 1];
            var step = new MetricStep(epoch, new Dictionary<string, double>
            {
                [StandInObjectives.Loss] = loss,
                [StandInObjectives.Score] = -loss,
            });
            history.Add(step);
            if (input.ProgressTo is { } parent)
            {
                context.SendEvent(parent, SweepEvents.TrialProgress, new TrialProgress(context.InstanceId, step));
            }

            if (epoch == curve.Count)
            {
                break;
            }

            if (input.Spec.EpochDelayMs > 0)
            {
                using var cancel = new CancellationTokenSource();
                var timer = context.WaitUntilAsync(context.CurrentUtcDateTime.AddMilliseconds(input.Spec.EpochDelayMs), cancel.Token);
                if (await Task.WhenAny(stop, timer) == stop)
                {
                    cancel.Cancel();
                }
            }

            if (stop.IsCompleted && (await stop).Kind == TrainingEvents.StopRequested)
            {
                return Outcome(input.TrialId, TrialState.EarlyStopped, history);
            }
        }

        return Outcome(input.TrialId, TrialState.Succeeded, history);
    }

    private static TrialOutcome Outcome(string trialId, TrialState state, IReadOnlyList<MetricStep> history) =>
        new(trialId, state, history[^1].Metrics, history, new Dictionary<string, string>());
}
