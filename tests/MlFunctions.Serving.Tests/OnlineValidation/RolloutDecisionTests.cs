using System.Text.Json;
using MlFunctions.Activities.Rollouts;
using MlFunctions.Core.OnlineValidation;
using MlFunctions.Serving.Online;

namespace MlFunctions.Serving.Tests.OnlineValidation;

/// <summary>The rollout's pure decision (thresholds, tolerances, minimum samples), its spec checks and the serving statistics it reads.</summary>
public sealed class RolloutDecisionTests
{
    private static readonly RolloutSpec Spec = new() { Challenger = "challenger", HoldSeconds = 60, MaxStageSeconds = 600 };

    private static ArmObservation Arm(string alias, long requests, long errors = 0, double p99 = 10, double feedback = 0, double accuracy = 0.9) =>
        new(alias, alias == "champion" ? 1 : 2, requests, errors, requests > 0 ? p99 : null, feedback, feedback * accuracy);

    private static RolloutObservation Obs(ArmObservation champion, ArmObservation challenger) => new(champion, challenger);

    private static RolloutVerdict At(double seconds, RolloutObservation o, RolloutSpec? spec = null) =>
        RolloutDecision.Evaluate(spec ?? Spec, o, TimeSpan.FromSeconds(seconds));

    [Fact]
    public void An_equal_challenger_holds_until_the_hold_time_then_advances()
    {
        var o = Obs(Arm("champion", 1900, feedback: 1900), Arm("challenger", 100, feedback: 100));
        var early = At(30, o);
        Assert.Equal(RolloutVerdict.Hold, early.Action);
        Assert.Contains("held 30 s of 60 s", early.Reason);
        var done = At(60, o);
        Assert.Equal(RolloutVerdict.Advance, done.Action);
        Assert.All(done.Checks, c => Assert.Equal(RolloutCheck.Pass, c.State));
    }

    [Fact]
    public void A_much_less_accurate_challenger_rolls_back_as_soon_as_both_sides_have_the_minimum_feedback()
    {
        var o = Obs(Arm("champion", 1000, feedback: 1000, accuracy: 0.95), Arm("challenger", 100, feedback: 60, accuracy: 0.5));
        var v = At(5, o);
        Assert.Equal(RolloutVerdict.Rollback, v.Action);
        Assert.Contains("online accuracy 0.5", v.Reason);
        Assert.Equal(RolloutCheck.Fail, v.Checks.Single(c => c.Name == "accuracy").State);

        // Below the minimum (50 feedbacks per side) the same gap only waits.
        var thin = At(5, Obs(Arm("champion", 1000, feedback: 1000, accuracy: 0.95), Arm("challenger", 100, feedback: 40, accuracy: 0.5)));
        Assert.Equal(RolloutVerdict.Hold, thin.Action);
        Assert.Contains("accuracy needs 50 feedbacks per side", thin.Reason);
    }

    [Fact]
    public void A_challenger_within_noise_of_the_champion_is_not_rolled_back()
    {
        // 3 points worse on 100 feedbacks: beyond the 2-point tolerance as a point estimate, but not at 95% confidence.
        var v = At(60, Obs(Arm("champion", 2000, feedback: 1000, accuracy: 0.90), Arm("challenger", 100, feedback: 100, accuracy: 0.87)));
        Assert.Equal(RolloutVerdict.Advance, v.Action);
        // The same gap on 20,000 feedbacks per side is evidence: rolled back.
        var many = At(60, Obs(Arm("champion", 20_000, feedback: 20_000, accuracy: 0.90), Arm("challenger", 20_000, feedback: 20_000, accuracy: 0.87)));
        Assert.Equal(RolloutVerdict.Rollback, many.Action);
    }

