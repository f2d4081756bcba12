using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Pipelines;
using MlFunctions.Orchestrations.Pipelines;
using Xunit;

namespace MlFunctions.Tests.Pipelines;

/// <summary>The pipeline step SDK on a mocked orchestration context (see <see cref="OrchestrationHarness"/>).</summary>
public sealed class PipelineRunTests
{
    private const string TrainActivity = "T_Train";
    private const string EvaluateActivity = "T_Evaluate";
    private const string NotifyActivity = "T_Notify";
    private const string TuneOrchestration = "T_Tune";

    private const string DatasetHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    /// <summary>Keyed on the dataset's content and the parameters; the dataset's blob path is deliberately left out.</summary>
    private static readonly PipelineStep<TrainInput, TrainOutput> Train =
        PipelineStep<TrainInput, TrainOutput>.Activity("train", "v1", TrainActivity, i => new { dataset = i.DatasetHash, i.LearningRate });

    private static readonly PipelineStep<TrainOutput, double> Evaluate =
        PipelineStep<TrainOutput, double>.Activity("evaluate", "v1", EvaluateActivity, m => new { model = m.ModelHash });

    private static readonly PipelineStep<PipelineFailure?, bool> Notify =
        PipelineStep<PipelineFailure?, bool>.Activity("notify", "v1", NotifyActivity, f => f);

    private static readonly PipelineStep<int, int> Tune =
        PipelineStep<int, int>.SubOrchestration("tune", "v1", TuneOrchestration, n => new { n });

    private static TrainInput Input(string hash = DatasetHash, string path = "datasets/mnist/v1") => new(path, hash, 0.01);

    private static OrchestrationHarness Harness()
    {
        var h = new OrchestrationHarness();
        h.On<TrainInput, TrainOutput>(TrainActivity, i =>
        {
            h.Now += TimeSpan.FromMinutes(3); // the activity takes time on the orchestration clock
            return new TrainOutput($"models/{i.DatasetHash[..8]}.onnx", "m-" + i.DatasetHash[..8], 0.97);
        });
        h.On<TrainOutput, double>(EvaluateActivity, m => m.Accuracy - 0.01);
        return h;
    }

    private static Task<TrainOutput> RunTrain(OrchestrationHarness h, string runId, TrainInput input, StepOptions? options = null, PipelineRunOptions? runOptions = null)
    {
        h.InstanceId = runId;
        return h.RunAsync(ctx => PipelineRun.Start(ctx, runOptions).StepAsync(Train, input, options));
    }

    [Fact]
    public async Task Unchanged_content_is_a_cache_hit_and_the_step_runs_once()
    {
        var h = Harness();
        var first = await RunTrain(h, "run-1", Input());
        var second = await RunTrain(h, "run-2", Input());

        Assert.Equal(first, second);
        Assert.Equal(1, h.CallsTo(TrainActivity));
        Assert.Equal(2, h.CallsTo(ActivityNames.LookupStepCache));
        Assert.Equal(1, h.CallsTo(ActivityNames.StoreStepCache));

        var (executed, cached) = (h.Persisted[0], h.Persisted[1]);
        Assert.False(executed.Cached);
        Assert.Equal(1, executed.Attempts);
        Assert.True(cached.Cached);
        Assert.Equal("run-2", cached.RunId);
        Assert.Equal("run-1", cached.CachedFromRunId);
        Assert.Equal(0, cached.Attempts);
        Assert.Equal(executed.CacheKey, cached.CacheKey);
        Assert.Equal(executed.OutputDigest, cached.OutputDigest);
        Assert.Equal(ContentDigest.Of(first), cached.OutputDigest);
    }

