using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MlFunctions.Core.Json;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Core.Datasets;

/// <summary>Sample indices of each split, ascending (source order) within a split.</summary>
public sealed record SplitIndices(int[] Train, int[] Val, int[] Test);

/// <summary>
/// Seeded stratified splitting: each class is shuffled on its own and cut by the fractions, so every split
/// keeps the class proportions of the whole (to within one sample per class).
/// </summary>
public static class StratifiedSplitter
{
    /// <summary>
    /// Splits <paramref name="labels"/> by <paramref name="trainFraction"/>/<paramref name="valFraction"/>/
    /// <paramref name="testFraction"/> (they must sum to 1; test may be 0 when the test set comes separately).
    /// </summary>
    public static SplitIndices Split(ReadOnlySpan<int> labels, double trainFraction, double valFraction, double testFraction, long seed)
    {
        if (trainFraction <= 0 || valFraction < 0 || testFraction < 0 || Math.Abs(trainFraction + valFraction + testFraction - 1) > 1e-9)
        {
            throw new ArgumentException($"split fractions train={trainFraction}, val={valFraction}, test={testFraction} must be non-negative, train > 0, and sum to 1");
        }

        var byClass = new SortedDictionary<int, List<int>>();
        for (var i = 0; i < labels.Length; i++)
        {
            if (!byClass.TryGetValue(labels[i], out var list))
            {
                byClass[labels[i]] = list = [];
            }

            list.Add(i);
        }

        List<int> train = [], val = [], test = [];
        foreach (var (label, members) in byClass)
        {
            // One generator per class, seeded by (seed, label): a class's cut does not depend on which other
            // classes exist, so adding data of one class leaves the others' assignment unchanged.
            var rng = new SplitMix64(unchecked((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)(uint)label));
            var order = members.ToArray();
            for (var i = order.Length - 1; i > 0; i--)
            {
                var j = (int)rng.NextBelow((ulong)(i + 1));
                (order[i], order[j]) = (order[j], order[i]);
            }

            var nVal = (int)Math.Round(order.Length * valFraction, MidpointRounding.ToEven);
            var nTest = (int)Math.Round(order.Length * testFraction, MidpointRounding.ToEven);
            if (nVal + nTest >= order.Length && order.Length > 0)
            {
                // Tiny classes: keep at least one training example, it is the split that must see every class.
                nTest = Math.Min(nTest, Math.Max(0, order.Length - 1 - nVal));
                nVal = Math.Min(nVal, order.Length - 1 - nTest);
            }

            val.AddRange(order.AsSpan(0, nVal));
            test.AddRange(order.AsSpan(nVal, nTest));
            train.AddRange(order.AsSpan(nVal + nTest));
        }

        return new SplitIndices(Sorted(train), Sorted(val), Sorted(test));
    }

    /// <summary>
    /// Stratified k-fold assignment: the fold (0..<paramref name="folds"/>-1) of each sample. Each class is shuffled
    /// with the same per-class generator as <see cref="Split"/> and dealt round-robin, so every fold has the class balance.
    /// </summary>
    public static int[] Folds(ReadOnlySpan<int> labels, int folds, long seed)
    {
        if (folds < 2)
        {
            throw new ArgumentException($"cross-validation needs at least 2 folds, got {folds}");
        }

        var byClass = new SortedDictionary<int, List<int>>();
        for (var i = 0; i < labels.Length; i++)
        {
            if (!byClass.TryGetValue(labels[i], out var list))
            {
                byClass[labels[i]] = list = [];
            }

            list.Add(i);
        }

        var fold = new int[labels.Length];
        var next = 0;
        foreach (var (label, members) in byClass)
        {
            var rng = new SplitMix64(unchecked((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)(uint)label));
            var order = members.ToArray();
            for (var i = order.Length - 1; i > 0; i--)
            {
                var j = (int)rng.NextBelow((ulong)(i + 1));
                (order[i], order[j]) = (order[j], order[i]);
            }

            // Continue the deal where the previous class stopped, so fold sizes differ by at most one overall.
            foreach (var sample in order)
            {
                fold[sample] = next;
                next = (next + 1) % folds;
            }
        }

        return fold;
    }

    private static int[] Sorted(List<int> list)
    {
        var a = list.ToArray();
        Array.Sort(a);
        return a;
    }

