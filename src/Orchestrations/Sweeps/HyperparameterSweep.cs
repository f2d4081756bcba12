using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;
using MlFunctions.Core.Training;

namespace MlFunctions.Orchestrations.Sweeps;

/// <summary>
/// Katib's Experiment as one Durable orchestration. It keeps up to <c>parallelTrialCount</c> trials
/// running as sub-orchestrations, tells the algorithm about each result as soon as that trial ends (not
/// in waves), stops hopeless trials by the median rule from their per-epoch events, and ends at the goal,
/// the trial budget or the failure limit. Finished trials live in the orchestration history, so a crash
/// resumes the sweep where it was without running them again; <c>ContinueAsNew</c> every
/// <c>trialsPerGeneration</c> trials keeps that history bounded.
/// </summary>
public static class HyperparameterSweep
{
    public static async Task<SweepResult> RunAsync(TaskOrchestrationContext context, SweepInput? input)
    {
        if (input?.Spec is null)
        {
            throw new ArgumentException("HyperparameterSweep needs an input {\"spec\": {...}}");
        }

        var spec = input.Spec;
        var problems = spec.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid sweep spec: " + string.Join("; ", problems));
        }

        var sweepId = context.InstanceId;
        var state = input.State ?? new SweepState(0, 0, [], false, context.CurrentUtcDateTime);
        var finished = state.Finished.ToList();

        // Tracking writes run beside the search, not in front of it: each awaited one put a queue round trip
        // (activity out, result back) between a trial's end and the next trial's start. They are awaited
        // before the generation ends (ContinueAsNew) and before the final record, so that record still comes
        // last. A finished trial's outcome is in this history whether or not its tracking write has returned.
        var tracking = new List<Task>();
        if (input.State is null)
        {
            tracking.Add(context.CallActivityAsync<bool>(ActivityNames.TrackSweep, Record(sweepId, spec, SweepRecordStatus.Running, state.StartedAt, context.CurrentUtcDateTime, finished)));
        }

        var running = new List<RunningTrial>();
        var started = state.Started;
        var exhausted = state.Exhausted;
        var finishedThisGeneration = 0;
        string? outcome = null;
        string? reason = null;
        var failedLimit = false;

        // One waiter for progress events, replaced only when it completes (as in TrainModel).
        var progress = context.WaitForExternalEvent<TrialProgress>(SweepEvents.TrialProgress);
        Task? timer = null;
        DateTime? timerAt = null;
        CancellationTokenSource? timerCancel = null;