    [Fact]
    public async Task One_changed_byte_of_dataset_content_is_a_miss()
    {
        var h = Harness();
        await RunTrain(h, "run-1", Input());
        var changed = DatasetHash[..^1] + (DatasetHash[^1] == '8' ? '9' : '8');
        await RunTrain(h, "run-2", Input(hash: changed));

        Assert.Equal(2, h.CallsTo(TrainActivity));
        Assert.NotEqual(h.Persisted[0].CacheKey, h.Persisted[1].CacheKey);
        Assert.False(h.Persisted[1].Cached);

        // Lineage says which input changed: the dataset digest differs, the learning rate's does not.
        Assert.NotEqual(h.Persisted[0].Inputs["dataset"], h.Persisted[1].Inputs["dataset"]);
        Assert.Equal(h.Persisted[0].Inputs["learningRate"], h.Persisted[1].Inputs["learningRate"]);
    }

    [Fact]
    public async Task A_new_artifact_path_with_the_same_content_keeps_the_key()
    {
        var h = Harness();
        await RunTrain(h, "run-1", Input(path: "datasets/mnist/v1"));
        await RunTrain(h, "run-2", Input(path: "uploads/renamed-copy"));

        Assert.Equal(1, h.CallsTo(TrainActivity));
        Assert.Equal(h.Persisted[0].CacheKey, h.Persisted[1].CacheKey);
        Assert.True(h.Persisted[1].Cached);
    }

    [Fact]
    public async Task A_new_code_version_is_a_miss()
    {
        var h = Harness();
        await RunTrain(h, "run-1", Input());
        var trainV2 = PipelineStep<TrainInput, TrainOutput>.Activity("train", "v2", TrainActivity, i => new { dataset = i.DatasetHash, i.LearningRate });
        h.InstanceId = "run-2";
        await h.RunAsync(ctx => PipelineRun.Start(ctx).StepAsync(trainV2, Input()));

        Assert.Equal(2, h.CallsTo(TrainActivity));
        Assert.NotEqual(h.Persisted[0].CacheKey, h.Persisted[1].CacheKey);
    }

    [Fact]
    public async Task An_entry_older_than_max_staleness_is_a_miss()
    {
        var h = Harness();
        await RunTrain(h, "run-1", Input());
        h.Now += TimeSpan.FromHours(2);

        await RunTrain(h, "run-2", Input(), new StepOptions { MaxStaleness = TimeSpan.FromHours(3) });
        Assert.Equal(1, h.CallsTo(TrainActivity));

        // The run's default applies to steps without their own; run-3 re-executes and refreshes the entry.
        await RunTrain(h, "run-3", Input(), runOptions: new PipelineRunOptions { MaxStaleness = TimeSpan.FromHours(1) });
        Assert.Equal(2, h.CallsTo(TrainActivity));
        Assert.False(h.Persisted[2].Cached);

        await RunTrain(h, "run-4", Input(), runOptions: new PipelineRunOptions { MaxStaleness = TimeSpan.FromHours(1) });
        Assert.Equal(2, h.CallsTo(TrainActivity));
        Assert.Equal("run-3", h.Persisted[3].CachedFromRunId);
    }

    [Fact]
    public async Task Caching_off_for_a_step_neither_reads_nor_writes_the_cache()
    {
        var h = Harness();
        await RunTrain(h, "run-1", Input());
        await RunTrain(h, "run-2", Input(), new StepOptions { Cache = false });

        Assert.Equal(2, h.CallsTo(TrainActivity));
        Assert.Equal(1, h.CallsTo(ActivityNames.LookupStepCache));
        Assert.Equal(1, h.CallsTo(ActivityNames.StoreStepCache));
        Assert.False(h.Persisted[1].Cached);
        Assert.Equal("run-1", h.Cache.Single().Value.RunId);
    }

    [Fact]
    public async Task Caching_off_for_the_run_wins_over_a_step_that_asks_for_it()
    {
        var h = Harness();
        var off = new PipelineRunOptions { Caching = false };
        await RunTrain(h, "run-1", Input(), new StepOptions { Cache = true }, off);
        await RunTrain(h, "run-2", Input(), new StepOptions { Cache = true }, off);

        Assert.Equal(2, h.CallsTo(TrainActivity));
        Assert.Equal(0, h.CallsTo(ActivityNames.LookupStepCache));
        Assert.Equal(0, h.CallsTo(ActivityNames.StoreStepCache));
        Assert.Empty(h.Cache);
    }

