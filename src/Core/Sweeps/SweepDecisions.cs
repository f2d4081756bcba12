using System.Globalization;
using MlFunctions.Core.Tracking;

namespace MlFunctions.Core.Sweeps;

/// <summary>A trial the sweep has started and not yet seen end; the loop records its progress, stop and timeout here.</summary>
public sealed class ActiveTrial(int index, string trialId, Suggestion suggestion, DateTime started, DateTime deadline)
{
    public int Index { get; } = index;

    public string TrialId { get; } = trialId;

    public Suggestion Suggestion { get; } = suggestion;

    public DateTime Started { get; } = started;

    public DateTime Deadline { get; } = deadline;

    /// <summary>Objective by step, from progress events.</summary>
    public SortedDictionary<int, double> Curve { get; } = [];

    public bool StopSent { get; set; }

    public bool TimedOut { get; set; }
}

/// <summary>
/// One generation of a sweep as data: the finished trials (this generation's and the earlier ones'), the
/// running ones, suggestions asked for and not yet started, and how the sweep is to end once decided.
/// The orchestration owns the durable tasks and feeds what happens into <see cref="SweepDecisions"/>.
/// </summary>
public sealed class SweepProgress(SweepSpec spec, SweepState state)
{
    public SweepSpec Spec { get; } = spec;

    /// <summary>The state this generation started from (generation number, start time).</summary>
    public SweepState State { get; } = state;

    public List<TrialRecord> Finished { get; } = state.Finished.ToList();

    public List<ActiveTrial> Running { get; } = [];

    /// <summary>Suggestions not yet started (a batch from an algorithm that does not adapt to results).</summary>
    public Queue<Suggestion> Queued { get; } = new();

    public int Started { get; set; } = state.Started;

    public bool Exhausted { get; set; } = state.Exhausted;

    public int FinishedThisGeneration { get; set; }

    /// <summary>Set once the sweep has decided to end (goal, failure limit, budget, exhausted space): no trial starts after that.</summary>
    public string? Outcome { get; set; }

    public string? Reason { get; set; }

    public bool FailedLimit { get; set; }
}

/// <summary>What ending a trial decided: its record, its tracking run, and the trials to ask to stop (goal or failure limit).</summary>
public sealed record TrialEnd(TrialRecord Record, TrackingRun Run, IReadOnlyList<ActiveTrial> Stop);

/// <summary>
/// The sweep's decisions as pure functions of <see cref="SweepProgress"/>: what to ask the algorithm for,
/// which trials to start, what a progress event, a deadline or a trial's end means, when the generation
/// ends, and what the result is. Nothing here touches Durable, so each is unit-tested on its own and the
/// orchestration is a short event loop around them.
/// </summary>
public static class SweepDecisions
{
    public const string FailedOutcome = "Failed";

    /// <summary>
    /// How many suggestions to ask for now (0: none). An algorithm that adapts to results is asked for the
    /// free slots only, so every result reaches it before the next ask. One that does not (grid, random,
    /// sobol) is asked once for every trial this generation can still start: per ask, the sweep paid an
    /// activity round trip and a replay of its history (about 25 ms of a 70 ms trial on Azurite).
    /// </summary>
    public static int SuggestionsToAsk(SweepProgress p, bool adaptive)
    {
        var spec = p.Spec;
        var free = spec.ParallelTrialCount - p.Running.Count;
        var budget = spec.MaxTrialCount - p.Started - p.Queued.Count;
        if (p.Outcome is not null || p.Exhausted || p.Queued.Count > 0 || free <= 0 || budget <= 0
            || p.FinishedThisGeneration >= spec.TrialsPerGeneration)
        {
            return 0;
        }

        // A generation starts trials until TrialsPerGeneration have finished, with up to parallel - 1 still
        // running when the last of them ends: at most this many more can start in this generation.
        var generationLeft = spec.TrialsPerGeneration + spec.ParallelTrialCount - 1 - p.FinishedThisGeneration - p.Running.Count;
        return Math.Min(budget, adaptive ? free : Math.Max(free, generationLeft));
    }

    /// <summary>Takes an answer: at most <paramref name="asked"/> suggestions join the queue; an exhausted algorithm is not asked again.</summary>
    public static void Accept(SweepProgress p, SuggestionResult answer, int asked)
    {
        p.Exhausted = answer.Exhausted;
        foreach (var suggestion in answer.Suggestions.Take(asked))
        {
            p.Queued.Enqueue(suggestion);
        }
    }

    /// <summary>Starts queued suggestions in the free slots; trial ids are the sweep's id and a 1-based index.</summary>
    public static IReadOnlyList<ActiveTrial> Launch(SweepProgress p, string sweepId, DateTime now)
    {
        var spec = p.Spec;
        var launched = new List<ActiveTrial>();
        while (p.Queued.Count > 0 && p.Outcome is null && p.Running.Count < spec.ParallelTrialCount && p.Started < spec.MaxTrialCount
               && p.FinishedThisGeneration < spec.TrialsPerGeneration)
        {
            var index = ++p.Started;
            var trial = new ActiveTrial(index, $"{sweepId}-t{index:D3}", p.Queued.Dequeue(), now, now.AddSeconds(spec.TrialTimeoutSeconds));
            p.Running.Add(trial);
            launched.Add(trial);
        }

        return launched;
    }

