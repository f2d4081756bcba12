using MlFunctions.Core.Datasets;

namespace MlFunctions.Core.Imaging;

/// <summary>
/// The <c>ct</c> section of a pipeline spec (dataset kind <c>ct</c>): either simulate (<see cref="Simulate"/>) or ingest
/// PNG16 + sidecar pairs from the dataset's sources unchanged, and how training patches are cut. Subjects are split by
/// the spec's split fractions (whole subjects, <see cref="CtSplits.AssignByFraction"/>).
/// </summary>
public sealed record CtDatasetSpec
{
    /// <summary>Simulate the dataset instead of reading one: subjects, slices, size, views, dose. Null reads the sources.</summary>
    public CtSimulationSpec? Simulate { get; init; }

    /// <summary>Training patches are <see cref="Patch"/>² (the sweep's <c>patchSize</c> crops them smaller).</summary>
    public int Patch { get; init; } = 48;

    /// <summary>Training patches cut from the training subjects, body-centred, seeded.</summary>
    public int Patches { get; init; } = 2048;

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Simulate is { } sim)
        {
            problems.AddRange(sim.Problems().Select(p => "ct.simulate: " + p));
            if (sim.Subjects < 3)
            {
                problems.Add($"ct.simulate.subjects must be at least 3 (train, validation and test are separate subjects), got {sim.Subjects}");
            }

            if (Patch > sim.Protocol.Size)
            {
                problems.Add($"ct.patch {Patch} is larger than the simulated slices ({sim.Protocol.Size}²)");
            }
        }

        if (Patch is < 8 or > 512)
        {
            problems.Add($"ct.patch must be between 8 and 512 pixels, got {Patch}");
        }

        if (Patches is < 16 or > 200_000)
        {
            problems.Add($"ct.patches must be between 16 and 200000, got {Patches}");
        }

        return problems;
    }

    /// <summary>What the transform step does with the read pairs.</summary>
    public CtRecipe Recipe(double validationFraction, double testFraction, long seed) => new()
    {
        Patch = Patch,
        Patches = Patches,
        ValidationFraction = validationFraction,
        TestFraction = testFraction,
        Seed = (int)seed,
    };
}

/// <summary>How CT pairs become a prepared <c>denoise</c> dataset; part of the preparation recipe (and its hash).</summary>
public sealed record CtRecipe
{
    public int Patch { get; init; } = 48;

    public int Patches { get; init; } = 2048;

    public double ValidationFraction { get; init; } = 0.15;

    public double TestFraction { get; init; } = 0.15;

    public int Seed { get; init; } = 1;

    public double HuScale { get; init; } = CtPatches.DefaultHuScale;
}

/// <summary>What validation checks on a CT dataset beyond what <see cref="CtSliceDataset.Read"/> finds in each file.</summary>
public sealed record CtValidationRules
{
    /// <summary>Train, validation and test take whole subjects, so at least three are needed.</summary>
    public int MinSubjects { get; init; } = 3;

    /// <summary>Training patches are this size; every slice must be at least as large.</summary>
    public int Patch { get; init; } = 48;
}

/// <summary>A prepared CT dataset: the shards and which subjects went where.</summary>
public sealed record CtPrepared(IReadOnlyDictionary<string, PreparedShard> Shards, IReadOnlyDictionary<string, CtSplit> Subjects, int Width, int Height);

/// <summary>Pure preparation and validation of CT pairs, shared by the activities and the tests.</summary>
public static class CtPreparation
{
    /// <summary>
    /// Every problem of a read dataset against the rules, each naming its file or subject: the reader's own problems
    /// (missing sidecar, incomplete pair, corrupt PNG, implausible HU…), too few subjects, slices of different sizes
    /// (held-out slices are scored whole and stacked, so one size per dataset) and slices smaller than the patch.
    /// </summary>
    public static IReadOnlyList<string> Problems(CtDatasetRead read, CtValidationRules rules)
    {
        var problems = read.Problems.ToList();
        var subjects = read.Subjects.Count;
        if (read.Pairs.Count > 0 && subjects < rules.MinSubjects)
        {
            problems.Add($"{subjects} subject(s) ({string.Join(", ", read.Subjects)}); at least {rules.MinSubjects} are needed so train, validation and test are separate subjects");
        }

        if (read.Pairs.Count > 0)
        {
            var size = read.Pairs.GroupBy(p => (p.Low.Width, p.Low.Height)).OrderByDescending(g => g.Count()).First().Key;
            foreach (var odd in read.Pairs.Where(p => (p.Low.Width, p.Low.Height) != size))
            {
                problems.Add($"{odd.Key}: {odd.Low.Width}×{odd.Low.Height}, but most slices are {size.Width}×{size.Height} (one size per dataset: resample outside)");
            }

            foreach (var small in read.Pairs.Where(p => p.Low.Width < rules.Patch || p.Low.Height < rules.Patch))
            {
                problems.Add($"{small.Key}: {small.Low.Width}×{small.Low.Height} is smaller than the {rules.Patch}×{rules.Patch} training patch");
            }
        }

        return problems;
    }