    [Fact]
    public async Task Failed_attempts_are_retried_with_exponential_backoff_and_counted()
    {
        var h = new OrchestrationHarness();
        var calls = 0;
        h.On<TrainInput, TrainOutput>(TrainActivity, _ =>
            ++calls < 3 ? throw OrchestrationHarness.Failure(TrainActivity, "System.IO.IOException", "blob read reset") : new TrainOutput("m", "h", 0.9));
        var start = h.Now;
        var options = new StepOptions { MaxAttempts = 4, FirstRetryInterval = TimeSpan.FromSeconds(10), BackoffCoefficient = 3, MaxRetryInterval = TimeSpan.FromSeconds(20) };

        await RunTrain(h, "run-1", Input(), options);

        Assert.Equal(3, calls);
        Assert.Equal([start.AddSeconds(10), start.AddSeconds(30)], h.Timers); // 10 s, then 30 s capped at 20 s
        var record = Assert.Single(h.Persisted);
        Assert.Equal(3, record.Attempts);
        Assert.Equal(StepStatus.Succeeded, record.Status);
        Assert.Equal(start.AddSeconds(30), record.EndedAt);
    }

    [Theory]
    [InlineData("System.IO.InvalidDataException")]
    [InlineData("MlFunctions.Core.Datasets.DatasetValidationException")]
    [InlineData("System.ArgumentException")]
    public async Task Bad_input_fails_at_once_without_retries(string errorType)
    {
        var h = new OrchestrationHarness();
        h.On<TrainInput, TrainOutput>(TrainActivity, _ => throw OrchestrationHarness.Failure(TrainActivity, errorType, "label column 'y' has a single class"));
        var start = h.Now;

        var e = await Assert.ThrowsAsync<PipelineStepFailedException>(() => RunTrain(h, "run-1", Input(), new StepOptions { MaxAttempts = 3 }));

        Assert.Equal(1, e.Attempts);
        Assert.Equal(1, h.CallsTo(TrainActivity));
        Assert.Equal(start, h.Now); // no backoff waited
        Assert.Equal($"{errorType}: label column 'y' has a single class", e.Reason);
    }

    [Fact]
    public async Task Exhausted_attempts_fail_with_the_step_and_reason_after_recording_the_failure()
    {
        var h = new OrchestrationHarness();
        h.On<TrainInput, TrainOutput>(TrainActivity, _ => throw OrchestrationHarness.Failure(TrainActivity, "System.InvalidOperationException", "CUDA out of memory"));

        var e = await Assert.ThrowsAsync<PipelineStepFailedException>(() => RunTrain(h, "run-1", Input(), new StepOptions { MaxAttempts = 2, FirstRetryInterval = TimeSpan.FromSeconds(1) }));

        Assert.Equal("train", e.Step);
        Assert.Equal(2, e.Attempts);
        Assert.Equal("System.InvalidOperationException: CUDA out of memory", e.Reason);
        Assert.Equal("CUDA out of memory", e.Failure!.ErrorMessage);
        Assert.Equal(2, h.CallsTo(TrainActivity));
        Assert.Equal(0, h.CallsTo(ActivityNames.StoreStepCache)); // a failure is never cached
        var record = Assert.Single(h.Persisted);
        Assert.Equal(StepStatus.Failed, record.Status);
        Assert.Equal(2, record.Attempts);
        Assert.Equal(e.Reason, record.Error);
        Assert.Null(record.OutputDigest);
    }

