using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;
using MlFunctions.Core.Training;

namespace MlFunctions.Orchestrations.Sweeps;

/// <summary>
/// Katib's Experiment as one Durable orchestration: a short event loop over <see cref="SweepDecisions"/>.
/// It keeps up to <c>parallelTrialCount</c> trials running as sub-orchestrations, tells an adaptive
/// algorithm about each result as soon as that trial ends (not in waves), stops hopeless trials by the
/// median rule from their per-epoch events, and ends at the goal, the trial budget or the failure limit.
/// Finished trials live in the orchestration history, so a crash resumes the sweep where it was without
/// running them again; <c>ContinueAsNew</c> every <c>trialsPerGeneration</c> trials keeps that history
/// bounded (every episode replays it).
/// </summary>
public static class HyperparameterSweep
{
    public static async Task<SweepResult> RunAsync(TaskOrchestrationContext context, SweepInput? input)
    {
        var spec = Validate(input);
        var sweepId = context.InstanceId;
        var p = new SweepProgress(spec, input!.State ?? new SweepState(0, 0, [], false, context.CurrentUtcDateTime));
        var adaptive = SuggestionAlgorithms.Get(spec.Algorithm).AdaptsToResults;
        var tracking = new TrialTracking(context);
        if (input.State is null)
            tracking.Add(context.CallActivityAsync<bool>(ActivityNames.TrackSweep, SweepDecisions.Record(sweepId, p, SweepRecordStatus.Running, context.CurrentUtcDateTime)));

        var trials = new Dictionary<Task<TrialOutcome>, ActiveTrial>();
        var progress = context.WaitForExternalEvent<TrialProgress>(SweepEvents.TrialProgress); // one waiter, replaced when it completes
        var deadline = new DeadlineTimer(context);
        while (true)
        {
            await FillAsync(context, p, adaptive, trials);
            if (p.Running.Count == 0)
            {
                if (SweepDecisions.EndOfGeneration(p) is { } next)
                {
                    // The deadline timer goes first: on the Azure Storage backend a pending durable timer keeps
                    // ContinueAsNew from starting the next execution (EngineTests.ContinueAsNewStartsTheNextGenerationWithItsInput).
                    deadline.Cancel();
                    await tracking.DrainAsync();
                    context.ContinueAsNew(next, preserveUnprocessedEvents: false);
                    return null!;
                }

                break;
            }

            context.SetCustomStatus(SweepDecisions.Status(p));
            deadline.Arm(SweepDecisions.NextTimer(p.Running, deadline.At));
            var winner = await Task.WhenAny(trials.Keys.Append<Task>(progress).Concat(deadline.Pending).Concat(tracking.Pending));
            if (winner == progress)
            {
                var evt = await progress;
                progress = context.WaitForExternalEvent<TrialProgress>(SweepEvents.TrialProgress);
                RequestStop(context, SweepDecisions.OnProgress(p, evt));
            }
            else if (deadline.Fired(winner))
            {
                SweepDecisions.TimeOut(p, context.CurrentUtcDateTime).ToList().ForEach(late => RequestStop(context, late));
            }
            else if (winner is Task<TrialOutcome> done && trials.Remove(done, out var trial))
            {
                var end = SweepDecisions.Finish(p, trial, await done, sweepId, context.CurrentUtcDateTime);
                tracking.Enqueue(end.Run);
                end.Stop.ToList().ForEach(t => RequestStop(context, t));
            }

            tracking.Flush();
        }

        deadline.Cancel();
        await tracking.DrainAsync();
        await context.CallActivityAsync<bool>(ActivityNames.TrackSweep, SweepDecisions.FinalRecord(sweepId, p, context.CurrentUtcDateTime));
        context.SetCustomStatus(SweepDecisions.Status(p));
        return p.FailedLimit ? throw new SweepFailedException($"sweep {sweepId} failed: {p.Reason}") : SweepDecisions.Result(sweepId, p);
    }

    private static SweepSpec Validate(SweepInput? input)
    {
        if (input?.Spec is null)
        {
            throw new ArgumentException("HyperparameterSweep needs an input {\"spec\": {...}}");
        }

        var problems = input.Spec.Validate();
        return problems.Count > 0 ? throw new ArgumentException("Invalid sweep spec: " + string.Join("; ", problems)) : input.Spec;
    }

    /// <summary>Starts queued suggestions in free slots, asking the algorithm while it has more to give.</summary>
    private static async Task FillAsync(TaskOrchestrationContext context, SweepProgress p, bool adaptive, Dictionary<Task<TrialOutcome>, ActiveTrial> trials)
    {
        Launch();
        for (var ask = SweepDecisions.SuggestionsToAsk(p, adaptive); ask > 0; ask = SweepDecisions.SuggestionsToAsk(p, adaptive))
        {
            var answer = await context.CallActivityAsync<SuggestionResult>(ActivityNames.SuggestTrials, new SuggestTrialsInput(p.Spec, SweepDecisions.Observations(p), ask));
            SweepDecisions.Accept(p, answer, ask);
            Launch();
            if (answer.Suggestions.Count == 0)
                break; // e.g. Hyperband waiting for a rung to finish
        }

        void Launch()
        {
            foreach (var trial in SweepDecisions.Launch(p, context.InstanceId, context.CurrentUtcDateTime))
                trials[RunTrialAsync(context, p.Spec, context.InstanceId, trial.TrialId, trial.Suggestion)] = trial;
        }
    }