        while (true)
        {
            // Fill free slots. The algorithm sees every finished trial and the running ones (as pending).
            while (outcome is null && !exhausted && running.Count < spec.ParallelTrialCount && started < spec.MaxTrialCount
                && finishedThisGeneration < spec.TrialsPerGeneration)
            {
                var want = Math.Min(spec.ParallelTrialCount - running.Count, spec.MaxTrialCount - started);
                var suggested = await context.CallActivityAsync<SuggestionResult>(
                    ActivityNames.SuggestTrials,
                    new SuggestTrialsInput(spec, Observations(finished, running), want));
                exhausted = suggested.Exhausted;
                foreach (var suggestion in suggested.Suggestions.Take(want))
                {
                    var index = ++started;
                    var trialId = $"{sweepId}-t{index:D3}";
                    running.Add(new RunningTrial(index, trialId, suggestion, context.CurrentUtcDateTime, TimeSpan.FromSeconds(spec.TrialTimeoutSeconds))
                    {
                        Task = RunTrialAsync(context, spec, sweepId, trialId, suggestion),
                    });
                }

                if (suggested.Suggestions.Count == 0)
                {
                    break;
                }
            }

            if (running.Count == 0)
            {
                if (outcome is null && !exhausted && started < spec.MaxTrialCount && finishedThisGeneration >= spec.TrialsPerGeneration)
                {
                    // Every trial of this generation has ended: nothing in flight is lost by starting over.
                    // The deadline timer must be cancelled first: on the Azure Storage backend a durable timer
                    // still pending keeps ContinueAsNew from starting the next execution (the instance hangs;
                    // see EngineTests.ContinueAsNewStartsTheNextGenerationWithItsInput).
                    timerCancel?.Cancel();
                    await Task.WhenAll(tracking);
                    context.ContinueAsNew(new SweepInput(spec, new SweepState(state.Generation + 1, started, finished, exhausted, state.StartedAt)), preserveUnprocessedEvents: false);
                    return null!;
                }

                outcome ??= exhausted ? SweepOutcomes.SpaceExhausted : SweepOutcomes.MaxTrialsReached;
                reason ??= exhausted
                    ? $"the {spec.Algorithm} algorithm has no more configurations to try after {started} trial(s)"
                    : started >= spec.MaxTrialCount
                        ? $"ran maxTrialCount = {spec.MaxTrialCount} trial(s)"
                        : $"the {spec.Algorithm} algorithm made no suggestion while no trial was running";
                break;
            }

            context.SetCustomStatus(Status(spec, state.Generation, finished, running, started, outcome ?? "running"));

            // One durable timer for the earliest trial deadline, kept across iterations: a new timer per
            // progress event would add history and queue messages for nothing.
            var nextDeadline = running.Where(r => !r.TimedOut).Select(r => (DateTime?)r.Deadline).Min();
            if (nextDeadline != timerAt)
            {
                timerCancel?.Cancel();
                timerCancel?.Dispose();
                timerCancel = nextDeadline is null ? null : new CancellationTokenSource();
                timer = nextDeadline is { } at ? context.WaitUntilAsync(at, timerCancel!.Token) : null;
                timerAt = nextDeadline;
            }

            var waitOn = running.Select(r => (Task)r.Task).Append(progress);
            var winner = await Task.WhenAny(timer is null ? waitOn : waitOn.Append(timer));

            if (winner == progress)
            {
                var evt = await progress;
                progress = context.WaitForExternalEvent<TrialProgress>(SweepEvents.TrialProgress);
                var trial = running.FirstOrDefault(r => r.TrialId == evt.TrialInstanceId);
                if (trial is not null && evt.Step.Metrics.TryGetValue(spec.Objective.Metric, out var value))
                {
                    trial.Curve[evt.Step.Step] = value;
                    if (spec.EarlyStopping is { } rule && !trial.StopSent && spec.CrossValidationFolds is null)
                    {
                        var decision = MedianStop(spec, rule, trial, finished);
                        if (decision)
                        {
                            RequestStop(context, trial);
                        }
                    }
                }

                continue;
            }

            if (winner == timer)
            {
                timer = null;
                timerAt = null;
                foreach (var late in running.Where(r => !r.TimedOut && r.Deadline <= context.CurrentUtcDateTime))
                {
                    late.TimedOut = true;
                    RequestStop(context, late);
                }

                continue;
            }

            var done = running.First(r => r.Task == winner);
            running.Remove(done);
            finishedThisGeneration++;
            var trialOutcome = await done.Task;
            var record = ToRecord(spec, done, trialOutcome);
            finished.Add(record);
            tracking.Add(context.CallActivityAsync<bool>(ActivityNames.TrackTrial, ToRun(sweepId, spec, done, record, trialOutcome, context.CurrentUtcDateTime)));

            if (outcome is null && spec.Objective.Goal is { } goal && record.State == TrialState.Succeeded && record.Objective is { } objective
                && (spec.Objective.Direction == ObjectiveDirection.Maximize ? objective >= goal : objective <= goal))
            {
                outcome = SweepOutcomes.GoalReached;
                reason = $"trial {record.TrialId} reached {spec.Objective.Metric} = {objective:G6} (goal {goal:G6})";
                StopAll(context, running);
            }

            var failures = finished.Count(f => f.State == TrialState.Failed);
            if (outcome is null && failures > spec.MaxFailedTrialCount)
            {
                failedLimit = true;
                outcome = "Failed";
                reason = $"{failures} trial(s) failed, more than maxFailedTrialCount = {spec.MaxFailedTrialCount}; last: {record.Error}";
                StopAll(context, running);
            }
        }

        timerCancel?.Cancel();
        timerCancel?.Dispose();
        await Task.WhenAll(tracking);
        var trials = Summaries(spec, finished);
        var best = Best(spec, finished);
        var pareto = spec.SecondaryObjective is { } secondary ? Pareto(spec, secondary, finished) : null;
        var status = failedLimit ? SweepRecordStatus.Failed : SweepRecordStatus.Completed;
        await context.CallActivityAsync<bool>(
            ActivityNames.TrackSweep,
            Record(sweepId, spec, status, state.StartedAt, context.CurrentUtcDateTime, finished) with { Outcome = outcome, Reason = reason, Best = best, ParetoFront = pareto });
        context.SetCustomStatus(Status(spec, state.Generation, finished, running, started, outcome));

