using MlFunctions.Core.Datasets;

namespace MlFunctions.Datasets.Tests;

public sealed class PreparationTests
{
    /// <summary>Unequal classes (50..500 samples) in an interleaved order.</summary>
    private static int[] Labels()
    {
        var list = new List<int>();
        for (var c = 0; c < 10; c++)
        {
            list.AddRange(Enumerable.Repeat(c, 50 * (c + 1)));
        }

        return [.. list.OrderBy(x => (x * 7919) % 101).ThenBy(x => x)];
    }

    [Fact]
    public void Split_is_stratified_disjoint_and_complete()
    {
        var labels = Labels();
        var s = StratifiedSplitter.Split(labels, 0.7, 0.15, 0.15, seed: 42);
        var all = s.Train.Concat(s.Val).Concat(s.Test).ToList();
        Assert.Equal(labels.Length, all.Count);
        Assert.Equal(labels.Length, all.Distinct().Count());

        for (var c = 0; c < 10; c++)
        {
            var n = labels.Count(l => l == c);
            Assert.InRange(s.Val.Count(i => labels[i] == c), (0.15 * n) - 1, (0.15 * n) + 1);
            Assert.InRange(s.Test.Count(i => labels[i] == c), (0.15 * n) - 1, (0.15 * n) + 1);
        }
    }

    [Fact]
    public void Split_is_deterministic_per_seed_and_differs_across_seeds()
    {
        var labels = Labels();
        var a = StratifiedSplitter.Split(labels, 0.8, 0.1, 0.1, seed: 7);
        var b = StratifiedSplitter.Split(labels, 0.8, 0.1, 0.1, seed: 7);
        var c = StratifiedSplitter.Split(labels, 0.8, 0.1, 0.1, seed: 8);
        Assert.Equal(a.Train, b.Train);
        Assert.Equal(a.Val, b.Val);
        Assert.NotEqual(a.Val, c.Val);
    }

    [Fact]
    public void Bad_fractions_are_refused()
    {
        Assert.Throws<ArgumentException>(() => StratifiedSplitter.Split([0, 1], 0.5, 0.1, 0.1, 1));
    }

    [Fact]
    public void Statistics_use_the_train_split_only()
    {
        // Train samples are dark (value 51 = 0.2), val samples bright (255): val must not move the mean.
        var labels = Enumerable.Range(0, 100).Select(i => i % 2).ToArray();
        var split = StratifiedSplitter.Split(labels, 0.8, 0.2, 0, seed: 1);
        var features = new byte[100 * 4];
        foreach (var i in split.Val)
        {
            features.AsSpan(i * 4, 4).Fill(255);
        }

        foreach (var i in split.Train)
        {
            features.AsSpan(i * 4, 4).Fill(51);
        }

        var pool = new PreparedShard([1, 2, 2], features, labels);
        var spec = NormalizationStats.Compute(ShardOps.Take(pool, split.Train));
        Assert.Equal(0.2f, spec.Mean[0], 5);
        Assert.Equal(1f, spec.Std[0]); // constant train data: std kept at 1 rather than 0
        Assert.Equal(4, spec.PlaneSize);
    }

    [Fact]
    public void Mnist_training_part_statistics_are_close_to_the_published_ones()
    {
        using var reader = IdxLabeledReader.OpenMnist(TestData.MnistTrain, "train");
        var spec = NormalizationStats.Compute(reader.ReadShard(10000));
        Assert.InRange(spec.Mean[0], 0.1307 - 0.004, 0.1307 + 0.004);
        Assert.InRange(spec.Std[0], 0.3081 - 0.004, 0.3081 + 0.004);
        Assert.Equal(1f / 255f, spec.Scale);
        Assert.Equal(784, spec.PlaneSize);
        spec.Validate();
    }

    [Fact]
    public void Recipe_hash_changes_with_the_recipe()
    {
        var a = new PreparationRecipe();
        Assert.Equal(a.Hash(), new PreparationRecipe().Hash());
        Assert.NotEqual(a.Hash(), (a with { Seed = 2 }).Hash());
        Assert.Equal(12, a.Hash().Length);
    }

    [Fact]
    public void Content_hash_ignores_order_but_not_names()
    {
        DatasetFile a = new("a", 1, "00"), b = new("b", 2, "11");
        Assert.Equal(DatasetLayout.ContentHash([a, b]), DatasetLayout.ContentHash([b, a]));
        Assert.NotEqual(DatasetLayout.ContentHash([a, b]), DatasetLayout.ContentHash([a with { Name = "c" }, b]));
        Assert.Equal("idx", DatasetLayout.DetectFormat(["train-images-idx3-ubyte.part0-of-6.gz", "train-labels-idx1-ubyte.gz"]));
        Assert.Equal("csv", DatasetLayout.DetectFormat(["2010-12-01.csv"]));
    }
}