    [Fact]
    public async Task A_child_orchestration_past_its_step_deadline_is_terminated()
    {
        var h = new OrchestrationHarness();
        h.OnAsync<int, int>(TuneOrchestration, _ => new TaskCompletionSource<int>().Task); // never answers
        var terminated = new List<TerminateInstanceInput>();
        h.On<TerminateInstanceInput, bool>(ActivityNames.TerminateInstance, i =>
        {
            terminated.Add(i);
            return true;
        });

        await Assert.ThrowsAsync<PipelineStepTimeoutException>(() => h.RunAsync(ctx =>
            PipelineRun.Start(ctx).StepAsync(Tune, 3, new StepOptions { Timeout = TimeSpan.FromMinutes(10), InstanceId = "run-1-tune" })));

        // The child was started under the id the step named, and that instance is what got terminated.
        var child = h.Calls.Single(c => c.Name == TuneOrchestration);
        Assert.Equal("run-1-tune", ((SubOrchestrationOptions)child.Options!).InstanceId);
        var t = Assert.Single(terminated);
        Assert.Equal("run-1-tune", t.InstanceId);
        Assert.Contains("timed out after 00:10:00", t.Reason);
    }

    [Fact]
    public async Task A_step_still_running_at_its_timeout_fails_with_a_typed_timeout()
    {
        var h = new OrchestrationHarness();
        h.OnAsync<TrainInput, TrainOutput>(TrainActivity, _ => new TaskCompletionSource<TrainOutput>().Task); // never answers
        var start = h.Now;

        var e = await Assert.ThrowsAsync<PipelineStepTimeoutException>(() => RunTrain(h, "run-1", Input(), new StepOptions { Timeout = TimeSpan.FromMinutes(30) }));

        Assert.Equal("train", e.Step);
        Assert.Equal(TimeSpan.FromMinutes(30), e.Timeout);
        Assert.Contains("step 'train'", e.Message);
        Assert.Contains("timed out after 00:30:00", e.Message);
        Assert.Equal(start.AddMinutes(30), h.Now);
        var record = Assert.Single(h.Persisted);
        Assert.Equal(StepStatus.Failed, record.Status);
        Assert.Equal(start.AddMinutes(30), record.EndedAt);
    }

    [Fact]
    public async Task A_step_that_answers_before_its_timeout_cancels_the_deadline_timer()
    {
        var h = Harness();
        var start = h.Now;
        await RunTrain(h, "run-1", Input(), new StepOptions { Timeout = TimeSpan.FromMinutes(30) });

        Assert.Equal([start.AddMinutes(30)], h.Timers);
        Assert.Equal(start.AddMinutes(3), h.Now); // the timer was cancelled, not fired
        Assert.Equal(StepStatus.Succeeded, h.Persisted.Single().Status);
    }

    [Fact]
    public async Task A_retry_that_could_only_start_after_the_deadline_fails_at_the_deadline()
    {
        var h = new OrchestrationHarness();
        h.On<TrainInput, TrainOutput>(TrainActivity, _ => throw OrchestrationHarness.Failure(TrainActivity, "System.Exception", "flaky"));
        var start = h.Now;

        var e = await Assert.ThrowsAsync<PipelineStepTimeoutException>(() =>
            RunTrain(h, "run-1", Input(), new StepOptions { MaxAttempts = 5, FirstRetryInterval = TimeSpan.FromMinutes(2), Timeout = TimeSpan.FromSeconds(90) }));

        Assert.Equal(1, e.Attempts);
        Assert.Equal(start.AddSeconds(90), h.Now);
        Assert.Equal(1, h.CallsTo(TrainActivity));
    }