    [Fact]
    public void Errors_and_p99_latency_beyond_their_tolerances_roll_back()
    {
        var errors = At(60, Obs(Arm("champion", 2000, errors: 2, feedback: 100), Arm("challenger", 200, errors: 30, feedback: 100)));
        Assert.Equal(RolloutVerdict.Rollback, errors.Action);
        Assert.Contains("error rate 0.15 (30/200)", errors.Reason);

        // Limit 1.5 × 10 + 5 = 20 ms: 19 ms passes, 25 ms fails.
        Assert.Equal(RolloutVerdict.Advance, At(60, Obs(Arm("champion", 2000, feedback: 100), Arm("challenger", 200, p99: 19, feedback: 100))).Action);
        var slow = At(60, Obs(Arm("champion", 2000, feedback: 100), Arm("challenger", 200, p99: 25, feedback: 100)));
        Assert.Equal(RolloutVerdict.Rollback, slow.Action);
        Assert.Contains("limit 20 ms", slow.Reason);
    }

    [Fact]
    public void With_histograms_p99_latency_fails_only_when_clearly_more_than_one_percent_is_over_the_limit()
    {
        static long[] Histogram(params (double Ms, long Count)[] requests)
        {
            var stats = ServingStats.Empty;
            foreach (var (ms, count) in requests)
                for (long i = 0; i < count; i++)
                    stats = stats.Add(ServingStats.One(ms, error: false));
            return stats.LatencyBuckets;
        }

        ArmObservation Side(string alias, params (double Ms, long Count)[] requests)
        {
            var buckets = Histogram(requests);
            var stats = new ServingStats { Requests = buckets.Sum(), LatencyBuckets = buckets };
            return new ArmObservation(alias, alias == "champion" ? 1 : 2, stats.Requests, 0, stats.PercentileMs(0.99), stats.Requests, 0.9 * stats.Requests, buckets);
        }

        var champion = Side("champion", (8, 1900), (10, 100));
        // 30 challenger requests at a 5 % stage, one of them a cold load: its "p99" is that one request, 200 ms, but one
        // in 30 is no evidence that more than 1 % are slow (limit 1.5 × 11 + 5 ms).
        var coldStart = At(60, Obs(champion, Side("challenger", (9, 29), (200, 1))), Spec with { Criteria = new RolloutCriteria { MinRequests = 30, MinFeedback = 30 } });
        Assert.Equal(RolloutVerdict.Advance, coldStart.Action);
        Assert.Contains("1 of 30 challenger requests over the limit", coldStart.Checks.Single(c => c.Name == "p99_latency").Detail);
        Assert.True(coldStart.Checks.Single(c => c.Name == "p99_latency").Challenger > 100);

        var threeSlow = At(60, Obs(champion, Side("challenger", (9, 27), (200, 3))), Spec with { Criteria = new RolloutCriteria { MinRequests = 30, MinFeedback = 30 } });
        Assert.Equal(RolloutVerdict.Rollback, threeSlow.Action);
        Assert.Contains("3 of 30 challenger requests over the limit", threeSlow.Reason);

        // A challenger slower across the board fails; 2 % slow requests in 5,000 is clearly more than 1 % too.
        Assert.Equal(RolloutVerdict.Rollback, At(60, Obs(champion, Side("challenger", (25, 200)))).Action);
        Assert.Equal(RolloutVerdict.Rollback, At(60, Obs(champion, Side("challenger", (9, 4900), (100, 100)))).Action);
        Assert.Equal(RolloutVerdict.Advance, At(60, Obs(champion, Side("challenger", (9, 4960), (100, 40)))).Action);
    }

    [Fact]
    public void A_stage_without_enough_traffic_waits_then_rolls_back_at_its_limit()
    {
        var o = Obs(Arm("champion", 500, feedback: 500), Arm("challenger", 20, feedback: 20));
        Assert.Equal(RolloutVerdict.Hold, At(300, o).Action);
        var limit = At(600, o);
        Assert.Equal(RolloutVerdict.Rollback, limit.Action);
        Assert.Contains("without enough evidence", limit.Reason);
        Assert.Contains("needs 100 requests per side (champion 500, challenger 20)", limit.Reason);
    }

