using Microsoft.DurableTask;
using MlFunctions.Activities;
using MlFunctions.Activities.Sweeps;
using MlFunctions.Core;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;
using MlFunctions.Core.Training;
using MlFunctions.Orchestrations.Sweeps;
using Moq;
using Xunit;

namespace MlFunctions.Tests.Orchestrations;

/// <summary>
/// The sweep orchestration on a mocked context: trials are sub-orchestrations the test finishes by hand,
/// suggestions come from the real algorithm (as the activity computes them), events and stops are recorded.
/// </summary>
public sealed class HyperparameterSweepTests
{
    [Fact]
    public async Task NeverRunsMoreThanParallelTrialCountAndRunsTheWholeBudget()
    {
        var sweep = new SweepHarness(Spec(parallel: 3, max: 10));
        var run = sweep.Start();
        var order = new Random(7);
        while (!run.IsCompleted)
        {
            // Finish a random running trial: results arrive out of order, as they do.
            var pending = sweep.Pending;
            Assert.NotEmpty(pending);
            sweep.Succeed(pending[order.Next(pending.Count)]);
        }

        var result = await run;
        Assert.Equal(3, sweep.MaxInFlight);
        Assert.Equal(10, sweep.Started.Count);
        Assert.Equal(10, result.Trials.Count);
        Assert.Equal(SweepOutcomes.MaxTrialsReached, result.Outcome);
        Assert.Equal(10, sweep.Tracked.Count);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => $"sw-t{i:D3}"), sweep.Started.Select(s => s.InstanceId));

        // Best first, and the best is the smallest sphere value among the trials that ran.
        var best = result.Trials.Min(t => t.Objective);
        Assert.Equal(best, result.Best!.Objective);
        Assert.Equal(best, result.Trials[0].Objective);
    }

    [Fact]
    public async Task ResultsGoToTheAlgorithmAsEachTrialFinishesNotInWaves()
    {
        var sweep = new SweepHarness(Spec(parallel: 3, max: 6) with { Algorithm = "tpe" });
        var run = sweep.Start();
        Assert.Equal(3, sweep.Pending.Count);

        // One finished trial frees one slot, filled at once with a suggestion that saw that result.
        sweep.Succeed(sweep.Pending[1]);
        Assert.Equal(4, sweep.Started.Count);
        Assert.Equal(3, sweep.Pending.Count);
        var ask = sweep.Asks[^1];
        Assert.Equal(1, ask.History.Count(h => h.State == TrialState.Succeeded));
        Assert.Equal(2, ask.History.Count(h => h.State == TrialState.Running));

        while (!run.IsCompleted)
            sweep.Succeed(sweep.Pending[0]);
        await run;
    }

    [Fact]
    public async Task AnAlgorithmThatIgnoresResultsIsAskedOncePerGeneration()
    {
        // random: one ask for what the generation can start (trialsPerGeneration 4 + parallel 3 - 1 = 6).
        var sweep = new SweepHarness(Spec(parallel: 3, max: 10) with { TrialsPerGeneration = 4 });
        var run = sweep.Start();
        Assert.Equal(6, Assert.Single(sweep.Asks).Count);
        Assert.Equal(3, sweep.Pending.Count);
        while (!run.IsCompleted && sweep.ContinuedAsNewWith is null)
            sweep.Succeed(sweep.Pending[0]);

        Assert.Single(sweep.Asks);
        Assert.Equal(6, sweep.Started.Count);
        Assert.Equal(6, ((SweepInput)sweep.ContinuedAsNewWith!).State!.Finished.Count);
        Assert.Equal(6, sweep.Tracked.Select(t => t.RunId).Distinct().Count());
        await run;
    }

    [Fact]
    public async Task TrialsThatEndWhileATrackingWriteIsInFlightGoIntoTheNextWrite()
    {
        var sweep = new SweepHarness(Spec(parallel: 3, max: 3)) { HoldTracking = true };
        var run = sweep.Start();
        sweep.Succeed(sweep.Pending[0]);
        sweep.Succeed(sweep.Pending[0]);
        sweep.Succeed(sweep.Pending[0]);

        // The first write carries the first trial; the other two wait for it, then go together.
        var first = Assert.Single(sweep.TrackingWrites);
        Assert.Equal(["sw-t001"], first.Runs.Select(r => r.RunId));
        Assert.False(run.IsCompleted);
        first.Completion.SetResult(true);
        Assert.Equal(2, sweep.TrackingWrites.Count);
        Assert.Equal(["sw-t002", "sw-t003"], sweep.TrackingWrites[1].Runs.Select(r => r.RunId));

        // The final record waits for every trial's write.
        Assert.DoesNotContain(sweep.SweepRecords, r => r.Status == SweepRecordStatus.Completed);
        sweep.TrackingWrites[1].Completion.SetResult(true);
        var result = await run;
        Assert.Equal(3, result.Trials.Count);
        Assert.Equal(SweepRecordStatus.Completed, sweep.SweepRecords[^1].Status);
    }

    [Fact]
    public async Task MoreFailuresThanTheLimitFailTheSweepAndStopTheRunningTrials()
    {
        var sweep = new SweepHarness(Spec(parallel: 2, max: 10) with { MaxFailedTrialCount = 1 });
        var run = sweep.Start();
        sweep.Fail(sweep.Pending[0], "worker out of memory");
        Assert.False(run.IsCompleted);
        sweep.Fail(sweep.Pending[0], "worker out of memory again");

        // Over the limit: no new trial starts, the one still running is asked to stop.
        Assert.Equal(3, sweep.Started.Count);
        var survivor = Assert.Single(sweep.Pending);
        Assert.Contains(survivor.InstanceId, sweep.StopsSent);
        sweep.Succeed(survivor, stoppedEarly: true);

        var error = await Assert.ThrowsAsync<SweepFailedException>(() => run);
        Assert.Contains("2 trial(s) failed, more than maxFailedTrialCount = 1", error.Message);
        Assert.Contains("worker out of memory again", error.Message);
        Assert.Equal(SweepRecordStatus.Failed, sweep.SweepRecords[^1].Status);
    }

    [Fact]
    public async Task ReachingTheGoalEndsTheSweepAndStopsTheOthers()
    {
        var sweep = new SweepHarness(Spec(parallel: 3, max: 20) with { Objective = new SweepObjective(StandInObjectives.Loss, ObjectiveDirection.Minimize, Goal: 0.5) });
        var run = sweep.Start();
        sweep.Succeed(sweep.Pending[0], loss: 3.0);
        sweep.Succeed(sweep.Pending[0], loss: 0.25); // reaches the goal
        Assert.Equal(2, sweep.Pending.Count);
        Assert.All(sweep.Pending, p => Assert.Contains(p.InstanceId, sweep.StopsSent));
        var startedAtGoal = sweep.Started.Count;
        while (!run.IsCompleted)
            sweep.Succeed(sweep.Pending[0], stoppedEarly: true);

        var result = await run;
        Assert.Equal(startedAtGoal, sweep.Started.Count);
        Assert.Equal(SweepOutcomes.GoalReached, result.Outcome);
        Assert.Equal(0.25, result.Best!.Objective);
        Assert.Contains("goal 0.5", result.Reason);
    }

    [Fact]
    public async Task TheMedianRuleSendsTheStopToAHopelessTrial()
    {
        var spec = Spec(parallel: 1, max: 4) with { EarlyStopping = new EarlyStoppingSpec(MinTrialsRequired: 2, StartStep: 2) };
        var sweep = new SweepHarness(spec);
        var run = sweep.Start();

        // Two completed trials with curves 4,3,2 and 6,4,2: running averages after 2 steps are 3.5 and 5 (median 4.25).
        sweep.Succeed(sweep.Pending[0], curve: [4, 3, 2]);
        sweep.Succeed(sweep.Pending[0], curve: [6, 4, 2]);
        var third = sweep.Pending[0];

        // Step 1 is before startStep: no decision even though it is bad.
        sweep.Progress(third, 1, 9);
        Assert.DoesNotContain(third.InstanceId, sweep.StopsSent);

        // Step 2: best so far 8 is worse than the median 4.25 → stop.
        sweep.Progress(third, 2, 8);
        Assert.Contains(third.InstanceId, sweep.StopsSent);
        sweep.Succeed(third, curve: [9, 8], stoppedEarly: true);

        // A promising trial is left alone.
        var fourth = sweep.Pending[0];
        sweep.Progress(fourth, 1, 3);
        sweep.Progress(fourth, 2, 2);
        Assert.DoesNotContain(fourth.InstanceId, sweep.StopsSent);
        sweep.Succeed(fourth, curve: [3, 2, 1]);

        var result = await run;
        Assert.Equal(TrialState.EarlyStopped, result.Trials.Single(t => t.TrialId == third.InstanceId).State);
        Assert.Equal(1, result.Best!.Objective);
    }

    [Fact]
    public async Task LongSweepsContinueAsNewWithTheFinishedTrialsOnceTheRunningOnesEnd()
    {
        var sweep = new SweepHarness(Spec(parallel: 2, max: 10) with { TrialsPerGeneration = 3 });
        var run = sweep.Start();
        while (!run.IsCompleted)
            sweep.Succeed(sweep.Pending[0]);
        await run;

        // 3 finished → no new starts; the 4th (already running) ends; then the next generation.
        var next = Assert.IsType<SweepInput>(sweep.ContinuedAsNewWith);
        Assert.Equal(1, next.State!.Generation);
        Assert.Equal(4, next.State.Started);
        Assert.Equal(4, next.State.Finished.Count);
        Assert.Equal(4, sweep.Started.Count);

        // The next generation starts numbering after the last trial and knows the finished ones.
        var gen2 = new SweepHarness(next.Spec);
        var run2 = gen2.Start(next);
        Assert.Equal(["sw-t005", "sw-t006"], gen2.Started.Select(s => s.InstanceId));
        Assert.Equal(4, gen2.Asks[0].History.Count(h => h.State == TrialState.Succeeded));
        while (!run2.IsCompleted && gen2.ContinuedAsNewWith is null)
            gen2.Succeed(gen2.Pending[0]);
    }

    [Fact]
    public async Task ATrialPastItsTimeoutIsAskedToStopAndCountsAsFailed()
    {
        var sweep = new SweepHarness(Spec(parallel: 1, max: 2) with { TrialTimeoutSeconds = 60 });
        var run = sweep.Start();
        var slow = sweep.Pending[0];
        Assert.Equal(sweep.Now.AddSeconds(60), sweep.Timers[^1].At);

        sweep.FireLatestTimer();
        Assert.Contains(slow.InstanceId, sweep.StopsSent);
        sweep.Succeed(slow, stoppedEarly: true);
        sweep.Succeed(sweep.Pending[0]);

        var result = await run;
        var timedOut = result.Trials.Single(t => t.TrialId == slow.InstanceId);
        Assert.Equal(TrialState.Failed, timedOut.State);
        Assert.Contains("timed out after trialTimeoutSeconds = 60", timedOut.Error);
        Assert.Equal(2, sweep.Started.Count);
    }

    [Fact]
    public async Task AnInvalidSpecFailsBeforeAnythingRunsAndListsEveryProblem()
    {
        var context = new Mock<TaskOrchestrationContext>(MockBehavior.Strict);
        var spec = Spec(parallel: 0, max: 5) with
        {
            Algorithm = "annealing",
            Parameters = [ParameterSpec.Double("x1", 0, 1, ParameterScale.Log), ParameterSpec.Double("x2", 3, 1)],
        };
        var error = await Assert.ThrowsAsync<ArgumentException>(() => HyperparameterSweep.RunAsync(context.Object, new SweepInput(spec)));
        Assert.Contains("unknown algorithm 'annealing'", error.Message);
        Assert.Contains("parallelTrialCount must be at least 1", error.Message);
        Assert.Contains("x1", error.Message);
        Assert.Contains("x2", error.Message);
    }

    private static SweepSpec Spec(int parallel, int max) => new()
    {
        Name = "sphere",
        Parameters = [ParameterSpec.Double("x1", -2, 2), ParameterSpec.Double("x2", -2, 2)],
        Algorithm = "random",
        Objective = new SweepObjective(StandInObjectives.Loss, ObjectiveDirection.Minimize),
        ParallelTrialCount = parallel,
        MaxTrialCount = max,
        Trial = new TrialTemplate { StandIn = new StandInTrialSpec("sphere", Epochs: 3) },
    };

    /// <summary>A mocked orchestration context whose trials the test finishes one by one.</summary>
    private sealed class SweepHarness
    {
        private readonly Mock<TaskOrchestrationContext> context = new();
        private readonly SweepSpec spec;
        private TaskCompletionSource<TrialProgress> progress = new();

        public SweepHarness(SweepSpec spec)
        {
            this.spec = spec;
            context.SetupGet(c => c.InstanceId).Returns("sw");
            context.SetupGet(c => c.CurrentUtcDateTime).Returns(() => Now);
            context
                .Setup(c => c.CallActivityAsync<SuggestionResult>(It.Is<TaskName>(n => n.Name == ActivityNames.SuggestTrials), It.IsAny<object?>(), It.IsAny<TaskOptions?>()))
                .Returns((TaskName _, object? input, TaskOptions? _) =>
                {
                    var ask = (SuggestTrialsInput)input!;
                    Asks.Add(ask);
                    return new SuggestTrialsActivity().RunAsync(ask, new ActivityCall(ActivityNames.SuggestTrials, "sw", default));
                });
            context
                .Setup(c => c.CallActivityAsync<bool>(It.IsAny<TaskName>(), It.IsAny<object?>(), It.IsAny<TaskOptions?>()))
                .Returns((TaskName name, object? input, TaskOptions? _) =>
                {
                    if (input is SweepRecord record)
                        SweepRecords.Add(record);
                    if (input is not List<TrackingRun> runs)
                        return Task.FromResult(true);
                    Assert.Equal(ActivityNames.TrackTrials, name.Name);
                    Tracked.AddRange(runs);
                    if (!HoldTracking)
                        return Task.FromResult(true);
                    var write = (runs, new TaskCompletionSource<bool>());
                    TrackingWrites.Add(write);
                    return write.Item2.Task;
                });
            context
                .Setup(c => c.CallSubOrchestratorAsync<TrialOutcome>(It.Is<TaskName>(n => n.Name == OrchestrationNames.StandInTrial), It.IsAny<object?>(), It.IsAny<TaskOptions?>()))
                .Returns((TaskName _, object? input, TaskOptions? options) =>
                {
                    var trial = new StartedTrial(((SubOrchestrationOptions)options!).InstanceId!, (StandInTrialInput)input!);
                    Started.Add(trial);
                    MaxInFlight = Math.Max(MaxInFlight, Pending.Count);
                    return trial.Completion.Task;
                });
            context
                .Setup(c => c.WaitForExternalEvent<TrialProgress>(SweepEvents.TrialProgress, It.IsAny<CancellationToken>()))
                .Returns(() =>
                {
                    progress = new TaskCompletionSource<TrialProgress>();
                    return progress.Task;
                });

            // Timers fire only when a test says so.
            context
                .Setup(c => c.CreateTimer(It.IsAny<DateTime>(), It.IsAny<CancellationToken>()))
                .Returns((DateTime at, CancellationToken _) =>
                {
                    var timer = new TaskCompletionSource();
                    Timers.Add((at, timer));
                    return timer.Task;
                });
            context
                .Setup(c => c.SendEvent(It.IsAny<string>(), TrainingEvents.EventName, It.IsAny<object>()))
                .Callback((string id, string _, object payload) =>
                {
                    Assert.Equal(TrainingEvents.StopRequested, ((TrainingEvent)payload).Kind);
                    StopsSent.Add(id);
                });
            context
                .Setup(c => c.ContinueAsNew(It.IsAny<object?>(), It.IsAny<bool>()))
                .Callback((object? input, bool _) => ContinuedAsNewWith = input);
        }

        public List<StartedTrial> Started { get; } = [];

        public DateTime Now { get; set; } = new(2026, 11, 30, 8, 0, 0, DateTimeKind.Utc);

        public List<(DateTime At, TaskCompletionSource Completion)> Timers { get; } = [];

        /// <summary>Moves the clock to the latest timer and fires it.</summary>
        public void FireLatestTimer()
        {
            var (at, timer) = Timers[^1];
            Now = at;
            timer.SetResult();
        }

        public List<StartedTrial> Pending => Started.Where(s => !s.Completion.Task.IsCompleted).ToList();

        public int MaxInFlight { get; private set; }

        public List<SuggestTrialsInput> Asks { get; } = [];

        public List<TrackingRun> Tracked { get; } = [];

        /// <summary>When set, each tracking write stays in flight until the test completes it.</summary>
        public bool HoldTracking { get; init; }

        public List<(List<TrackingRun> Runs, TaskCompletionSource<bool> Completion)> TrackingWrites { get; } = [];

        public List<SweepRecord> SweepRecords { get; } = [];

        public List<string> StopsSent { get; } = [];

        public object? ContinuedAsNewWith { get; private set; }

        public Task<SweepResult> Start(SweepInput? input = null) => HyperparameterSweep.RunAsync(context.Object, input ?? new SweepInput(spec));

        /// <summary>Finishes a trial with its sphere value (or the given loss / curve).</summary>
        public void Succeed(StartedTrial trial, double? loss = null, double[]? curve = null, bool stoppedEarly = false)
        {
            var values = curve ?? [loss ?? StandInObjectives.Evaluate("sphere", trial.Input.Parameters)];
            var history = values.Select((v, i) => new MetricStep(i + 1, new Dictionary<string, double> { [StandInObjectives.Loss] = v })).ToList();
            trial.Completion.SetResult(new TrialOutcome(
                trial.InstanceId,
                stoppedEarly ? TrialState.EarlyStopped : TrialState.Succeeded,
                history[^1].Metrics,
                history,
                new Dictionary<string, string>()));
        }

        public void Fail(StartedTrial trial, string reason) =>
            trial.Completion.SetException(new TaskFailedException(OrchestrationNames.StandInTrial, 0, new TaskFailureDetails("InvalidOperationException", reason, null, null, null)));

        public void Progress(StartedTrial trial, int step, double loss) =>
            progress.SetResult(new TrialProgress(trial.InstanceId, new MetricStep(step, new Dictionary<string, double> { [StandInObjectives.Loss] = loss })));
    }

    private sealed record StartedTrial(string InstanceId, StandInTrialInput Input)
    {
        public TaskCompletionSource<TrialOutcome> Completion { get; } = new();
    }
}