    /// <summary>Runs one trial as a sub-orchestration whose instance id is the trial id; a failure becomes a Failed outcome.</summary>
    private static async Task<TrialOutcome> RunTrialAsync(TaskOrchestrationContext context, SweepSpec spec, string sweepId, string trialId, Suggestion suggestion)
    {
        var options = new SubOrchestrationOptions { InstanceId = trialId };

        // Per-epoch progress is only for the median rule (off under cross-validation); without it each epoch's
        // event was a control-queue message and a sweep episode (a full replay) for nothing. The outcome
        // carries the whole curve either way.
        var progressTo = spec.EarlyStopping is not null && spec.CrossValidationFolds is null ? context.InstanceId : null;
        try
        {
            var template = spec.Trial;
            if (spec.CrossValidationFolds is { } folds)
            {
                var cv = template.StandIn is { } s
                    ? new CrossValidationInput(trialId, folds, null, new StandInTrialInput(trialId, suggestion.Parameters, s, suggestion.Budget, null))
                    : new CrossValidationInput(trialId, folds, TrialJob(spec, sweepId, trialId, suggestion), null, template.MaxAttempts, template.HeartbeatTimeoutSeconds);
                return await context.CallSubOrchestratorAsync<TrialOutcome>(OrchestrationNames.CrossValidate, cv, options);
            }

            if (template.StandIn is { } standIn)
            {
                return await context.CallSubOrchestratorAsync<TrialOutcome>(
                    OrchestrationNames.StandInTrial,
                    new StandInTrialInput(trialId, suggestion.Parameters, standIn, suggestion.Budget, progressTo),
                    options);
            }

            var result = await context.CallSubOrchestratorAsync<TrainingResult>(
                OrchestrationNames.TrainModel,
                new TrainModelInput(TrialJob(spec, sweepId, trialId, suggestion), template.MaxAttempts, template.HeartbeatTimeoutSeconds, progressTo),
                options);
            return TrialMetrics.FromTraining(trialId, result);
        }
        catch (TaskFailedException e)
        {
            return TrialOutcome.Failed(trialId, e.FailureDetails?.ErrorMessage ?? e.Message);
        }
    }

    private static TrainingJob TrialJob(SweepSpec spec, string sweepId, string trialId, Suggestion suggestion) =>
        TrialJobs.ForTrial(spec.Trial.Job!, trialId, suggestion.Parameters, suggestion.Budget, new Dictionary<string, string>
        {
            ["sweep"] = sweepId,
            ["trial"] = trialId,
        }) with { WarmStartFrom = suggestion.Parent }; // PBT: continue from that trial's checkpoint (in blob storage)

    /// <summary>
    /// Asks a trial to stop at its next epoch boundary: the TrainModel or stand-in sub-orchestration
    /// listens for StopRequested on its one event name and answers with a stopped (partial) result.
    /// </summary>
    private static void RequestStop(TaskOrchestrationContext context, ActiveTrial? trial)
    {
        if (trial is null || trial.StopSent)
        {
            return;
        }

        trial.StopSent = true;
        context.SendEvent(trial.TrialId, TrainingEvents.EventName, new TrainingEvent
        {
            JobId = trial.TrialId,
            Kind = TrainingEvents.StopRequested,
            At = context.CurrentUtcDateTime,
        });
    }

    /// <summary>
    /// The sweep's view of finished trials, written with at most one activity in flight: trials that end
    /// meanwhile go into the next call. One write per trial was an activity and, when its result came
    /// back, a replay of the whole history. Everything is awaited before the generation ends and before
    /// the final record, so that record still comes last. A finished trial's outcome is in the history
    /// whether or not its tracking write has returned, so a crash loses nothing.
    /// </summary>
    private sealed class TrialTracking(TaskOrchestrationContext context)
    {
        private readonly List<TrackingRun> waiting = [];
        private readonly List<Task> all = [];
        private Task? inFlight;

        public IEnumerable<Task> Pending => inFlight is { IsCompleted: false } t ? [t] : [];

        public void Add(Task write) => all.Add(write);

        public void Enqueue(TrackingRun run) => waiting.Add(run);

        public void Flush()
        {
            if (waiting.Count == 0 || inFlight is { IsCompleted: false })
            {
                return;
            }

            inFlight = context.CallActivityAsync<bool>(ActivityNames.TrackTrials, waiting.ToList());
            all.Add(inFlight);
            waiting.Clear();
        }

        public async Task DrainAsync()
        {
            while (waiting.Count > 0)
            {
                if (inFlight is { IsCompleted: false } t)
                    await t;
                Flush();
            }

            await Task.WhenAll(all);
        }
    }

    /// <summary>The one durable timer for trial deadlines (see <see cref="SweepDecisions.NextTimer"/>).</summary>
    private sealed class DeadlineTimer(TaskOrchestrationContext context)
    {
        private Task? timer;
        private CancellationTokenSource? cancel;

        public DateTime? At { get; private set; }

        public IEnumerable<Task> Pending => timer is null ? [] : [timer];

        public void Arm(DateTime? at)
        {
            if (at == At)
            {
                return;
            }

            Cancel();
            At = at;
            cancel = at is null ? null : new CancellationTokenSource();
            timer = at is { } when ? context.WaitUntilAsync(when, cancel!.Token) : null;
        }

        public bool Fired(Task winner)
        {
            if (timer is null || winner != timer)
            {
                return false;
            }

            timer = null;
            At = null;
            return true;
        }

        public void Cancel()
        {
            cancel?.Cancel();
            cancel?.Dispose();
            cancel = null;
            timer = null;
            At = null;
        }
    }
}

/// <summary>A sweep that hit its failed-trial limit; the message says how many failed and the last reason.</summary>
public sealed class SweepFailedException(string message) : Exception(message);
