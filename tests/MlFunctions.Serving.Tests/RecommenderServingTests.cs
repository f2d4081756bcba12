using System.Text.Json;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Serving.Tests;

/// <summary>#13's serving contract: raw customer id in, top-k item ids and scores out, computed by the server over the full catalogue.</summary>
public sealed class RecommenderServingTests
{
    private const int Dim = 3;
    private static readonly string[] Users = ["12346", "17850", "99999"];
    private static readonly string[] Items = ["10002", "20725", "22111", "84879", "85123A", "POST", "71053"];

    private static (float[] U, float[] V) Factors()
    {
        var rng = new Random(4);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        return (R(Users.Length * Dim), R(Items.Length * Dim));
    }

    private static InteractionTransform Transform() => new()
    {
        Users = Users,
        Items = Items,
        Seen = [[0, 4], [1], [2, 3, 5]],
        Popular = [4, 6, 1, 0],
    };

    private static async Task<Harness> ServeAsync()
    {
        var h = new Harness();
        var (u, v) = Factors();
        await h.RegisterAsync("recommender", OnnxModels.DotProductRecommender(u, v, Dim), transform: new TransformSpec { Kind = TransformSpec.InteractionsKind, Interactions = Transform() });
        return h;
    }

    private static string Body(object user, string userType = "BYTES", int? k = null)
    {
        var inputs = new List<object> { new { name = "user", shape = new[] { 1 }, datatype = userType, data = new[] { user } } };
        if (k is { } kk)
            inputs.Add(new { name = "k", shape = new[] { 1 }, datatype = "INT64", data = new[] { kk } });
        return JsonSerializer.Serialize(new { inputs });
    }

    private static (string[] Items, float[] Scores, bool Fallback) Read(JsonDocument doc)
    {
        var outputs = doc.RootElement.GetProperty("outputs").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!);
        return (
            outputs["items"].GetProperty("data").EnumerateArray().Select(e => e.GetString()!).ToArray(),
            outputs["scores"].GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray(),
            outputs["fallback"].GetProperty("data")[0].GetBoolean());
    }

    private static string Error(HttpResult r)
    {
        using var doc = r.Json();
        return doc.RootElement.GetProperty("error").GetString()!;
    }

    [Fact]
    public async Task Served_top_k_equals_the_offline_ranking_with_seen_items_excluded()
    {
        await using var h = await ServeAsync();
        var (u, v) = Factors();
        var transform = Transform();
        for (var user = 0; user < Users.Length; user++)
        {
            var scores = Enumerable.Range(0, Items.Length).Select(i => Enumerable.Range(0, Dim).Sum(d => u[(user * Dim) + d] * v[(i * Dim) + d])).ToArray();
            var expected = RankingMetrics.TopK(scores, transform.Seen[user].ToHashSet(), 3);
            var r = await h.SendAsync("POST", "v2/models/recommender/infer", Body(Users[user], k: 3));
            Assert.Equal(200, r.Status);
            using var doc = r.Json();
            var (items, served, fallback) = Read(doc);
            Assert.False(fallback);
            Assert.Equal(expected.Select(e => Items[e.Item]), items);
            Assert.All(items, id => Assert.DoesNotContain(Array.IndexOf(Items, id), transform.Seen[user]));
            for (var j = 0; j < 3; j++)
                Assert.True(Math.Abs(expected[j].Score - served[j]) <= 1e-5, $"user {Users[user]} rank {j}: {expected[j].Score} vs {served[j]}");
        }
    }

    [Fact]
    public async Task Unknown_customer_gets_popular_items_flagged_as_fallback()
    {
        await using var h = await ServeAsync();
        var r = await h.SendAsync("POST", "v2/models/recommender/infer", Body("00000", k: 3));
        Assert.Equal(200, r.Status);
        using var doc = r.Json();
        var (items, _, fallback) = Read(doc);
        Assert.True(fallback);
        Assert.Equal(["85123A", "71053", "20725"], items);
    }

    [Fact]
    public async Task Bad_id_type_and_k_above_the_catalogue_are_clear_400s()
    {
        await using var h = await ServeAsync();
        var numeric = await h.SendAsync("POST", "v2/models/recommender/infer", Body(17850, "INT64"));
        Assert.Equal(400, numeric.Status);
        Assert.Contains("must be BYTES", Error(numeric));

        var tooMany = await h.SendAsync("POST", "v2/models/recommender/infer", Body("17850", k: Items.Length + 1));
        Assert.Equal(400, tooMany.Status);
        Assert.Contains($"catalogue's {Items.Length} items", Error(tooMany));

        var missing = await h.SendAsync("POST", "v2/models/recommender/infer", JsonSerializer.Serialize(new { inputs = new[] { new { name = "k", shape = new[] { 1 }, datatype = "INT64", data = new[] { 3 } } } }));
        Assert.Equal(400, missing.Status);
        Assert.Contains("Missing input 'user'", Error(missing));

        // The metadata shows the raw-id contract, not the internal (user, item) pairs.
        var metadata = await h.SendAsync("GET", "v2/models/recommender");
        Assert.Equal(200, metadata.Status);
        Assert.Contains("\"user\"", metadata.Text);
    }
}
