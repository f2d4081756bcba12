using System.Text;
using System.Text.Json;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Recommenders;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;

namespace MlFunctions.Datasets.Tests;

/// <summary>The interactions kind (#11 §1, #13): Online Retail cleaning, aggregation, leave-last-out by time, ranking metrics, baselines.</summary>
public sealed class InteractionsTests
{
    private static readonly string Retail = Path.Combine(TestData.Root, "recommender", "online-retail-by-day");

    private static IReadOnlyList<CsvSource> RetailFiles(int days = 20) =>
        Directory.GetFiles(Retail, "*.csv").Order(StringComparer.Ordinal).Take(days).Select(CsvSource.FromFile).ToList();

    private static CsvSource Text(string name, string csv) => new(name, () => new MemoryStream(Encoding.UTF8.GetBytes(csv)));

    [Fact]
    public void Online_retail_cleaning_counts_on_one_known_day()
    {
        // Counted independently with Python's csv module on 2010-12-01.csv.
        var (rows, read, dropped) = OnlineRetail.Clean([CsvSource.FromFile(Path.Combine(Retail, "2010-12-01.csv"))]);
        Assert.Equal(3108, read);
        Assert.Equal(26, dropped[OnlineRetail.Cancellation]);
        Assert.Equal(1, dropped[OnlineRetail.NegativeQuantity]);
        Assert.Equal(1139, dropped[OnlineRetail.NoCustomer]);
        Assert.Equal(1942, rows.Count);
        var pairs = InteractionData.Aggregate(rows);
        var profile = InteractionsProfile.Of(read, dropped, rows, pairs);
        Assert.Equal((95, 941, 1772L), (profile.Users, profile.Items, profile.Pairs));
        Assert.Equal(1772.0 / (95 * 941), profile.Density, 12);
        Assert.DoesNotContain(rows, r => r.User.EndsWith(".0", StringComparison.Ordinal));
    }

    [Fact]
    public void December_cleans_to_885_customers_and_2411_items()
    {
        var prepared = InteractionPreparation.Prepare(RetailFiles(), new InteractionsRecipe { Columns = new InteractionColumns { Format = InteractionData.OnlineRetailFormat } });
        var p = prepared.Profile;
        Assert.Equal(42481, p.RowsRead);
        Assert.Equal((728L, 70L, 15523L), (p.Dropped[OnlineRetail.Cancellation], p.Dropped[OnlineRetail.NegativeQuantity], p.Dropped[OnlineRetail.NoCustomer]));
        Assert.Equal(26160, p.RowsKept);
        Assert.Equal((885, 2411, 23290L), (p.Users, p.Items, p.Pairs));
        Assert.Equal(p.Pairs, prepared.Shards.Values.Sum(s => (long)s.Count));
        Assert.Equal(885, prepared.Transform.Users.Count);
        Assert.Equal(prepared.Transform.Users.Count, prepared.Transform.Seen.Count);
    }

    [Fact]
    public void No_training_pair_is_later_than_its_users_held_out_pairs()
    {
        var (rows, _, _) = OnlineRetail.Clean(RetailFiles());
        var split = InteractionData.LeaveLastOut(InteractionData.Aggregate(rows), k: 1);
        Assert.NotEmpty(split.Test);
        Assert.NotEmpty(split.Val);
        var test = split.Test.ToDictionary(t => t.User);
        var val = split.Val.ToDictionary(t => t.User);
        foreach (var t in split.Train)
        {
            if (test.TryGetValue(t.User, out var held))
                Assert.True(t.Time <= held.Time, $"{t.User}: train {t.Item} at {t.Time} is after held-out {held.Item} at {held.Time}");
            if (val.TryGetValue(t.User, out var v))
                Assert.True(t.Time <= v.Time);
        }

        Assert.All(split.Val, v => Assert.True(v.Time <= test[v.User].Time));

        // Every held-out user keeps at least one training pair, and pairs are never duplicated across splits.
        var trainUsers = split.Train.Select(t => t.User).ToHashSet();
        Assert.All(split.Test, t => Assert.Contains(t.User, trainUsers));
        var all = split.Train.Concat(split.Val).Concat(split.Test).Select(p => (p.User, p.Item)).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
    }