    [Fact]
    public async Task The_exit_handler_runs_after_a_failure_sees_it_and_the_failure_is_rethrown()
    {
        var h = Harness();
        h.On<TrainOutput, double>(EvaluateActivity, _ => throw OrchestrationHarness.Failure(EvaluateActivity, "System.IO.InvalidDataException", "test split is empty"));
        PipelineFailure? seen = null;
        h.On<PipelineFailure?, bool>(NotifyActivity, f =>
        {
            seen = f;
            return true;
        });

        var e = await Assert.ThrowsAsync<PipelineStepFailedException>(() => h.RunAsync(ctx =>
        {
            var run = PipelineRun.Start(ctx);
            return run.RunWithExitHandlerAsync(
                async () => await run.StepAsync(Evaluate, await run.StepAsync(Train, Input())),
                failure => run.StepAsync(Notify, failure));
        }));

        Assert.Equal("evaluate", e.Step);
        Assert.Equal(new PipelineFailure("evaluate", "System.IO.InvalidDataException: test split is empty"), seen);
        Assert.Equal(["train", "evaluate", "notify"], h.Persisted.Select(r => r.Step));
        Assert.Equal([StepStatus.Succeeded, StepStatus.Failed, StepStatus.Succeeded], h.Persisted.Select(r => r.Status));
    }

    [Fact]
    public async Task The_exit_handler_runs_after_success_with_no_failure()
    {
        var h = Harness();
        var notified = new List<PipelineFailure?>();
        h.On<PipelineFailure?, bool>(NotifyActivity, f =>
        {
            notified.Add(f);
            return true;
        });

        var accuracy = await h.RunAsync(ctx =>
        {
            var run = PipelineRun.Start(ctx);
            return run.RunWithExitHandlerAsync(
                async () => await run.StepAsync(Evaluate, await run.StepAsync(Train, Input())),
                failure => run.StepAsync(Notify, failure, new StepOptions { Cache = false }));
        });

        Assert.Equal(0.96, accuracy, 6);
        Assert.Equal([null], notified);
        Assert.Equal("notify", h.Persisted[^1].Step);
    }

    [Fact]
    public async Task A_failing_exit_handler_does_not_mask_the_bodys_failure()
    {
        var h = Harness();
        h.On<TrainInput, TrainOutput>(TrainActivity, _ => throw OrchestrationHarness.Failure(TrainActivity, "System.Exception", "bad data"));
        h.On<PipelineFailure?, bool>(NotifyActivity, _ => throw OrchestrationHarness.Failure(NotifyActivity, "System.Exception", "mail server down"));

        var e = await Assert.ThrowsAsync<PipelineStepFailedException>(() => h.RunAsync(ctx =>
        {
            var run = PipelineRun.Start(ctx);
            return run.RunWithExitHandlerAsync(() => run.StepAsync(Train, Input()), failure => run.StepAsync(Notify, failure));
        }));

        Assert.Equal("train", e.Step);
        Assert.Equal([StepStatus.Failed, StepStatus.Failed], h.Persisted.Select(r => r.Status));
    }