    /// <summary>
    /// SplitMix64: a tiny, well-mixed generator whose output is fixed by this code, unlike System.Random,
    /// whose sequence for a seed is not a documented contract across .NET versions. Splits must reproduce.
    /// </summary>
    private struct SplitMix64(ulong state)
    {
        public ulong Next()
        {
            var z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>Uniform in [0, n) by rejection, so there is no modulo bias.</summary>
        public ulong NextBelow(ulong n)
        {
            var limit = ulong.MaxValue - (ulong.MaxValue % n);
            ulong x;
            do
            {
                x = Next();
            }
            while (x >= limit);
            return x % n;
        }
    }
}

/// <summary>Normalization statistics of uint8 features, computed on the train split only.</summary>
public static class NormalizationStats
{
    /// <summary>
    /// Mean and (population) std of the scaled values <c>x/maxValue</c> (255 for 8-bit images; a pixel CSV may use a smaller range, the 8×8 digits 0..16), per channel when the sample shape is
    /// [C, H, W] with C &gt; 1, else over every element; returned as a <see cref="TransformSpec"/>. Only the
    /// train split is passed in: statistics from val/test would leak them into the model's inputs.
    /// </summary>
    public static TransformSpec Compute(PreparedShard train, string? input = null, int maxValue = 255)
    {
        if (train.Count == 0)
        {
            throw new ArgumentException("the train split is empty; cannot compute normalization statistics");
        }

        var shape = train.SampleShape;
        var channels = shape.Length == 3 ? shape[0] : 1;
        var plane = channels > 1 ? shape[1] * shape[2] : train.SampleSize;
        var planeSize = shape.Length >= 2 ? shape[^1] * shape[^2] : train.SampleSize;

        // Integer histograms per channel: exact, and far cheaper than summing 47M doubles one by one.
        var histograms = new long[channels, 256];
        var features = train.Features;
        for (var i = 0; i < features.Length; i++)
        {
            var c = channels > 1 ? (i / plane) % channels : 0;
            histograms[c, features[i]]++;
        }

        var mean = new float[channels];
        var std = new float[channels];
        for (var c = 0; c < channels; c++)
        {
            double n = 0, sum = 0, sumSq = 0;
            for (var v = 0; v < 256; v++)
            {
                var h = histograms[c, v];
                var x = v / (double)maxValue;
                n += h;
                sum += h * x;
                sumSq += h * x * x;
            }

            var m = sum / n;
            var s = Math.Sqrt(Math.Max(0, (sumSq / n) - (m * m)));

            // A constant channel would give std 0 and divide by zero at serving; keep it at 1 (no scaling).
            mean[c] = (float)m;
            std[c] = s > 1e-12 ? (float)s : 1f;
        }

        return new TransformSpec { Input = input, Scale = 1f / maxValue, Mean = mean, Std = std, PlaneSize = planeSize };
    }
}

/// <summary>
/// How prepared data is made; its hash names the prepared folder, so the same recipe on the same dataset
/// version lands in the same place (idempotent), and a changed recipe never overwrites an old one.
/// </summary>
public sealed record PreparationRecipe
{
    /// <summary>IDX prefix of the pool that is split, e.g. "train".</summary>
    public string Source { get; init; } = "train";

    /// <summary>IDX prefix of an official test set (e.g. "t10k") used as the test split; null splits test off the pool.</summary>
    public string? TestSource { get; init; }

    public double TrainFraction { get; init; } = 0.8;

    public double ValFraction { get; init; } = 0.1;

    public double TestFraction { get; init; } = 0.1;

    public long Seed { get; init; } = 1;

    /// <summary>Use only the first N samples of the pool (0 = all): small, fast slices for CI.</summary>
    public int MaxSamples { get; init; }

    /// <summary>Use only the first N samples of the official test set (0 = all).</summary>
    public int MaxTestSamples { get; init; }

    /// <summary>For CSV datasets: the columns and the feature encoding. Null for IDX (and then absent from the hash's JSON).</summary>
    public TabularRecipe? Tabular { get; init; }

    /// <summary>For interaction (recommender) datasets: the columns or format and the hold-out. Null otherwise (absent from the hash's JSON).</summary>
    public InteractionsRecipe? Interactions { get; init; }

    /// <summary>For CT slice pairs (a denoiser): patches and the subject split. Null otherwise (absent from the hash's JSON).</summary>
    public Imaging.CtRecipe? Ct { get; init; }