    [Fact]
    public void A_request_hold_counts_the_challengers_requests_and_minimums_of_zero_do_not_wait()
    {
        var spec = new RolloutSpec { Challenger = "challenger", HoldRequests = 50, Criteria = new RolloutCriteria { MinRequests = 0, MinFeedback = 0 } };
        Assert.Null(spec.Hold);
        var v = RolloutDecision.Evaluate(spec, Obs(Arm("champion", 900), Arm("challenger", 49)), TimeSpan.Zero);
        Assert.Equal(RolloutVerdict.Hold, v.Action);
        Assert.Contains("challenger served 49 of 50 requests", v.Reason);
        var go = RolloutDecision.Evaluate(spec, Obs(Arm("champion", 900), Arm("challenger", 50)), TimeSpan.Zero);
        Assert.Equal(RolloutVerdict.Advance, go.Action);
        Assert.Equal(RolloutCheck.Skipped, go.Checks.Single(c => c.Name == "accuracy").State);

        var idle = new RolloutSpec { Challenger = "challenger", HoldSeconds = 1, Criteria = new RolloutCriteria { MinRequests = 0, MinFeedback = 0 } };
        Assert.Equal(RolloutVerdict.Advance, RolloutDecision.Evaluate(idle, Obs(Arm("champion", 0), Arm("challenger", 0)), TimeSpan.FromSeconds(1)).Action);
    }

    [Fact]
    public void A_bad_spec_lists_every_problem()
    {
        var versions = new Dictionary<string, int?> { ["champion"] = 3, ["same"] = 3 };
        var spec = new RolloutSpec
        {
            Challenger = "ghost",
            Stages = [5, 5, 120, 50],
            HoldSeconds = -1,
            HoldRequests = 0,
            PollSeconds = 0,
            Criteria = new RolloutCriteria { MaxLatencyRatio = 0.5, MinFeedback = -1 },
        };
        var problems = spec.Validate(a => versions.GetValueOrDefault(a));
        Assert.Contains(problems, p => p.Contains("challenger alias 'ghost' is not set"));
        Assert.Contains(problems, p => p.Contains("stage 2 (5%) does not exceed stage 1"));
        Assert.Contains(problems, p => p.Contains("stage 3 is 120%"));
        Assert.Contains(problems, p => p.Contains("the last stage is 50%"));
        Assert.Contains(problems, p => p.Contains("holdSeconds is -1"));
        Assert.Contains(problems, p => p.Contains("holdRequests is 0"));
        Assert.Contains(problems, p => p.Contains("pollSeconds is 0"));
        Assert.Contains(problems, p => p.Contains("maxLatencyRatio is 0.5"));
        Assert.Contains(problems, p => p.Contains("minFeedback is -1"));
        Assert.Contains(problems, p => p.Contains("stage 4 (50%) does not exceed stage 3"));
        Assert.Equal(10, problems.Count);

        Assert.Contains(new RolloutSpec().Validate(_ => 1), p => p.Contains("'challenger' (the alias to roll out) is required"));
        Assert.Contains(new RolloutSpec { Challenger = "same" }.Validate(a => versions.GetValueOrDefault(a)), p => p.Contains("both point at version 3"));
        Assert.Empty(new RolloutSpec { Challenger = "challenger" }.Validate(a => a == "champion" ? 1 : 2));
    }

