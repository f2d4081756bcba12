using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;

namespace MlFunctions.Sweeps.Tests;

/// <summary>The sweep's decisions on plain data, without an orchestration around them.</summary>
public sealed class SweepDecisionsTests
{
    private static readonly DateTime Now = new(2026, 12, 3, 9, 0, 0, DateTimeKind.Utc);

    private static SweepSpec Spec(int parallel = 3, int max = 10, int perGeneration = 40) => new()
    {
        Name = "sphere",
        Parameters = [ParameterSpec.Double("x", -2, 2)],
        Algorithm = "random",
        Objective = new SweepObjective(StandInObjectives.Loss, ObjectiveDirection.Minimize),
        ParallelTrialCount = parallel,
        MaxTrialCount = max,
        TrialsPerGeneration = perGeneration,
        Trial = new TrialTemplate { StandIn = new StandInTrialSpec("sphere", Epochs: 3) },
    };

    private static SweepProgress Fresh(SweepSpec spec) => new(spec, new SweepState(0, 0, [], false, Now));

    private static Suggestion At(double x) => new(new ParameterSet { ["x"] = x.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    private static TrialOutcome Outcome(string id, params double[] curve) => Outcome(id, TrialState.Succeeded, curve);

    private static TrialOutcome Outcome(string id, TrialState state, params double[] curve)
    {
        var history = curve.Select((v, i) => new MetricStep(i + 1, new Dictionary<string, double> { [StandInObjectives.Loss] = v })).ToList();
        return new TrialOutcome(id, state, history.Count > 0 ? history[^1].Metrics : new Dictionary<string, double>(), history, new Dictionary<string, string>());
    }

    /// <summary>Queues <paramref name="count"/> suggestions and launches what fits.</summary>
    private static IReadOnlyList<ActiveTrial> Start(SweepProgress p, int count)
    {
        SweepDecisions.Accept(p, new SuggestionResult(Enumerable.Range(0, count).Select(i => At(i * 0.1)).ToList(), false), count);
        return SweepDecisions.Launch(p, "sw", Now);
    }

    [Fact]
    public void An_adaptive_algorithm_is_asked_for_the_free_slots_only()
    {
        var p = Fresh(Spec(parallel: 3, max: 10));
        Assert.Equal(3, SweepDecisions.SuggestionsToAsk(p, adaptive: true));
        Start(p, 3);
        Assert.Equal(0, SweepDecisions.SuggestionsToAsk(p, adaptive: true));
        SweepDecisions.Finish(p, p.Running[0], Outcome("sw-t001", 1.0), "sw", Now);
        Assert.Equal(1, SweepDecisions.SuggestionsToAsk(p, adaptive: true));
    }

    [Fact]
    public void An_algorithm_that_ignores_results_is_asked_for_what_the_generation_can_still_start()
    {
        // 40 per generation, 10 in parallel: the generation ends with at most 9 trials running past the 40th end.
        Assert.Equal(49, SweepDecisions.SuggestionsToAsk(Fresh(Spec(parallel: 10, max: 100)), adaptive: false));
        Assert.Equal(20, SweepDecisions.SuggestionsToAsk(Fresh(Spec(parallel: 10, max: 20)), adaptive: false));

        // Nothing more is asked while suggestions are queued, and never past the budget.
        var p = Fresh(Spec(parallel: 2, max: 5));
        Start(p, 5);
        Assert.Equal(2, p.Running.Count);
        Assert.Equal(3, p.Queued.Count);
        Assert.Equal(0, SweepDecisions.SuggestionsToAsk(p, adaptive: false));
    }

    [Fact]
    public void Launch_fills_free_slots_with_numbered_trials_and_stops_at_the_budget()
    {
        var p = Fresh(Spec(parallel: 3, max: 4));
        var first = Start(p, 4);
        Assert.Equal(["sw-t001", "sw-t002", "sw-t003"], first.Select(t => t.TrialId));
        Assert.Equal(Now.AddSeconds(p.Spec.TrialTimeoutSeconds), first[0].Deadline);
        SweepDecisions.Finish(p, first[0], Outcome("sw-t001", 1.0), "sw", Now);
        Assert.Equal("sw-t004", Assert.Single(SweepDecisions.Launch(p, "sw", Now)).TrialId);
        SweepDecisions.Finish(p, first[1], Outcome("sw-t002", 1.0), "sw", Now);
        Assert.Empty(SweepDecisions.Launch(p, "sw", Now));
        Assert.Equal(4, p.Started);
    }

    [Fact]
    public void The_goal_ends_the_sweep_and_asks_the_running_trials_to_stop()
    {
        var p = Fresh(Spec(parallel: 3) with { Objective = new SweepObjective(StandInObjectives.Loss, ObjectiveDirection.Minimize, Goal: 0.5) });
        var trials = Start(p, 3);
        Assert.Empty(SweepDecisions.Finish(p, trials[0], Outcome(trials[0].TrialId, 2.0), "sw", Now).Stop);
        var end = SweepDecisions.Finish(p, trials[1], Outcome(trials[1].TrialId, 0.4), "sw", Now);
        Assert.Equal(SweepOutcomes.GoalReached, p.Outcome);
        Assert.Contains("goal 0.5", p.Reason);
        Assert.Equal([trials[2]], end.Stop);
        Assert.Equal(0, SweepDecisions.SuggestionsToAsk(p, adaptive: true));
        Assert.Empty(Start(p, 2));
    }

    [Fact]
    public void More_failures_than_the_limit_fail_the_sweep()
    {
        var p = Fresh(Spec(parallel: 3) with { MaxFailedTrialCount = 1 });
        var trials = Start(p, 3);
        SweepDecisions.Finish(p, trials[0], TrialOutcome.Failed(trials[0].TrialId, "out of memory"), "sw", Now);
        Assert.Null(p.Outcome);
        var end = SweepDecisions.Finish(p, trials[1], TrialOutcome.Failed(trials[1].TrialId, "disk full"), "sw", Now);
        Assert.True(p.FailedLimit);
        Assert.Equal("2 trial(s) failed, more than maxFailedTrialCount = 1; last: disk full", p.Reason);
        Assert.Equal([trials[2]], end.Stop);
        Assert.Equal(SweepRecordStatus.Failed, SweepDecisions.FinalRecord("sw", p, Now).Status);
    }

    [Fact]
    public void A_success_without_the_objective_metric_is_a_failure_and_a_late_trial_a_timeout()
    {
        var spec = Spec();
        var trial = new ActiveTrial(1, "sw-t001", At(0), Now, Now.AddSeconds(60));
        var missing = new TrialOutcome("sw-t001", TrialState.Succeeded, new Dictionary<string, double> { ["accuracy"] = 0.9 }, [], new Dictionary<string, string>());
        var record = SweepDecisions.ToRecord(spec, trial, missing);
        Assert.Equal(TrialState.Failed, record.State);
        Assert.Contains("did not report the objective metric 'loss' (it reported accuracy)", record.Error);

        trial.TimedOut = true;
        trial.StopSent = true;
        var late = SweepDecisions.ToRecord(spec, trial, Outcome("sw-t001", TrialState.EarlyStopped, 3, 2));
        Assert.Equal(TrialState.Failed, late.State);
        Assert.Null(late.Objective);
        Assert.Equal([3.0, 2.0], late.ObjectiveCurve);
        Assert.Contains("timed out after trialTimeoutSeconds = 3600", late.Error);
    }

    [Fact]
    public void The_median_rule_judges_complete_curves_only()
    {
        var spec = Spec(parallel: 1) with { EarlyStopping = new EarlyStoppingSpec(MinTrialsRequired: 2, StartStep: 2) };
        var p = Fresh(spec);
        foreach (var curve in new[] { new double[] { 4, 3, 2 }, [6, 4, 2] })
        {
            var done = Start(p, 1)[0];
            SweepDecisions.Finish(p, done, Outcome(done.TrialId, curve), "sw", Now);
        }

        // Under cross-validation the rule is off (the folds' mean is what counts, not one curve).
        var cv = Fresh(spec with { CrossValidationFolds = 3 });
        cv.Finished.AddRange(p.Finished);
        var folded = new ActiveTrial(3, "sw-t003", At(1), Now, Now.AddHours(1));
        cv.Running.Add(folded);
        Assert.Null(SweepDecisions.OnProgress(cv, Progress(folded, 1, 9)));
        Assert.Null(SweepDecisions.OnProgress(cv, Progress(folded, 2, 8)));

        var third = Start(p, 1)[0];
        Assert.Null(SweepDecisions.OnProgress(p, Progress(third, 1, 9))); // before startStep
        Assert.Null(SweepDecisions.OnProgress(p, Progress(third, 3, 8))); // step 2 still missing
        Assert.Same(third, SweepDecisions.OnProgress(p, Progress(third, 2, 8))); // best 8 worse than the median 3.5 at step 3
        third.StopSent = true;
        Assert.Null(SweepDecisions.OnProgress(p, Progress(third, 4, 8))); // never twice
        Assert.Equal([9.0, 8, 8, 8], third.Curve.Values);

        static TrialProgress Progress(ActiveTrial t, int step, double loss) =>
            new(t.TrialId, new MetricStep(step, new Dictionary<string, double> { [StandInObjectives.Loss] = loss }));
    }

    [Fact]
    public void One_timer_for_the_earliest_deadline_is_kept_while_it_is_early_enough()
    {
        var a = new ActiveTrial(1, "a", At(0), Now, Now.AddSeconds(60));
        var b = new ActiveTrial(2, "b", At(0), Now.AddSeconds(10), Now.AddSeconds(70));
        Assert.Equal(a.Deadline, SweepDecisions.NextTimer([a, b], null));

        // a ended: the timer armed for a's deadline stays (it fires early, and the check re-arms for b).
        Assert.Equal(a.Deadline, SweepDecisions.NextTimer([b], a.Deadline));
        Assert.Equal(b.Deadline, SweepDecisions.NextTimer([b], null));
        Assert.Null(SweepDecisions.NextTimer([], a.Deadline));

        var p = Fresh(Spec());
        p.Running.AddRange([a, b]);
        Assert.Equal([a], SweepDecisions.TimeOut(p, Now.AddSeconds(65)));
        Assert.True(a.TimedOut);
        Assert.Empty(SweepDecisions.TimeOut(p, Now.AddSeconds(65)));
        Assert.Equal(b.Deadline, SweepDecisions.NextTimer(p.Running, null));
    }

    [Fact]
    public void A_generation_that_ran_its_share_continues_as_new_with_the_finished_trials()
    {
        var p = Fresh(Spec(parallel: 2, max: 10, perGeneration: 2));
        var trials = Start(p, 2);
        foreach (var t in trials)
            SweepDecisions.Finish(p, t, Outcome(t.TrialId, 1.0), "sw", Now);

        var next = SweepDecisions.EndOfGeneration(p);
        Assert.NotNull(next);
        Assert.Equal(1, next.State!.Generation);
        Assert.Equal(2, next.State.Started);
        Assert.Equal(["sw-t001", "sw-t002"], next.State.Finished.Select(f => f.TrialId));
        Assert.Equal(Now, next.State.StartedAt);
        Assert.Null(p.Outcome);
    }

    [Fact]
    public void An_exhausted_grid_with_points_still_queued_is_not_exhausted_for_the_next_generation()
    {
        var p = Fresh(Spec(parallel: 1, max: 10, perGeneration: 1));
        SweepDecisions.Accept(p, new SuggestionResult([At(0), At(1)], Exhausted: true), 2);
        var first = Assert.Single(SweepDecisions.Launch(p, "sw", Now));
        SweepDecisions.Finish(p, first, Outcome(first.TrialId, 1.0), "sw", Now);
        Assert.False(SweepDecisions.EndOfGeneration(p)!.State!.Exhausted);

        // With nothing queued, exhausted ends the sweep.
        var q = Fresh(Spec(parallel: 1, max: 10));
        SweepDecisions.Accept(q, new SuggestionResult([At(0)], Exhausted: true), 1);
        var only = Assert.Single(SweepDecisions.Launch(q, "sw", Now));
        SweepDecisions.Finish(q, only, Outcome(only.TrialId, 1.0), "sw", Now);
        Assert.Null(SweepDecisions.EndOfGeneration(q));
        Assert.Equal(SweepOutcomes.SpaceExhausted, q.Outcome);
        Assert.Contains("no more configurations to try after 1 trial(s)", q.Reason);
    }

    [Fact]
    public void The_result_ranks_best_first_and_the_best_excludes_early_stopped_values()
    {
        var p = Fresh(Spec(parallel: 4, max: 4) with { SecondaryObjective = new SecondaryObjective("size", ObjectiveDirection.Minimize) });
        var trials = Start(p, 4);
        SweepDecisions.Finish(p, trials[0], Outcome(trials[0].TrialId, 3.0), "sw", Now);
        SweepDecisions.Finish(p, trials[1], Outcome(trials[1].TrialId, TrialState.EarlyStopped, 0.5), "sw", Now);
        SweepDecisions.Finish(p, trials[2], TrialOutcome.Failed(trials[2].TrialId, "boom"), "sw", Now);
        SweepDecisions.Finish(p, trials[3], Outcome(trials[3].TrialId, 1.0), "sw", Now);
        Assert.Null(SweepDecisions.EndOfGeneration(p));

        var result = SweepDecisions.Result("sw", p);
        Assert.Equal(SweepOutcomes.MaxTrialsReached, result.Outcome);
        Assert.Equal(["sw-t002", "sw-t004", "sw-t001", "sw-t003"], result.Trials.Select(t => t.TrialId));
        Assert.Equal("sw-t004", result.Best!.TrialId);
        Assert.Empty(result.ParetoFront!); // no trial reported the secondary metric
        var status = SweepDecisions.Status(p);
        Assert.Equal((2, 1, 1, 0), (status.Done, status.Failed, status.EarlyStopped, status.Running));
    }

    [Fact]
    public void The_tracking_run_carries_the_sweep_tags_and_the_stop_reason()
    {
        var spec = Spec();
        var trial = new ActiveTrial(1, "run-abc-sweep-t001", new Suggestion(new ParameterSet { ["x"] = "0.5" }, Budget: 9, Bracket: "b0"), Now, Now.AddHours(1)) { StopSent = true };
        var outcome = Outcome(trial.TrialId, TrialState.EarlyStopped, 2, 1.5);
        var record = SweepDecisions.ToRecord(spec, trial, outcome);
        var run = SweepDecisions.ToRun("sw", spec, trial, record, outcome, Now.AddMinutes(5));
        Assert.Equal(RunRole.Trial, run.Role);
        Assert.Equal("sw", run.Experiment);
        Assert.Equal("median rule", run.Tags["stopped_by"]);
        Assert.Equal("9", run.Tags["budget_epochs"]);
        Assert.Equal("b0", run.Tags["bracket"]);
        Assert.Equal(1.5, run.Objective);
        Assert.Equal((Now, Now.AddMinutes(5)), (run.StartTime, run.EndTime));
    }

    [Fact]
    public void Only_grid_random_and_sobol_ignore_results()
    {
        var ignoring = SuggestionAlgorithms.Names.Where(n => !SuggestionAlgorithms.Get(n).AdaptsToResults).Order().ToList();
        Assert.Equal(["grid", "random", "sobol"], ignoring);
    }
}