    /// <summary>What the algorithm is told: every finished trial, and the running ones as pending.</summary>
    public static List<TrialObservation> Observations(SweepProgress p) =>
        p.Finished.Select(f => new TrialObservation(f.TrialId, f.Parameters, f.State, f.Objective, f.Budget, f.Bracket))
            .Concat(p.Running.Select(r => new TrialObservation(r.TrialId, r.Suggestion.Parameters, TrialState.Running, null, r.Suggestion.Budget, r.Suggestion.Bracket)))
            .ToList();

    /// <summary>Records a progress event; returns the trial to stop when the median rule says so (never twice, never under cross-validation).</summary>
    public static ActiveTrial? OnProgress(SweepProgress p, TrialProgress evt)
    {
        var spec = p.Spec;
        var trial = p.Running.FirstOrDefault(r => r.TrialId == evt.TrialInstanceId);
        if (trial is null || !evt.Step.Metrics.TryGetValue(spec.Objective.Metric, out var value))
        {
            return null;
        }

        trial.Curve[evt.Step.Step] = value;
        return spec.EarlyStopping is { } rule && !trial.StopSent && spec.CrossValidationFolds is null && MedianStop(spec, rule, trial, p.Finished)
            ? trial
            : null;
    }

    /// <summary>The median rule on a running trial's curve, judged only when the curve has no missing step (events may still be in flight).</summary>
    public static bool MedianStop(SweepSpec spec, EarlyStoppingSpec rule, ActiveTrial trial, IReadOnlyList<TrialRecord> finished)
    {
        var steps = trial.Curve.Keys.ToList();
        if (steps.Count == 0 || steps[^1] != steps.Count)
        {
            return false;
        }

        var completed = finished.Where(f => f.State == TrialState.Succeeded && f.ObjectiveCurve.Count > 0).Select(f => f.ObjectiveCurve).ToList();
        return MedianStoppingRule.Evaluate(
            steps.Select(s => trial.Curve[s]).ToList(),
            completed,
            spec.Objective.Direction,
            new MedianStoppingSettings(rule.MinTrialsRequired, rule.StartStep)).Stop;
    }

    /// <summary>
    /// When the deadline timer should fire, given one armed for <paramref name="armed"/> (null: none). Deadlines
    /// are start + the same timeout, so a timer armed for the earliest deadline stays early enough when that
    /// trial ends; re-arming on every end added a timer to the history per trial. Null: no timer is needed.
    /// </summary>
    public static DateTime? NextTimer(IEnumerable<ActiveTrial> running, DateTime? armed)
    {
        var earliest = running.Where(r => !r.TimedOut).Select(r => (DateTime?)r.Deadline).Min();
        return earliest is null ? null : armed is { } at && at <= earliest ? at : earliest;
    }

    /// <summary>Marks the trials past their deadline as timed out and returns them (to be asked to stop).</summary>
    public static IReadOnlyList<ActiveTrial> TimeOut(SweepProgress p, DateTime now)
    {
        var late = p.Running.Where(r => !r.TimedOut && r.Deadline <= now).ToList();
        late.ForEach(r => r.TimedOut = true);
        return late;
    }

    /// <summary>A trial ended: record it, track it, and decide whether the goal or the failure limit ends the sweep.</summary>
    public static TrialEnd Finish(SweepProgress p, ActiveTrial trial, TrialOutcome outcome, string sweepId, DateTime now)
    {
        var spec = p.Spec;
        p.Running.Remove(trial);
        p.FinishedThisGeneration++;
        var record = ToRecord(spec, trial, outcome);
        p.Finished.Add(record);
        var run = ToRun(sweepId, spec, trial, record, outcome, now);
        if (p.Outcome is not null)
        {
            return new TrialEnd(record, run, []);
        }

        if (spec.Objective.Goal is { } goal && record.State == TrialState.Succeeded && record.Objective is { } objective
            && (spec.Objective.Direction == ObjectiveDirection.Maximize ? objective >= goal : objective <= goal))
        {
            p.Outcome = SweepOutcomes.GoalReached;
            p.Reason = $"trial {record.TrialId} reached {spec.Objective.Metric} = {objective:G6} (goal {goal:G6})";
        }
        else if (p.Finished.Count(f => f.State == TrialState.Failed) is var failures && failures > spec.MaxFailedTrialCount)
        {
            p.FailedLimit = true;
            p.Outcome = FailedOutcome;
            p.Reason = $"{failures} trial(s) failed, more than maxFailedTrialCount = {spec.MaxFailedTrialCount}; last: {record.Error}";
        }

        return new TrialEnd(record, run, p.Outcome is null ? [] : p.Running.Where(r => !r.StopSent).ToList());
    }