    [Fact]
    public void Latency_histograms_merge_by_addition_and_read_percentiles_within_ten_percent()
    {
        var rng = new Random(3);
        var latencies = Enumerable.Range(0, 5000).Select(_ => Math.Exp(rng.NextDouble() * 6)).ToList(); // 1 ms to 400 ms
        var a = latencies.Take(2500).Aggregate(ServingStats.Empty, (s, l) => s.Add(ServingStats.One(l, false)));
        var b = latencies.Skip(2500).Aggregate(ServingStats.Empty, (s, l) => s.Add(ServingStats.One(l, l > 300)));
        var ab = a.Add(b);
        Assert.Equal(ab.LatencyBuckets, b.Add(a).LatencyBuckets);
        Assert.Equal(5000, ab.Requests);
        Assert.Equal(latencies.Skip(2500).Count(l => l > 300), ab.Errors);
        double exact = latencies.Order().ElementAt((int)Math.Ceiling(0.99 * 5000) - 1);
        double p99 = ab.PercentileMs(0.99)!.Value;
        Assert.InRange(p99, exact, exact * ServingStats.Growth);
        Assert.Null(ServingStats.Empty.PercentileMs(0.99));
        var json = JsonSerializer.Deserialize<ServingStats>(JsonSerializer.Serialize(ab))!;
        Assert.Equal(ab.LatencyBuckets, json.LatencyBuckets);
    }
}

/// <summary>Routed requests' counts, errors and latencies reach the generation's statistics blob, and the rollout's activities read and set them.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class RolloutServingStatsTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Routed_requests_are_counted_per_alias_under_their_generation_and_read_back_by_the_rollout_activity()
    {
        var container = await azurite.NewContainerAsync("serving");
        var store = new BlobServingStore(azurite.Service.GetBlobContainerClient(container.Name));
        await using var h = new Harness(o => o.PolicyRefreshInterval = TimeSpan.Zero, servingStore: store);
        await h.RegisterAsync("m", OnnxModels.Mlp(seed: 1));
        await h.RegisterAsync("m", OnnxModels.Mlp(seed: 2), alias: "challenger");

        var set = new SetRoutingPolicyActivity(store, h.Router);
        var canary = new RoutingPolicy { Kind = RoutingPolicy.Canary, Weights = new Dictionary<string, double> { ["champion"] = 50, ["challenger"] = 50 } };
        var call = new Activities.ActivityCall("SetRoutingPolicy", "test", CancellationToken.None);
        var generation = (await set.RunAsync(new SetRoutingPolicyInput("m", canary), call)).Generation;
        // Idempotent: the same policy again (weights in another order) keeps the generation, so a retry keeps the stage's numbers.
        var again = canary with { Weights = new Dictionary<string, double> { ["challenger"] = 50, ["champion"] = 50 } };
        Assert.Equal(generation, (await set.RunAsync(new SetRoutingPolicyInput("m", again), call)).Generation);

        var body = JsonSerializer.Serialize(new { inputs = new[] { new { name = "input", shape = new[] { 1, 4 }, datatype = "FP32", data = new float[] { 1, 2, 3, 4 } } } });
        var bad = JsonSerializer.Serialize(new { inputs = new[] { new { name = "input", shape = new[] { 1, 3 }, datatype = "FP32", data = new float[] { 1, 2, 3 } } } });
        for (int i = 0; i < 40; i++)
            Assert.Equal(200, (await h.SendAsync("POST", "v2/models/m/infer", body, new Dictionary<string, string> { ["X-Request-Id"] = $"r{i}" })).Status);
        Assert.Equal(400, (await h.SendAsync("POST", "v2/models/m/infer", bad)).Status); // the caller's mistake: no error counted
        await h.Router!.FlushStatsAsync();

        var stats = await store.GetStatsAsync("m", generation);
        Assert.Equal(40, stats.Alias("champion").Requests + stats.Alias("challenger").Requests);
        Assert.True(stats.Alias("champion").Requests > 5 && stats.Alias("challenger").Requests > 5);
        Assert.Equal(0, stats.Alias("champion").Errors + stats.Alias("challenger").Errors);

        var read = new ReadRolloutStatsActivity(store);
        var o = await read.RunAsync(new ReadRolloutStatsInput("m", generation, "champion", 1, "challenger", 2), call);
        Assert.Equal(stats.Alias("challenger").Requests, o.Challenger.Requests);
        Assert.NotNull(o.Challenger.P99Ms);
        Assert.Equal(0, o.Champion.Feedback);
    }
}
