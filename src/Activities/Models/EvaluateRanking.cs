using MlFunctions.Activities.Datasets;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Recommenders;
using MlFunctions.Core.Transforms;
using MlFunctions.Serving;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Activities.Models;

/// <summary>
/// Scores a recommender on a held-out split through the serving path: each held-out user's raw id goes in as a V2
/// request would carry it, the server answers its top items over the full catalogue (seen items excluded), and
/// HR@k / NDCG@k (k = 5, 10, 20) come from <see cref="RankingMetrics"/>. The baselines an engineer tries first
/// (most popular, item-kNN cosine, implicit ALS) are fitted on train+val and scored on the same split, and reported
/// as <c>pop_hr@10</c>, <c>knn_hr@10</c>, <c>als_hr@10</c> (and their NDCG) beside the model.
/// </summary>
public static class EvaluateRanking
{
    public static readonly int[] Ks = [5, 10, 20];
    private const int UsersPerRequest = 64;

    public static async Task<EvaluateModelResult> RunAsync(PreparedDatasetReader reader, PreparedDatasetManifest manifest, EvaluateModelInput input, ModelScorer scorer, CancellationToken ct)
    {
        var ids = manifest.Transform.Interactions ?? throw new InvalidDataException("ranking data without an interactions transform");
        var users = ids.UserMap();
        var items = ids.ItemMap();
        var train = new List<(int User, int Item, float Weight)>();
        foreach (var name in new[] { PreparedLayout.Train, PreparedLayout.Val })
            train.AddRange(Rows(await reader.ReadSplitAsync(input.Data, manifest, name, ct)));
        var heldOut = Rows(await reader.ReadSplitAsync(input.Data, manifest, input.Split, ct)).Select(r => (r.User, r.Item)).ToList();
        if (input.MaxSamples > 0)
            heldOut = heldOut.Take(input.MaxSamples).ToList();
        if (heldOut.Count == 0)
            throw new InvalidOperationException($"Split '{input.Split}' of {input.Data.Container}/{input.Data.Prefix} holds no interactions: there is nothing to evaluate.");
        var problem = new RankingProblem(users.Count, items.Count, train, heldOut);

        var model = Ks.ToDictionary(k => k, k => new RankingMetrics(k));
        var heldUsers = problem.HeldOut.Keys.Order().ToArray();
        for (var start = 0; start < heldUsers.Length; start += UsersPerRequest)
        {
            ct.ThrowIfCancellationRequested();
            var chunk = heldUsers.Skip(start).Take(UsersPerRequest).ToArray();
            var request = new InferRequest
            {
                Id = $"evaluate-{start}",
                Inputs =
                [
                    new InferTensor("user", Datatype.BYTES, [chunk.Length], chunk.Select(u => users.Ids[u]).ToArray()),
                    new InferTensor("k", Datatype.INT64, [1], new long[] { Ks.Max() }),
                ],
            };
            var outputs = await scorer.PredictAsync(request, ct);
            var served = (string[])outputs.First(o => o.Name == "items").Data;
            var width = Ks.Max();
            for (var r = 0; r < chunk.Length; r++)
            {
                // Item ids map back through this data's catalogue: a champion trained on other data is scored alike.
                var ranked = served.Skip(r * width).Take(width).Select(id => items.TryIndex(id, out var i) ? i : -1).ToList();
                foreach (var m in model.Values)
                    m.AddRanked(ranked, problem.HeldOut[chunk[r]]);
            }
        }

        var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var m in model.Values)
        {
            foreach (var (name, value) in m.ToDictionary())
                metrics[name] = value;
        }

        foreach (var (name, baseline) in Baselines(problem))
        {
            foreach (var (metric, value) in baseline.ToDictionary())
                metrics[$"{name}_{metric}"] = value;
        }

        var hr = model[10].HitRate;
        return new EvaluateModelResult(hr, 0, heldUsers.Length, [], scorer.Provider) { Metrics = metrics };
    }

    /// <summary>The three baselines at k = 10 on the problem's split.</summary>
    public static IEnumerable<(string Name, RankingMetrics Metrics)> Baselines(RankingProblem problem)
    {
        var popularity = Core.Recommenders.Baselines.Popularity(problem);
        yield return ("pop", problem.Evaluate(10, _ => popularity));
        yield return ("knn", problem.Evaluate(10, Core.Recommenders.Baselines.ItemKnn(problem)));
        yield return ("als", problem.Evaluate(10, Core.Recommenders.Baselines.ImplicitAls(problem)));
    }

    private static List<(int User, int Item, float Weight)> Rows(PreparedShard shard)
    {
        var f = shard.FloatFeatures ?? throw new InvalidDataException("ranking shards hold float (user, item, weight) rows");
        return Enumerable.Range(0, shard.Count).Select(i => ((int)f[3 * i], (int)f[(3 * i) + 1], f[(3 * i) + 2])).ToList();
    }
}