    /// <summary>
    /// Splits by subject, cuts <see cref="CtRecipe.Patches"/> body-centred training patches from the training subjects
    /// and keeps validation and test as whole slices (the model is fully convolutional).
    /// </summary>
    public static CtPrepared Prepare(IReadOnlyList<CtSlicePair> pairs, CtRecipe recipe)
    {
        var subjects = CtSplits.AssignByFraction(pairs.Select(p => p.Subject), recipe.ValidationFraction, recipe.TestFraction, recipe.Seed);
        var (train, validation, test) = CtSplits.Partition(pairs, subjects);
        if (validation.Count == 0 || test.Count == 0)
        {
            throw new ArgumentException($"{subjects.Count} subjects give {validation.Count} validation and {test.Count} test slices; both need at least one subject");
        }

        var shards = new Dictionary<string, PreparedShard>
        {
            [PreparedLayout.Train] = CtDenoiseSamples.Patches(train, recipe.Patch, recipe.Patches, recipe.Seed, recipe.HuScale),
            [PreparedLayout.Val] = CtDenoiseSamples.Slices(validation, recipe.HuScale),
            [PreparedLayout.Test] = CtDenoiseSamples.Slices(test, recipe.HuScale),
        };
        return new CtPrepared(shards, subjects, test[0].Low.Width, test[0].Low.Height);
    }

    /// <summary>The pairs of a held-out shard ([n, 2, H, W] scaled floats) back in HU.</summary>
    public static IReadOnlyList<CtSlicePair> Pairs(PreparedShard shard, string split, double huScale = CtPatches.DefaultHuScale)
    {
        if (shard.SampleShape is not [2, var h, var w] || shard.FloatFeatures is not { } floats)
        {
            throw new InvalidDataException($"split '{split}' is not CT pairs: samples [{string.Join(",", shard.SampleShape)}], a denoise split is float [2, H, W]");
        }

        return Enumerable.Range(0, shard.Count).Select(i =>
        {
            var (low, full) = CtDenoiseSamples.Pair(floats, i, h, w, huScale);
            return new CtSlicePair(split, i.ToString("D3", System.Globalization.CultureInfo.InvariantCulture), low, full, new CtSliceSidecar());
        }).ToList();
    }
}

/// <summary>
/// How a CT denoiser is served (<see cref="Transforms.TransformSpec.CtKind"/>): requests carry slices in HU; the model
/// sees HU × <see cref="HuScale"/> and its output is divided back. Any H and W in [<see cref="MinSize"/>,
/// <see cref="MaxSize"/>] that are multiples of <see cref="Multiple"/> (1: stride-1 convolutions only) are served.
/// </summary>
public sealed record CtTransform
{
    public double HuScale { get; init; } = CtPatches.DefaultHuScale;

    public int HuOffset { get; init; } = Hounsfield.PngOffset;

    public int MinSize { get; init; } = 16;

    public int MaxSize { get; init; } = 2048;

    public int Multiple { get; init; } = 1;

    /// <summary>The prepared slices' size (informational: any size in range is served).</summary>
    public int TrainedWidth { get; init; }

    public int TrainedHeight { get; init; }

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!(HuScale > 0 && double.IsFinite(HuScale)))
        {
            problems.Add($"huScale {HuScale} must be positive and finite");
        }

        if (MinSize < 1 || MaxSize < MinSize || Multiple < 1)
        {
            problems.Add($"sizes must satisfy 1 <= minSize <= maxSize and multiple >= 1 (got {MinSize}, {MaxSize}, {Multiple})");
        }

        return problems;
    }
}