    [Fact]
    public async Task Lineage_records_order_timing_digests_cache_flags_and_skips()
    {
        var h = Harness();
        h.On<int, int>(TuneOrchestration, n =>
        {
            h.Now += TimeSpan.FromMinutes(n);
            return n * 10;
        });
        await RunTrain(h, "run-0", Input()); // warms the cache for the train step
        h.Persisted.Clear();
        h.InstanceId = "run-1";
        var t0 = h.Now;

        var (summary, lineage) = await h.RunAsync(async ctx =>
        {
            var run = PipelineRun.Start(ctx);
            var model = await run.StepAsync(Train, Input());
            await run.StepAsync(Evaluate, model);

            // Fan-out: sequence numbers are taken in call order, whatever order the branches end in.
            await Task.WhenAll(run.StepAsync(Tune, 2), run.StepAsync(Tune, 1));
            if (model.Accuracy < 0.5)
            {
                await run.StepAsync(Notify, null);
            }
            else
            {
                await run.SkipAsync(Notify, "accuracy above the alert threshold");
            }

            return (run.Summary(), run.Lineage);
        });

        // What was persisted is what the run holds (records compared as stored JSON: their dictionaries compare by reference).
        Assert.Equal(h.Persisted.OrderBy(r => r.Sequence).Select(r => ContentDigest.CanonicalJson(r)), lineage.Select(r => ContentDigest.CanonicalJson(r)));
        Assert.Equal([1, 2, 3, 4, 5], lineage.Select(r => r.Sequence));
        Assert.Equal(["train", "evaluate", "tune", "tune", "notify"], lineage.Select(r => r.Step));
        Assert.All(lineage, r => Assert.Equal("run-1", r.RunId));
        Assert.Equal(["orchestration", "orchestration"], h.Calls.Where(c => c.Name == TuneOrchestration).Select(c => c.Kind));

        var (train, evaluate, tune2, tune1, notify) = (lineage[0], lineage[1], lineage[2], lineage[3], lineage[4]);
        Assert.True(train.Cached);
        Assert.Equal("run-0", train.CachedFromRunId);
        Assert.Equal(t0, train.StartedAt);
        Assert.Equal(t0, train.EndedAt); // served from the cache: no time on the clock

        Assert.False(evaluate.Cached);
        Assert.Equal(["model"], evaluate.Inputs.Keys);
        Assert.Equal(ContentDigest.Of("m-9f86d081"), evaluate.Inputs["model"]);
        Assert.Equal(ContentDigest.Of(0.96), evaluate.OutputDigest);
        Assert.Equal(StepFingerprint.Compute("evaluate", "v1", new { model = "m-9f86d081" }).CacheKey, evaluate.CacheKey);

        Assert.Equal(ContentDigest.Of(20), tune2.OutputDigest);
        Assert.Equal(tune2.StartedAt + TimeSpan.FromMinutes(2), tune2.EndedAt);
        Assert.Equal(ContentDigest.Of(10), tune1.OutputDigest);

        Assert.Equal(StepStatus.Skipped, notify.Status);
        Assert.Equal("accuracy above the alert threshold", notify.Error);
        Assert.Null(notify.CacheKey);
        Assert.Equal(0, h.CallsTo(NotifyActivity));

        Assert.Equal((3, 1, 1, 0), (summary.Executed, summary.Cached, summary.Skipped, summary.Failed));
        Assert.Equal(t0, summary.StartedAt);
        Assert.Equal(h.Now, summary.EndedAt);
    }

    [Fact]
    public void The_key_depends_on_content_not_on_member_order()
    {
        var a = StepFingerprint.Compute("s", "v1", new Dictionary<string, object> { ["b"] = 2, ["a"] = new[] { 1.5, 2.0 } });
        var b = StepFingerprint.Compute("s", "v1", new { a = new[] { 1.5, 2.0 }, b = 2 });
        var c = StepFingerprint.Compute("s", "v1", new { a = new[] { 2.0, 1.5 }, b = 2 });

        Assert.Equal(a, b with { Inputs = a.Inputs });
        Assert.Equal(a.Inputs, b.Inputs);
        Assert.NotEqual(a.CacheKey, c.CacheKey); // array order is content
        Assert.Matches("^[0-9a-f]{64}$", a.CacheKey);
    }

    [Fact]
    public void Invalid_step_names_and_options_are_rejected_up_front()
    {
        Assert.Throws<ArgumentException>(() => PipelineStep<int, int>.Activity("a/b", "v1", "x", i => i));
        Assert.Throws<ArgumentException>(() => PipelineStep<int, int>.Activity("ok", " ", "x", i => i));
        var h = Harness();
        var e = Assert.Throws<ArgumentException>(() => PipelineRun.Start(h.Object, new PipelineRunOptions { StepDefaults = new StepOptions { MaxAttempts = 0 } }));
        Assert.Contains("maxAttempts must be at least 1, got 0", e.Message);
    }

    public sealed record TrainInput(string DatasetPath, string DatasetHash, double LearningRate);

    public sealed record TrainOutput(string ModelPath, string ModelHash, double Accuracy);
}
