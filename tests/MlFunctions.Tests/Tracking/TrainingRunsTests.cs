using Microsoft.DurableTask;
using Moq;
using MlFunctions.Core;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;
using MlFunctions.Core.Training;
using MlFunctions.Orchestrations.Training;
using MlFunctions.Tests.Pipelines;
using Xunit;

namespace MlFunctions.Tests.Tracking;

/// <summary>The pure tracking decisions, the merge of a run's writes, and TrainModel's tracking hooks on a mocked context.</summary>
public sealed class TrainingRunsTests
{
    private static readonly DateTime T0 = new(2026, 1, 1, 12, 0, 0, DateTimeKind.Utc);

    public static TrainingJob Job(string id = "job-1", params (string Key, string Value)[] labels) => new()
    {
        JobId = id,
        Model = "mlp",
        Hyperparameters = new HyperParameters { HiddenSizes = [64, 32], LearningRate = 0.01, Epochs = 3 },
        Data = new PreparedDataRef("prepared", "loans/abc", "sha-123"),
        Labels = labels.ToDictionary(l => l.Key, l => l.Value),
    };

    [Fact]
    public void RoleAndExperimentFollowTheLabels()
    {
        Assert.Equal((RunRole.Train, TrainingRuns.DefaultExperiment), (TrainingRuns.RoleOf(Job()), TrainingRuns.ExperimentOf(Job())));
        var trial = Job(labels: [("sweep", "r1-sweep"), ("trial", "r1-sweep-t001")]);
        Assert.Equal((RunRole.Trial, "r1-sweep"), (TrainingRuns.RoleOf(trial), TrainingRuns.ExperimentOf(trial)));
        Assert.Equal(RunRole.Fold, TrainingRuns.RoleOf(trial with { Fold = new CrossValidationFold(0, 3) }));
        var retrain = Job(labels: [("pipelineRun", "r1"), ("pipeline", "loans")]);
        Assert.Equal((RunRole.Retrain, "loans"), (TrainingRuns.RoleOf(retrain), TrainingRuns.ExperimentOf(retrain)));
        var named = Job(labels: [("experiment", "ablation"), ("role", "train"), ("pipelineRun", "r1")]);
        Assert.Equal((RunRole.Train, "ablation"), (TrainingRuns.RoleOf(named), TrainingRuns.ExperimentOf(named)));
    }

    [Fact]
    public void ParamsAreEveryHyperparameterTheModelAndTheDataAndTagsNameThePipelineRun()
    {
        var run = TrainingRuns.Started("r1-sweep-t002", Job(labels: [("sweep", "r1-sweep"), ("trial", "r1-sweep-t002")]), T0);
        Assert.Equal("mlp", run.Params["model"]);
        Assert.Equal("64,32", run.Params["hiddenSizes"]);
        Assert.Equal("0.01", run.Params["learningRate"]);
        Assert.Equal("3", run.Params["epochs"]);
        Assert.Equal("adam", run.Params["optimizer"]);
        Assert.Equal("sha-123", run.Params["dataHash"]);
        Assert.Equal("trial", run.Tags["role"]);
        Assert.Equal("r1", run.Tags["pipelineRun"]);
        Assert.Equal(TrialState.Running, run.Status);
    }

    [Fact]
    public void WritesMergeInAnyOrderAndARedeliveredStartNeverReopensAnEndedRun()
    {
        var start = TrainingRuns.Started("run", Job(), T0);
        var end = TrainingRuns.Finished(start, Result("run", 2) with { OnnxUri = "http://x/model.onnx" }, 1, T0.AddMinutes(1));
        var sweep = new TrackingRun { RunId = "run", Experiment = "Default", Status = TrialState.Failed, Params = new ParameterSet { ["lr"] = "0.1" }, Objective = 0.9, Error = "timed out", StartTime = T0.AddSeconds(-1), EndTime = T0.AddMinutes(2) };

        var (afterEnd, fresh) = TrackingRunMerge.Merge(TrackingRunMerge.Merge(null, start).Run, end);
        Assert.False(fresh);
        Assert.Equal(TrialState.Succeeded, afterEnd.Status);
        Assert.Equal("http://x/model.onnx", afterEnd.Artifacts["onnx"]);
        Assert.Equal("mlp", afterEnd.Params["model"]);

        // The start arriving after the end (redelivered, or raced) keeps the end.
        var (raced, _) = TrackingRunMerge.Merge(TrackingRunMerge.Merge(null, end).Run, start);
        Assert.Equal(TrialState.Succeeded, raced.Status);
        Assert.Equal(2, raced.Metrics.Count);

        // The sweep's view of a trial comes last and wins; nothing earlier is lost.
        var (final, _) = TrackingRunMerge.Merge(afterEnd, sweep);
        Assert.Equal((TrialState.Failed, "timed out", 0.9), (final.Status, final.Error, final.Objective));
        Assert.Equal(("0.1", "mlp"), (final.Params["lr"], final.Params["model"]));
        Assert.Equal(T0.AddSeconds(-1), final.StartTime);
        Assert.Equal(2, final.FinalMetrics.Count(m => m.Key is TrialMetrics.ValAccuracy or TrialMetrics.ParameterCount));

        // A new run under an id whose run had ended starts over.
        var again = start with { StartTime = T0.AddHours(1) };
        var (restarted, isFresh) = TrackingRunMerge.Merge(final, again);
        Assert.True(isFresh);
        Assert.Equal(TrialState.Running, restarted.Status);
    }