        if (failedLimit)
        {
            throw new SweepFailedException($"sweep {sweepId} failed: {reason}");
        }

        return new SweepResult(sweepId, outcome, reason ?? string.Empty, best, pareto, trials, state.Generation + 1);
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

    private static bool MedianStop(SweepSpec spec, EarlyStoppingSpec rule, RunningTrial trial, IReadOnlyList<TrialRecord> finished)
    {
        var steps = trial.Curve.Keys.Order().ToList();
        if (steps.Count == 0 || steps[^1] != steps.Count)
        {
            return false; // a step is missing (events still in flight): judge only a complete curve
        }

        var completed = finished.Where(f => f.State == TrialState.Succeeded && f.ObjectiveCurve.Count > 0).Select(f => f.ObjectiveCurve).ToList();
        var decision = MedianStoppingRule.Evaluate(
            steps.Select(s => trial.Curve[s]).ToList(),
            completed,
            spec.Objective.Direction,
            new MedianStoppingSettings(rule.MinTrialsRequired, rule.StartStep));
        return decision.Stop;
    }

    /// <summary>
    /// Asks a trial to stop at its next epoch boundary: the TrainModel or stand-in sub-orchestration
    /// listens for StopRequested on its one event name and answers with a stopped (partial) result.
    /// </summary>
    private static void RequestStop(TaskOrchestrationContext context, RunningTrial trial)
    {
        if (trial.StopSent)
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

    private static void StopAll(TaskOrchestrationContext context, IEnumerable<RunningTrial> running)
    {
        foreach (var trial in running)
        {
            RequestStop(context, trial);
        }
    }

    private static List<TrialObservation> Observations(IEnumerable<TrialRecord> finished, IEnumerable<RunningTrial> running) =>
        finished.Select(f => new TrialObservation(f.TrialId, f.Parameters, f.State, f.Objective, f.Budget, f.Bracket))
            .Concat(running.Select(r => new TrialObservation(r.TrialId, r.Suggestion.Parameters, TrialState.Running, null, r.Suggestion.Budget, r.Suggestion.Bracket)))
            .ToList();

    private static TrialRecord ToRecord(SweepSpec spec, RunningTrial trial, TrialOutcome outcome)
    {
        var state = outcome.State;
        var error = outcome.Error;
        if (trial.TimedOut && state != TrialState.Failed)
        {
            state = TrialState.Failed;
            error = $"trial timed out after trialTimeoutSeconds = {spec.TrialTimeoutSeconds}";
        }

        // The curve from the outcome is authoritative; the events may have missed steps.
        var curve = outcome.History
            .Where(h => h.Metrics.ContainsKey(spec.Objective.Metric))
            .OrderBy(h => h.Step)
            .Select(h => h.Metrics[spec.Objective.Metric])
            .ToList();
        double? objective = outcome.Metrics.TryGetValue(spec.Objective.Metric, out var o) ? o : curve.Count > 0 ? curve[^1] : null;
        if (state == TrialState.Succeeded && objective is null)
        {
            state = TrialState.Failed;
            error = $"the trial did not report the objective metric '{spec.Objective.Metric}' (it reported {string.Join(", ", outcome.Metrics.Keys)})";
        }

        double? secondary = spec.SecondaryObjective is { } s && outcome.Metrics.TryGetValue(s.Metric, out var v) ? v : null;
        return new TrialRecord(trial.Index, trial.TrialId, trial.Suggestion.Parameters, state, state == TrialState.Failed ? null : objective, secondary,
            trial.Suggestion.Budget, trial.Suggestion.Bracket, curve, error);
    }

    private static TrackingRun ToRun(string sweepId, SweepSpec spec, RunningTrial trial, TrialRecord record, TrialOutcome outcome, DateTime now)
    {
        var tags = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["sweep"] = sweepId,
            ["algorithm"] = spec.Algorithm,
            ["objective"] = spec.Objective.Metric,
        };
        if (InstanceIds.RunOfSweep(sweepId) is { } pipelineRun)
            tags[TrainingRuns.Labels.PipelineRun] = pipelineRun;
        if (trial.Suggestion.Bracket is { } bracket)
            tags["bracket"] = bracket;
        if (trial.Suggestion.Parent is { } parent)
            tags["warm_start_from"] = parent;
        if (trial.Suggestion.Budget is { } budget)
            tags["budget_epochs"] = budget.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (outcome.Device is { } device)
            tags["device"] = device;
        if (trial.StopSent && record.State == TrialState.EarlyStopped)
            tags["stopped_by"] = trial.TimedOut ? "timeout" : "median rule";

        return new TrackingRun
        {
            RunId = trial.TrialId,
            Experiment = sweepId,
            Role = RunRole.Trial,
            Status = record.State,
            Params = trial.Suggestion.Parameters,
            Metrics = outcome.History,
            FinalMetrics = outcome.Metrics,
            Tags = tags,
            Artifacts = outcome.Artifacts,
            Objective = record.Objective,
            Secondary = record.Secondary,
            CrossValidation = outcome.CrossValidation,
            Error = record.Error,
            StartTime = trial.Started,
            EndTime = now,
        };
    }