    [Fact]
    public void A_broken_row_or_a_wrong_header_fails_with_the_reason()
    {
        var columns = new InteractionColumns();
        var bad = Assert.Throws<InvalidDataException>(() => InteractionData.Read([Text("bad.csv", "user,item,weight,time\nu1,i1,1,2010-12-01 08:00:00\nu2,i2,lots,2010-12-01 09:00:00\n")], columns));
        Assert.Contains("bad.csv line 3", bad.Message);
        Assert.Contains("'lots' is not a number", bad.Message);

        var header = Assert.Throws<InvalidDataException>(() => InteractionData.Read([Text("header.csv", "customer,product,weight,time\nu1,i1,1,0\n")], columns));
        Assert.Contains("no column 'user'", header.Message);

        var time = Assert.Throws<InvalidDataException>(() => InteractionData.Read([Text("time.csv", "user,item,weight,time\nu1,i1,1,yesterday\n")], columns));
        Assert.Contains("time.csv line 2", time.Message);

        Assert.Throws<InvalidDataException>(() => InteractionData.Read([Text("ragged.csv", "user,item,weight,time\nu1,i1,1\n")], columns));

        var retail = Assert.Throws<InvalidDataException>(() => OnlineRetail.Clean([Text("r.csv", "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n1,A,x,six,2010-12-01 08:00:00,1,17850.0,UK\n")]));
        Assert.Contains("r.csv line 2", retail.Message);
        Assert.Contains("Quantity 'six'", retail.Message);
    }

    [Fact]
    public void Plain_interactions_read_drop_and_aggregate()
    {
        var (rows, read, dropped) = InteractionData.Read([Text("ok.csv", "user,item,weight,time\nu1,a,1,100\nu1,a,2,300\n,b,1,5\nu2,b,0,7\nu2,c,1,2010-12-01\n")], new InteractionColumns());
        Assert.Equal(5, read);
        Assert.Equal(1, dropped["empty user or item"]);
        Assert.Equal(1, dropped["non-positive weight"]);
        var pairs = InteractionData.Aggregate(rows);
        var a = Assert.Single(pairs, p => p.User == "u1");
        Assert.Equal(3, a.Weight);
        Assert.Equal(DateTime.UnixEpoch.AddSeconds(300), a.Time);
    }

    [Fact]
    public void Hit_rate_and_ndcg_match_hand_computed_rankings()
    {
        // 5 items. User 0 has seen item 0 (excluded). Scores: item0 .9 (seen), item1 .8, item2 .7, item3 .6, item4 .1.
        // Held-out item 3: unseen ranking is 1, 2, 3, 4 → rank 3. HR@2 = 0, HR@3 = 1, NDCG@3 = 1/log2(4) = 0.5.
        float[] scores = [0.9f, 0.8f, 0.7f, 0.6f, 0.1f];
        var seen = new HashSet<int> { 0 };
        var at2 = new RankingMetrics(2);
        at2.Add(scores, seen, [3]);
        Assert.Equal((0.0, 0.0), (at2.HitRate, at2.Ndcg));
        var at3 = new RankingMetrics(3);
        at3.Add(scores, seen, [3]);
        Assert.Equal(1.0, at3.HitRate);
        Assert.Equal(0.5, at3.Ndcg, 12);

        // Without the exclusion the seen item would push it to rank 4: the exclusion matters.
        var unexcluded = new RankingMetrics(3);
        unexcluded.Add(scores, new HashSet<int>(), [3]);
        Assert.Equal(0.0, unexcluded.HitRate);

        // Two held-out items at list positions 1 and 3 (item 2 sits between them):
        // DCG = 1 + 1/2, ideal for 2 = 1 + 1/log2(3); averaged with a miss (0) over two users.
        var two = new RankingMetrics(3);
        two.Add(scores, seen, [1, 3]);
        two.Add(scores, seen, [4]);
        Assert.Equal(0.5, two.HitRate);
        Assert.Equal(((1 + 0.5) / (1 + (1 / Math.Log2(3)))) / 2, two.Ndcg, 12);
        Assert.Equal(2, two.Users);

        // Ties rank the relevant item last among equals: a constant scorer never hits by luck.
        var ties = new RankingMetrics(1);
        ties.Add(new float[] { 1, 1, 1 }, new HashSet<int>(), [0]);
        Assert.Equal(0.0, ties.HitRate);

        Assert.Equal([1, 2], RankingMetrics.TopK(scores, seen, 2).Select(t => t.Item));
        Assert.Equal(new Dictionary<string, double> { ["hr@3"] = 1, ["ndcg@3"] = 0.5 }, at3.ToDictionary());
        Assert.False(MetricNames.HigherIsBetter(MetricNames.Rmse));
        Assert.True(MetricNames.HigherIsBetter(MetricNames.HitRateAt(10)));
    }