    [Fact]
    public void HistoryIsTheUnionOfLiveStepsAndTheRecordedOneAndLatestIsTheLastStepWhileRunning()
    {
        var live = new[] { Step(1, 0.5), Step(2, 0.6), Step(3, 0.7) };
        var history = TrackingRunMerge.History([Step(2, 0.65)], live);
        Assert.Equal([1, 2, 3], history.Select(h => h.Step));
        Assert.Equal(0.65, history[1].Metrics["val_accuracy"]);
        var running = new TrackingRun { RunId = "r", Experiment = "e", Status = TrialState.Running, Params = [], Metrics = history };
        Assert.Equal(0.7, TrackingRunMerge.Latest(running)["val_accuracy"]);
    }

    [Fact]
    public async Task TrainModelRecordsTheStartEachEpochAndTheEndKeyedByItsInstanceId()
    {
        var h = new OrchestrationHarness("train-1");
        var runs = new List<TrackingRun>();
        var steps = new List<TrackRunStepInput>();
        h.On<TrackingRun, bool>(ActivityNames.TrackRun, r => { runs.Add(r); return true; });
        h.On<TrackRunStepInput, bool>(ActivityNames.TrackRunStep, s => { steps.Add(s); return true; });
        h.On<DispatchTrainingInput, DispatchTrainingResult>(ActivityNames.DispatchTraining, _ => new DispatchTrainingResult("queue", "m1"));
        Events(h,
            Progress(1, 1), Progress(1, 2),
            new TrainingEvent { JobId = "job-1", Kind = TrainingEvents.Completed, Result = Result("job-1", 2) with { CheckpointUri = "http://x/ckpt" } });

        var result = await h.RunAsync(c => TrainModel.RunAsync(c, new TrainModelInput(Job(labels: [("pipelineRun", "p1"), ("pipeline", "loans")]))));

        Assert.Equal("job-1", result.JobId);
        Assert.Equal([1, 2], steps.Select(s => s.Step.Step));
        Assert.All(steps, s => Assert.Equal("train-1", s.RunId));
        Assert.Equal(0.92, steps[1].Step.Metrics[TrialMetrics.ValAccuracy], 9);
        Assert.Equal([TrialState.Running, TrialState.Succeeded], runs.Select(r => r.Status));
        Assert.All(runs, r => Assert.Equal(("train-1", RunRole.Retrain, "loans"), (r.RunId, r.Role, r.Experiment)));
        Assert.Equal("http://x/ckpt", runs[1].Artifacts["checkpoint"]);
        Assert.Equal(2, runs[1].Metrics.Count);

        // The end record is the last tracking write, and it comes before the result.
        Assert.Equal(ActivityNames.TrackRun, h.Calls.Last().Name);
        Assert.Equal(ActivityNames.TrackRun, h.Calls.First().Name);
    }

    [Fact]
    public async Task ExhaustedAttemptsEndTheRunFailedWithTheReasonAndTrackingFailuresNeverFailTraining()
    {
        var h = new OrchestrationHarness("train-2");
        var runs = new List<TrackingRun>();
        h.On<TrackingRun, bool>(ActivityNames.TrackRun, r => { runs.Add(r); return true; });
        h.OnAsync<TrackRunStepInput, bool>(ActivityNames.TrackRunStep, _ => Task.FromException<bool>(OrchestrationHarness.Failure(ActivityNames.TrackRunStep, "RequestFailedException", "storage down")));
        h.On<DispatchTrainingInput, DispatchTrainingResult>(ActivityNames.DispatchTraining, _ => new DispatchTrainingResult("queue", "m1"));
        Events(h, Progress(1, 1), new TrainingEvent { JobId = "job-1", Kind = TrainingEvents.Failed, Error = "CUDA out of memory" });

        var failure = await Assert.ThrowsAsync<TrainingFailedException>(() => h.RunAsync(c => TrainModel.RunAsync(c, new TrainModelInput(Job(), MaxAttempts: 1))));

        Assert.Contains("CUDA out of memory", failure.Message);
        Assert.Equal(TrialState.Failed, runs[^1].Status);
        Assert.Equal(failure.Message, runs[^1].Error);
        Assert.Equal(RunRole.Train, runs[^1].Role);
    }

    private static void Events(OrchestrationHarness h, params TrainingEvent[] events)
    {
        var queue = new Queue<TrainingEvent>(events);
        h.Context
            .Setup(c => c.WaitForExternalEvent<TrainingEvent>(TrainingEvents.EventName, It.IsAny<CancellationToken>()))
            .Returns(() => queue.Count > 0 ? Task.FromResult(queue.Dequeue()) : new TaskCompletionSource<TrainingEvent>().Task);
    }

    private static TrainingEvent Progress(int attempt, int epoch) =>
        new() { JobId = "job-1", Kind = TrainingEvents.Progress, Attempt = attempt, Metrics = Metrics(epoch) };

    private static EpochMetrics Metrics(int epoch) => new(epoch, 0.5 / epoch, 0.4 / epoch, 0.9 + (0.01 * epoch), 1000, 1);

    private static MetricStep Step(int step, double accuracy) => new(step, new Dictionary<string, double> { ["val_accuracy"] = accuracy });

    internal static TrainingResult Result(string jobId, int epochs) => new()
    {
        JobId = jobId,
        Model = "mlp",
        Device = "cpu",
        History = Enumerable.Range(1, epochs).Select(Metrics).ToList(),
        ParameterCount = 1234,
    };
}
