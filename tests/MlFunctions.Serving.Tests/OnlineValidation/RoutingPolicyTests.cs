using System.Text.Json;
using MlFunctions.Core.Registry;
using MlFunctions.Serving.Online;
using Xunit.Abstractions;

namespace MlFunctions.Serving.Tests.OnlineValidation;

/// <summary>A clock a test moves by hand (for the feedback window); nothing else in these tests reads a clock.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;
    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>
/// Routing policies end to end through the HTTP handlers, over Azurite: validation, ETags, routing, feedback.
/// "Two hosts" are two dataplanes with their own store clients, sharing only the registry and the container.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class RoutingPolicyTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    private static string InferBody(int i, string? id = null) => JsonSerializer.Serialize(new
    {
        id,
        inputs = new[] { new { name = "input", shape = new[] { 1, 4 }, datatype = "FP32", data = Enumerable.Range(0, 4).Select(j => (float)Math.Sin((i * 0.37) + j)).ToArray() } },
    });

    private async Task<(Harness A, Harness B, ModelVersion Champion, ModelVersion Challenger)> TwoHostsAsync(TimeProvider? clock = null)
    {
        var container = await azurite.NewContainerAsync("serving");
        var registry = new InMemoryModelRegistry();
        var artifacts = new MemoryArtifactStore();
        void Fresh(ServingOptions o) => o.PolicyStateRefreshInterval = o.PolicyRefreshInterval = TimeSpan.Zero;
        var a = new Harness(Fresh, registry: registry, artifacts: artifacts, servingStore: new BlobServingStore(azurite.Service.GetBlobContainerClient(container.Name), clock));
        var b = new Harness(Fresh, registry: registry, artifacts: artifacts, servingStore: new BlobServingStore(azurite.Service.GetBlobContainerClient(container.Name), clock));
        var champion = await a.RegisterAsync("m", OnnxModels.Mlp(seed: 1));
        var challenger = await a.RegisterAsync("m", OnnxModels.Mlp(seed: 2), alias: "challenger");
        return (a, b, champion, challenger);
    }

    private static Task<HttpResult> PutPolicy(Harness h, object policy, IDictionary<string, string>? headers = null) =>
        h.SendAsync("PUT", "api/serving/m/policy", JsonSerializer.Serialize(policy), headers);

    private static Task<HttpResult> Feedback(Harness h, string id, object value) =>
        h.SendAsync("POST", "v2/models/m/feedback", JsonSerializer.Serialize(new Dictionary<string, object> { ["id"] = id, [value is double ? "reward" : "label"] = value }));

    [Fact]
    public async Task An_invalid_policy_gets_400_listing_every_problem()
    {
        var (a, b, _, _) = await TwoHostsAsync();
        await using var _a = a;
        await using var _b = b;
        var r = await PutPolicy(a, new { kind = "canary", weights = new Dictionary<string, double> { ["champion"] = 50, ["ghost"] = 30 } });
        Assert.Equal(400, r.Status);
        output.WriteLine(r.Text);
        var problems = r.Json().RootElement.GetProperty("problems").EnumerateArray().Select(p => p.GetString()!).ToList();
        Assert.Contains(problems, p => p.Contains("sum to 80"));
        Assert.Contains(problems, p => p.Contains("'ghost' is not set"));
        Assert.Equal(2, problems.Count);

        var kind = await PutPolicy(a, new { kind = "roundrobin" });
        Assert.Equal(400, kind.Status);
        Assert.Contains("kind 'roundrobin' is unknown", kind.Json().RootElement.GetProperty("error").GetString());
        var bandit = await PutPolicy(a, new { kind = "bandit", arms = new[] { "champion" }, algorithm = "ucb" });
        Assert.Equal(400, bandit.Status);
        Assert.Equal(2, bandit.Json().RootElement.GetProperty("problems").GetArrayLength());
        Assert.Equal(400, (await a.SendAsync("PUT", "api/serving/m/policy", "{not json")).Status);
        Assert.Equal(404, (await a.SendAsync("PUT", "api/serving/nope/policy", """{"kind":"fixed","alias":"champion"}""")).Status);
        Assert.Equal(404, (await a.SendAsync("GET", "api/serving/m/policy")).Status);
    }

    [Fact]
    public async Task Racing_policy_writes_with_a_stale_etag_get_412()
    {
        var (a, b, _, _) = await TwoHostsAsync();
        await using var _a = a;
        await using var _b = b;
        var policy = new { kind = "fixed", alias = "champion" };
        var first = await PutPolicy(a, policy, new Dictionary<string, string> { ["If-None-Match"] = "*" });
        Assert.Equal(200, first.Status);
        var createAgain = await PutPolicy(b, policy, new Dictionary<string, string> { ["If-None-Match"] = "*" });
        Assert.Equal(412, createAgain.Status);
        string etag = first.Headers["ETag"];
        var moved = await PutPolicy(b, new { kind = "fixed", alias = "challenger" }, new Dictionary<string, string> { ["If-Match"] = etag });
        Assert.Equal(200, moved.Status);
        var stale = await PutPolicy(a, new { kind = "fixed", alias = "champion" }, new Dictionary<string, string> { ["If-Match"] = etag });
        Assert.Equal(412, stale.Status);
        Assert.Equal(412, (await a.SendAsync("DELETE", "api/serving/m/policy", headers: new Dictionary<string, string> { ["If-Match"] = etag })).Status);
        var get = await a.SendAsync("GET", "api/serving/m/policy");
        Assert.Equal("challenger", get.Json().RootElement.GetProperty("policy").GetProperty("policy").GetProperty("alias").GetString());
        Assert.Equal(204, (await a.SendAsync("DELETE", "api/serving/m/policy", headers: new Dictionary<string, string> { ["If-Match"] = get.Headers["ETag"] })).Status);
        Assert.Equal(404, (await a.SendAsync("DELETE", "api/serving/m/policy")).Status);
    }

    [Fact]
    public async Task Canary_splits_by_weight_sticky_per_request_id_and_every_answer_names_its_version()
    {
        var (a, b, champion, challenger) = await TwoHostsAsync();
        await using var _a = a;
        await using var _b = b;
        var plain = await a.SendAsync("POST", "v2/models/m/infer", InferBody(0));
        Assert.Equal(200, plain.Status);
        Assert.Equal(champion.Version.ToString(), plain.Headers["X-Model-Version"]);
        Assert.True(plain.Headers.ContainsKey("X-Request-Id"));
        Assert.Equal(plain.Headers["X-Request-Id"], plain.Json().RootElement.GetProperty("id").GetString());

        Assert.Equal(200, (await PutPolicy(a, new { kind = "canary", weights = new Dictionary<string, double> { ["champion"] = 0.8, ["challenger"] = 0.2 } })).Status);
        int onChallenger = 0;
        const int n = 200;
        for (int i = 0; i < n; i++)
        {
            var headers = new Dictionary<string, string> { ["X-Request-Id"] = $"user-{i}" };
            var ra = await a.SendAsync("POST", "v2/models/m/infer", InferBody(i), headers);
            var rb = await b.SendAsync("POST", "v2/models/m/infer", InferBody(i), headers);
            Assert.Equal(200, ra.Status);
            Assert.Equal(ra.Headers["X-Model-Version"], rb.Headers["X-Model-Version"]); // sticky in every host
            Assert.Equal(ra.Headers["X-Model-Version"], ra.Json().RootElement.GetProperty("model_version").GetString());
            if (ra.Headers["X-Model-Version"] == challenger.Version.ToString())
                onChallenger++;
        }
        output.WriteLine($"canary 80/20: {onChallenger} of {n} request ids on the challenger");
        Assert.InRange(onChallenger, 20, 60); // 40 ± 3σ (σ ≈ 5.7)

        // An explicit version or alias bypasses the policy.
        var pinned = await a.SendAsync("POST", $"v2/models/m/versions/{champion.Version}/infer", InferBody(1), new Dictionary<string, string> { ["X-Request-Id"] = "pinned" });
        Assert.Equal(champion.Version.ToString(), pinned.Headers["X-Model-Version"]);
        Assert.False(pinned.Headers.ContainsKey("X-Model-Alias"));
    }

    [Fact]
    public async Task Feedback_on_another_host_teaches_a_thompson_bandit_and_unknown_duplicate_and_late_ids_get_clear_answers()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var (a, b, _, challenger) = await TwoHostsAsync(clock);
        await using var _a = a;
        await using var _b = b;
        Assert.Equal(200, (await PutPolicy(a, new { kind = "bandit", algorithm = "thompson", arms = new[] { "champion", "challenger" }, seed = 3 })).Status);

        // Host A serves, host B takes the feedback: the challenger is always right, the champion never.
        var late = new List<string>();
        int challengerInLast = 0;
        const int rounds = 60;
        for (int i = 0; i < rounds; i++)
        {
            var served = await a.SendAsync("POST", "v2/models/m/infer", InferBody(i, id: $"r{i}"));
            Assert.Equal(200, served.Status);
            bool isChallenger = served.Headers["X-Model-Version"] == challenger.Version.ToString();
            if (i >= rounds - 20 && isChallenger)
                challengerInLast++;
            if (i % 10 == 9)
            {
                late.Add($"r{i}"); // kept back for the late-feedback check
                continue;
            }
            var fb = await Feedback(b, $"r{i}", isChallenger ? 1.0 : 0.0);
            Assert.Equal(200, fb.Status);
        }
        output.WriteLine($"thompson across two hosts: challenger served {challengerInLast} of the last 20");
        Assert.True(challengerInLast >= 17, $"{challengerInLast}");

        var policy = (await b.SendAsync("GET", "api/serving/m/policy")).Json().RootElement;
        Assert.Equal(rounds - late.Count, policy.GetProperty("state").GetProperty("arms").EnumerateObject().Sum(arm => arm.Value.GetProperty("feedback").GetDouble()));

        var unknown = await Feedback(b, "never-served", 1.0);
        Assert.Equal(404, unknown.Status);
        var duplicate = await Feedback(a, "r0", 1.0);
        Assert.Equal(409, duplicate.Status);
        Assert.Contains("already has feedback", duplicate.Text);
        Assert.Equal(400, (await Feedback(a, "r1", 1.5)).Status);
        Assert.Equal(400, (await a.SendAsync("POST", "v2/models/m/feedback", """{"reward": 1}""")).Status);

        clock.Now += TimeSpan.FromHours(2); // past the default one-hour window
        var expired = await Feedback(b, late[0], 1.0);
        Assert.Equal(410, expired.Status);
        Assert.Contains("window closed", expired.Text);
    }

    [Fact]
    public async Task Label_feedback_is_scored_against_the_prediction_and_an_ab_test_reports_its_verdict()
    {
        var (a, b, _, _) = await TwoHostsAsync();
        await using var _a = a;
        await using var _b = b;
        Assert.Equal(200, (await PutPolicy(a, new { kind = "abtest", weights = new Dictionary<string, double> { ["champion"] = 50, ["challenger"] = 50 } })).Status);
        var served = await a.SendAsync("POST", "v2/models/m/infer", InferBody(5, id: "x1"));
        var scores = served.Json().RootElement.GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToList();
        int predicted = scores.IndexOf(scores.Max());
        var right = await Feedback(b, "x1", predicted);
        Assert.Equal(200, right.Status);
        Assert.Equal(1.0, right.Json().RootElement.GetProperty("reward").GetDouble());
        var test = right.Json().RootElement.GetProperty("test");
        Assert.False(test.GetProperty("significant").GetBoolean()); // one feedback is no evidence
        Assert.Equal(1.0, test.GetProperty("pValue").GetDouble());

        await a.SendAsync("POST", "v2/models/m/infer", InferBody(6, id: "x2"));
        Assert.Equal(400, (await Feedback(b, "x2", "cat")).Status);

        // Replacing the policy starts a new generation: feedback for the old one is late.
        await a.SendAsync("POST", "v2/models/m/infer", InferBody(7, id: "x3"));
        Assert.Equal(200, (await PutPolicy(b, new { kind = "fixed", alias = "champion" })).Status);
        var replaced = await Feedback(a, "x3", 1.0);
        Assert.Equal(410, replaced.Status);
        Assert.Contains("replaced", replaced.Text);
    }
}