    [Fact]
    public void Rmse_is_the_root_of_the_mean_squared_error()
    {
        var m = new RegressionMetrics();
        m.Add(1, 0);
        m.Add(3, 0);
        Assert.Equal(Math.Sqrt(5), m.Rmse, 12);
    }

    [Fact]
    public void Baselines_on_december_rank_knn_and_als_well_above_popularity()
    {
        var prepared = InteractionPreparation.Prepare(RetailFiles(), new InteractionsRecipe { Columns = new InteractionColumns { Format = InteractionData.OnlineRetailFormat } });
        var users = prepared.Transform.UserMap();
        var items = prepared.Transform.ItemMap();
        var problem = RankingProblem.From(users, items, prepared.Split.Train.Concat(prepared.Split.Val), prepared.Split.Test);
        var popularity = Baselines.Popularity(problem);
        var pop = problem.Evaluate(10, _ => popularity);
        var knn = problem.Evaluate(10, Baselines.ItemKnn(problem));
        var als = problem.Evaluate(10, Baselines.ImplicitAls(problem, iterations: 5));
        Assert.InRange(pop.HitRate, 0.01, 0.10);
        Assert.True(knn.HitRate > 2 * pop.HitRate, $"kNN {knn.HitRate:F3} vs popularity {pop.HitRate:F3}");
        Assert.True(als.HitRate > pop.HitRate, $"ALS {als.HitRate:F3} vs popularity {pop.HitRate:F3}");
        Console.WriteLine($"baselines: pop hr10={pop.HitRate:F4} knn hr10={knn.HitRate:F4} als hr10={als.HitRate:F4} users={pop.Users}");
    }

    [Fact]
    public void The_example_recommender_spec_is_valid_and_sweeps_the_recommender_space()
    {
        var file = Path.Combine(MlFunctions.Tests.Infrastructure.RepoPaths.Root, "examples", "pipelines", "recommender.json");
        var spec = JsonSerializer.Deserialize<PipelineSpec>(File.ReadAllText(file), MlJson.Options)! with { Dataset = new PipelineDataset { Kind = DatasetKinds.Interactions, SourceDirectories = ["x"] } };
        Assert.Empty(spec.Problems());
        Assert.Equal(InteractionData.OnlineRetailFormat, spec.Recipe().Interactions!.Columns.Format);
        Assert.NotNull(spec.ValidationRules().Interactions);
        Assert.Contains(spec.DefaultSpace(), p => p.Name == "embeddingSize");
        var job = TrialJobs.ForTrial(spec.JobTemplate(new PreparedDataRef("prepared", "p", "h")), "t1", new ParameterSet(new Dictionary<string, string> { ["embeddingSize"] = "48", ["negatives"] = "9", ["loss"] = "sampled_bce" }), null, new Dictionary<string, string>());
        Assert.Equal((48, 9, "sampled_bce"), (job.Hyperparameters.EmbeddingSize, job.Hyperparameters.Negatives, job.Hyperparameters.Loss));

        // A classification metric on interactions is a listed problem; tasks and losses resolve with their defaults.
        Assert.Contains((spec with { Metric = "accuracy" }).Problems(), p => p.StartsWith("metric must be one of hr@10", StringComparison.Ordinal));
        Assert.Equal(TrainingObjectives.Bpr, TrainingObjectives.LossFor(TrainingObjectives.Ranking, ""));
        Assert.Equal(TrainingObjectives.CrossEntropy, TrainingObjectives.LossFor(TrainingObjectives.Resolve(null, null), null));
        Assert.Throws<ArgumentException>(() => TrainingObjectives.LossFor(TrainingObjectives.Classification, "bpr"));
    }
}