    /// <summary>
    /// With no trial running: the next generation's input when this one has run its share and the sweep
    /// goes on (nothing in flight is lost by starting over), else null after setting how the sweep ends.
    /// </summary>
    public static SweepInput? EndOfGeneration(SweepProgress p)
    {
        var spec = p.Spec;

        // Suggestions still queued are not carried over: the next generation asks again, and grid, random and
        // sobol (the only algorithms asked ahead) answer from the trials that exist, so grid points not yet
        // run come back. Hence an exhausted grid with points left is not exhausted for the next generation.
        var exhausted = p.Exhausted && p.Queued.Count == 0;
        if (p.Outcome is null && !exhausted && p.Started < spec.MaxTrialCount && p.FinishedThisGeneration >= spec.TrialsPerGeneration)
        {
            return new SweepInput(spec, new SweepState(p.State.Generation + 1, p.Started, p.Finished.ToList(), false, p.State.StartedAt));
        }

        p.Outcome ??= exhausted ? SweepOutcomes.SpaceExhausted : SweepOutcomes.MaxTrialsReached;
        p.Reason ??= exhausted
            ? $"the {spec.Algorithm} algorithm has no more configurations to try after {p.Started} trial(s)"
            : p.Started >= spec.MaxTrialCount
                ? $"ran maxTrialCount = {spec.MaxTrialCount} trial(s)"
                : $"the {spec.Algorithm} algorithm made no suggestion while no trial was running";
        return null;
    }

    public static TrialRecord ToRecord(SweepSpec spec, ActiveTrial trial, TrialOutcome outcome)
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

    public static TrackingRun ToRun(string sweepId, SweepSpec spec, ActiveTrial trial, TrialRecord record, TrialOutcome outcome, DateTime now)
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
            tags["budget_epochs"] = budget.ToString(CultureInfo.InvariantCulture);
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

    public static SweepRecord Record(string sweepId, SweepProgress p, SweepRecordStatus status, DateTime now) =>
        new()
        {
            SweepId = sweepId,
            Spec = p.Spec,
            Status = status,
            CreatedAt = p.State.StartedAt,
            UpdatedAt = now,
            TrialCount = p.Finished.Count,
        };

    /// <summary>The sweep's record at its end: outcome, reason, best trial and Pareto front.</summary>
    public static SweepRecord FinalRecord(string sweepId, SweepProgress p, DateTime now) =>
        Record(sweepId, p, p.FailedLimit ? SweepRecordStatus.Failed : SweepRecordStatus.Completed, now) with
        {
            Outcome = p.Outcome,
            Reason = p.Reason,
            Best = Best(p.Spec, p.Finished),
            ParetoFront = Pareto(p.Spec, p.Finished),
        };

    public static SweepResult Result(string sweepId, SweepProgress p) =>
        new(sweepId, p.Outcome ?? SweepOutcomes.MaxTrialsReached, p.Reason ?? string.Empty, Best(p.Spec, p.Finished), Pareto(p.Spec, p.Finished),
            Summaries(p.Spec, p.Finished), p.State.Generation + 1);

    public static SweepStatus Status(SweepProgress p) =>
        new(
            p.Spec.Name,
            p.State.Generation,
            p.Finished.Count(f => f.State == TrialState.Succeeded),
            p.Running.Count,
            p.Finished.Count(f => f.State == TrialState.Failed),
            p.Finished.Count(f => f.State == TrialState.EarlyStopped),
            p.Started,
            Best(p.Spec, p.Finished),
            p.Outcome ?? "running");

    /// <summary>Trials best first; trials without an objective (failed) last, in start order.</summary>
    public static List<TrialSummary> Summaries(SweepSpec spec, IEnumerable<TrialRecord> finished) =>
        TrialRanking.BestFirst(finished, r => r.Objective, spec.Objective.Direction)
            .ThenBy(r => r.Index)
            .Select(Summary)
            .ToList();

    /// <summary>The best trial among those that ran to completion (an early-stopped value is partial).</summary>
    public static TrialSummary? Best(SweepSpec spec, IEnumerable<TrialRecord> finished) =>
        Summaries(spec, finished.Where(f => f.State == TrialState.Succeeded)).FirstOrDefault();

    /// <summary>The non-dominated completed trials on the primary and secondary objectives; null without a secondary objective.</summary>
    public static List<TrialSummary>? Pareto(SweepSpec spec, IReadOnlyList<TrialRecord> finished)
    {
        if (spec.SecondaryObjective is not { } secondary)
        {
            return null;
        }

        var candidates = finished.Where(f => f.State == TrialState.Succeeded && f.Objective is not null && f.Secondary is not null).ToList();
        var front = ParetoFront.Compute(
            candidates.Select(c => new ParetoPoint(c.TrialId, c.Objective!.Value, c.Secondary!.Value)).ToList(),
            spec.Objective.Direction,
            secondary.Direction);
        return front.Select(p => Summary(candidates.First(c => c.TrialId == p.Id))).ToList();
    }

    private static TrialSummary Summary(TrialRecord r) => new(r.TrialId, r.Parameters, r.State, r.Objective, r.Secondary, r.Budget, r.Error);
}