    /// <summary>For PNG folders and pixel CSVs (dataset.kind images): size, channels, label column, pixel range. Null for IDX (absent from the hash's JSON).</summary>
    public ImagesRecipe? Images { get; init; }

    public string Hash() =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("prep-v1\n" + JsonSerializer.Serialize(this, MlJson.Options))))[..12];
}

/// <summary>One split of a prepared dataset: blob <c>{Prefix}/{Name}.mlfs</c> (a <see cref="PreparedShard"/>).</summary>
public sealed record PreparedSplit(string Name, string Blob, int Count, long Bytes, string Sha256, IReadOnlyDictionary<int, int> ClassCounts);

/// <summary>
/// The manifest of a prepared dataset, <c>{Container}/{Prefix}/manifest.json</c>, which a
/// <see cref="Training.PreparedDataRef"/> points at. It carries the <see cref="TransformSpec"/> so the
/// training worker copies it into its result and serving applies the same preprocessing.
/// </summary>
public sealed record PreparedDatasetManifest
{
    public const int CurrentSchemaVersion = 1;

    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    public required DatasetRef Source { get; init; }

    public required PreparationRecipe Recipe { get; init; }

    public required string RecipeHash { get; init; }

    /// <summary>Normalization computed on the train split only.</summary>
    public required TransformSpec Transform { get; init; }

    /// <summary>Per-sample shape in the shards, e.g. [1, 28, 28].</summary>
    public required int[] SampleShape { get; init; }

    public required int NumClasses { get; init; }

    /// <summary>The <see cref="Training.TrainingObjectives"/> task the data is shaped for; null (manifests before tasks existed) is classification.</summary>
    public string? Objective { get; init; }

    public required IReadOnlyList<PreparedSplit> Splits { get; init; }

    /// <summary>sha256 over the shards' hashes and the transform: equal for identical prepared data.</summary>
    public required string ContentHash { get; init; }

    public PreparedSplit Split(string name) =>
        Splits.FirstOrDefault(s => s.Name == name) ?? throw new KeyNotFoundException($"prepared data has no '{name}' split (it has {string.Join(", ", Splits.Select(s => s.Name))})");
}

public static class PreparedLayout
{
    public const string Container = "prepared";
    public const string ManifestFile = "manifest.json";
    public const string Train = "train";
    public const string Val = "val";
    public const string Test = "test";

    public static string Prefix(DatasetRef dataset, string recipeHash) => $"{dataset.Name}/{dataset.Version}/{recipeHash}";

    public static string ManifestBlob(string prefix) => $"{prefix}/{ManifestFile}";

    public static string ShardBlob(string prefix, string split) => $"{prefix}/{split}.mlfs";

    /// <summary>A tabular split's raw rows (<see cref="RawRows"/>), which evaluation sends through serving.</summary>
    public static string RawRowsBlob(string prefix, string split) => $"{prefix}/{split}.rows.json";

    public static string ContentHash(IEnumerable<PreparedSplit> splits, TransformSpec transform)
    {
        var text = new StringBuilder();
        foreach (var s in splits.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            text.Append(s.Name).Append('\t').Append(s.Sha256).Append('\n');
        }

        text.Append(JsonSerializer.Serialize(transform, MlJson.Options));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}

public static class ShardOps
{
    /// <summary>The samples at <paramref name="indices"/> as a new shard (a split of the pool).</summary>
    public static PreparedShard Take(PreparedShard source, int[] indices)
    {
        var size = source.SampleSize;
        var labels = new int[indices.Length];
        for (var i = 0; i < indices.Length; i++)
        {
            labels[i] = source.Labels[indices[i]];
        }

        if (source.FloatFeatures is { } floats)
        {
            var taken = new float[checked(indices.Length * size)];
            for (var i = 0; i < indices.Length; i++)
            {
                floats.AsSpan(indices[i] * size, size).CopyTo(taken.AsSpan(i * size));
            }

            return new PreparedShard(source.SampleShape, taken, labels);
        }

        var features = new byte[checked(indices.Length * size)];
        for (var i = 0; i < indices.Length; i++)
        {
            source.Features.AsSpan(indices[i] * size, size).CopyTo(features.AsSpan(i * size));
        }

        return new PreparedShard(source.SampleShape, features, labels);
    }

    public static IReadOnlyDictionary<int, int> ClassCounts(PreparedShard shard) =>
        shard.Labels.GroupBy(l => l).OrderBy(g => g.Key).ToDictionary(g => g.Key, g => g.Count());
}