    private static SweepRecord Record(string sweepId, SweepSpec spec, SweepRecordStatus status, DateTime created, DateTime now, IReadOnlyList<TrialRecord> finished) =>
        new()
        {
            SweepId = sweepId,
            Spec = spec,
            Status = status,
            CreatedAt = created,
            UpdatedAt = now,
            TrialCount = finished.Count,
        };

    private static TrialSummary Summary(TrialRecord r) => new(r.TrialId, r.Parameters, r.State, r.Objective, r.Secondary, r.Budget, r.Error);

    /// <summary>Trials best first; trials without an objective (failed) last, in start order.</summary>
    private static List<TrialSummary> Summaries(SweepSpec spec, IEnumerable<TrialRecord> finished)
    {
        return TrialRanking.BestFirst(finished, r => r.Objective, spec.Objective.Direction)
            .ThenBy(r => r.Index)
            .Select(Summary)
            .ToList();
    }

    /// <summary>The best trial among those that ran to completion (an early-stopped value is partial).</summary>
    private static TrialSummary? Best(SweepSpec spec, IEnumerable<TrialRecord> finished) =>
        Summaries(spec, finished.Where(f => f.State == TrialState.Succeeded)).FirstOrDefault();

    private static List<TrialSummary> Pareto(SweepSpec spec, SecondaryObjective secondary, IReadOnlyList<TrialRecord> finished)
    {
        var candidates = finished.Where(f => f.State == TrialState.Succeeded && f.Objective is not null && f.Secondary is not null).ToList();
        var front = ParetoFront.Compute(
            candidates.Select(c => new ParetoPoint(c.TrialId, c.Objective!.Value, c.Secondary!.Value)).ToList(),
            spec.Objective.Direction,
            secondary.Direction);
        return front.Select(p => Summary(candidates.First(c => c.TrialId == p.Id))).ToList();
    }

    private static SweepStatus Status(SweepSpec spec, int generation, IReadOnlyList<TrialRecord> finished, IReadOnlyList<RunningTrial> running, int started, string state) =>
        new(
            spec.Name,
            generation,
            finished.Count(f => f.State == TrialState.Succeeded),
            running.Count,
            finished.Count(f => f.State == TrialState.Failed),
            finished.Count(f => f.State == TrialState.EarlyStopped),
            started,
            Best(spec, finished),
            state);

    private sealed class RunningTrial(int index, string trialId, Suggestion suggestion, DateTime started, TimeSpan timeout)
    {
        public int Index { get; } = index;

        public string TrialId { get; } = trialId;

        public Suggestion Suggestion { get; } = suggestion;

        public DateTime Started { get; } = started;

        public DateTime Deadline { get; } = started + timeout;

        public required Task<TrialOutcome> Task { get; init; }

        /// <summary>Objective by step, from progress events.</summary>
        public SortedDictionary<int, double> Curve { get; } = [];

        public bool StopSent { get; set; }

        public bool TimedOut { get; set; }
    }
}

/// <summary>A sweep that hit its failed-trial limit; the message says how many failed and the last reason.</summary>
public sealed class SweepFailedException(string message) : Exception(message);
