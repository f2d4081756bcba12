using System.Globalization;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Core.Datasets;

/// <summary>
/// The <c>images</c> section of a pipeline spec (dataset.kind "images"), carried by the recipe and the validation rules.
/// It applies to PNG folders and CSVs of pixels; IDX files carry their own shape and labels and ignore it.
/// </summary>
public sealed record ImagesRecipe
{
    /// <summary>The image width in pixels. PNG: every image must have it (or is resized to it with <see cref="Resize"/>); null: the
    /// images' common size. CSV: with <see cref="Height"/>, the row layout; null: a square inferred from the pixel count.</summary>
    public int? Width { get; init; }

    public int? Height { get; init; }

    /// <summary>1 (grayscale) or 3 (RGB). PNG: null is 3 when any image has colour, else 1. CSV: null is 1; 3 reads a row as R, G, B planes.</summary>
    public int? Channels { get; init; }

    /// <summary>PNG: resize every image to <see cref="Width"/>×<see cref="Height"/> (bicubic) instead of refusing mixed sizes;
    /// serving resizes a request's PNG the same way. False (the default) lists the files whose size differs.</summary>
    public bool Resize { get; init; }

    /// <summary>CSV: the label column: "first" (null, the default: <c>label,p0,p1,…</c>; a header column named "label" wins), "last",
    /// a header name, or a 0-based index. Every other column is a pixel.</summary>
    public string? LabelColumn { get; init; }

    /// <summary>CSV: the largest pixel value (255 for 8-bit images; the UCI/scikit-learn 8×8 digits are 0..16). Pixels must be integers
    /// in [0, MaxValue]; serving scales a served PNG's 0..255 onto this range.</summary>
    public int MaxValue { get; init; } = 255;

    /// <summary>CSV: whether the first row of each file is a header; null detects it (a non-numeric pixel cell in the first row).</summary>
    public bool? Header { get; init; }

    /// <summary>Each class needs this many images in the pool that is split: one image cannot land in train and in val/test.</summary>
    public int MinPerClass { get; init; } = 2;

    /// <summary>Largest allowed ratio of the most to the least frequent class (as for IDX).</summary>
    public double MaxClassImbalance { get; init; } = 10;

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        foreach (var (name, value) in new[] { ("width", Width), ("height", Height) })
        {
            if (value is < 1 or > ImagePng.MaxSide)
                problems.Add($"images.{name} must be between 1 and {ImagePng.MaxSide}, got {value}");
        }

        if ((Width is null) != (Height is null))
            problems.Add("images.width and images.height go together: give both or neither");
        if (Resize && (Width is null || Height is null))
            problems.Add("images.resize needs images.width and images.height: the size to resize every image to");
        if (Channels is not (null or 1 or 3))
            problems.Add($"images.channels must be 1 (grayscale) or 3 (RGB), got {Channels}");
        if (MaxValue is < 1 or > 255)
            problems.Add($"images.maxValue must be between 1 and 255 (pixels are stored as bytes), got {MaxValue}");
        if (MinPerClass < 2)
            problems.Add($"images.minPerClass must be at least 2, got {MinPerClass}");
        if (!(MaxClassImbalance >= 1))
            problems.Add($"images.maxClassImbalance must be at least 1, got {MaxClassImbalance}");
        if (LabelColumn is { Length: 0 })
            problems.Add("images.labelColumn must be \"first\", \"last\", a header name or a 0-based index");
        return problems;
    }
}

/// <summary>
/// A labeled image dataset as read: the class names (the model's labels), the per-sample shape [C, H, W], the pool
/// that is split (a <c>train/</c> folder, or everything), an official test set (a <c>test/</c> folder) and every problem
/// found. A reader never throws for bad data: validation reports <see cref="Problems"/>, the transform refuses them.
/// </summary>
public sealed record LabeledImages(
    IReadOnlyList<string> Classes,
    int[] SampleShape,
    PreparedShard? Pool,
    PreparedShard? Test,
    IReadOnlyList<string> Problems,
    IReadOnlyList<string> Notes,
    int PixelMax)
{
    public bool IsValid => Problems.Count == 0 && Pool is not null;

    /// <summary>The transform that serving applies: scaling by the pixel range, normalization from <paramref name="train"/>, and the image section.</summary>
    public TransformSpec Transform(PreparedShard train, bool resize) =>
        NormalizationStats.Compute(train, maxValue: PixelMax) with
        {
            Image = new ImageTransform { Classes = Classes, Channels = SampleShape[0], Height = SampleShape[1], Width = SampleShape[2], PixelMax = PixelMax, Resize = resize },
        };

    /// <summary>
    /// The seeded stratified splits: the pool cut by the recipe's fractions, or, when the folder has a <c>test/</c> set,
    /// the pool cut into train and val in the ratio of their fractions (0.7/0.15 → 82%/18%) and test taken as given.
    /// </summary>
    public (Dictionary<string, PreparedShard> Splits, int NumClasses) Split(PreparationRecipe recipe)
    {
        var pool = Pool ?? throw new InvalidDataException("the dataset has no images to split");
        if (recipe.MaxSamples > 0 && recipe.MaxSamples < pool.Count)
        {
            // dataset.maxSamples: a seeded stratified subsample of the pool, not its first N (files are read class by class).
            var keep = (double)recipe.MaxSamples / pool.Count;
            pool = ShardOps.Take(pool, StratifiedSplitter.Split(pool.Labels, keep, 1 - keep, 0, recipe.Seed).Train);
        }

        double train = recipe.TrainFraction, val = recipe.ValFraction, test = recipe.TestFraction;
        if (Test is not null)
            (train, val, test) = (train / (train + val), val / (train + val), 0);
        var indices = StratifiedSplitter.Split(pool.Labels, train, val, test, recipe.Seed);
        var splits = new Dictionary<string, PreparedShard>
        {
            [PreparedLayout.Train] = ShardOps.Take(pool, indices.Train),
            [PreparedLayout.Val] = ShardOps.Take(pool, indices.Val),
            [PreparedLayout.Test] = Test ?? ShardOps.Take(pool, indices.Test),
        };
        return (splits, Classes.Count);
    }

    /// <summary>The validation checks: readable, schema, size, per-class counts and balance, pixel statistics; every problem its own failed check.</summary>
    public (IReadOnlyList<DataProfile> Parts, IReadOnlyList<ValidationCheck> Checks) Profile(string part)
    {
        var checks = new List<ValidationCheck>();
        checks.AddRange(Notes.Select(n => new ValidationCheck(part, "reader", true, n)));
        checks.AddRange(Problems.Select(p => new ValidationCheck(part, "images", false, p)));
        var parts = new List<DataProfile>();
        if (Pool is null)
            return (parts, checks);
        checks.Add(new(part, "schema", true, $"{Classes.Count} classes [{string.Join(", ", Classes.Take(20))}{(Classes.Count > 20 ? ", …" : "")}], samples [{string.Join(", ", SampleShape)}] (channels, height, width), pixels 0..{PixelMax}"));
        foreach (var (name, shard) in new[] { ("pool", Pool), ("test", Test) })
        {
            if (shard is null)
                continue;
            var builder = new DataProfileBuilder(name, shard.SampleShape);
            builder.AddBytes(shard.Features, shard.Labels);
            parts.Add(builder.Build());
            var counts = ShardOps.ClassCounts(shard);
            checks.Add(new(name, "class counts", true, string.Join(", ", Classes.Select((c, i) => $"{c} {counts.GetValueOrDefault(i):N0}"))));
            var stats = ChannelStats(shard, PixelMax);
            checks.Add(new(name, "pixel statistics", true, string.Join("; ", stats.Select((s, c) => string.Create(CultureInfo.InvariantCulture,
                $"{(SampleShape[0] == 1 ? "gray" : "RGB"[c].ToString())} mean {s.Mean:0.0000} std {s.Std:0.0000} (÷{PixelMax})")))));
        }

        return (parts, checks);
    }

    private static IEnumerable<(double Mean, double Std)> ChannelStats(PreparedShard shard, int pixelMax)
    {
        var channels = shard.SampleShape[0];
        var plane = shard.SampleShape[1] * shard.SampleShape[2];
        for (var c = 0; c < channels; c++)
        {
            double n = 0, sum = 0, sumSq = 0;
            for (var s = 0; s < shard.Count; s++)
            {
                foreach (var b in shard.Features.AsSpan((s * shard.SampleSize) + (c * plane), plane))
                {
                    var x = b / (double)pixelMax;
                    n++;
                    sum += x;
                    sumSq += x * x;
                }
            }

            var mean = n > 0 ? sum / n : 0;
            yield return (mean, Math.Sqrt(Math.Max(0, (sumSq / Math.Max(1, n)) - (mean * mean))));
        }
    }
}

/// <summary>Problem lists stay readable on a 60,000-file dataset: the first few of a kind, then a count.</summary>
internal sealed class ProblemList(int perKind = 10)
{
    private readonly List<string> _problems = [];
    private readonly Dictionary<string, int> _counts = [];

    public void Add(string kind, string problem)
    {
        var n = _counts[kind] = _counts.GetValueOrDefault(kind) + 1;
        if (n <= perKind)
            _problems.Add(problem);
    }

    public void Add(string problem) => _problems.Add(problem);

    public IReadOnlyList<string> ToList() =>
        [.. _problems, .. _counts.Where(kv => kv.Value > perKind).Select(kv => $"… and {kv.Value - perKind:N0} more {kv.Key}")];
}

/// <summary>
/// PNG folders by the ImageNet/Keras convention: <c>{label}/{file}.png</c>, or <c>train/{label}/…</c> and <c>test/{label}/…</c>
/// for a given test set. The class name is the folder name; classes are ordered numerically when every name is a number
/// (folders 0..9 are digits 0..9), else ordinally, as Keras' <c>image_dataset_from_directory</c> sorts them.
/// </summary>
public static class PngFolderReader
{
    public const string TrainFolder = "train";
    public const string TestFolder = "test";

    /// <summary>Reads every file (<paramref name="read"/> returns a file's bytes); all problems are collected, nothing throws for bad data.</summary>
    public static LabeledImages Read(IReadOnlyList<string> names, Func<string, byte[]> read, ImagesRecipe recipe, CancellationToken ct = default)
    {
        var problems = new ProblemList();
        var notes = new List<string>();
        var entries = new List<(string Name, string? Split, string Label)>();
        foreach (var name in names.Order(StringComparer.Ordinal))
        {
            var parts = name.Split('/');
            if (!name.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                problems.Add("not png", $"{name} is not a .png file; an image folder holds only PNGs in class folders");
            else if (parts.Length == 2)
                entries.Add((name, null, parts[0]));
            else if (parts.Length == 3 && parts[0].ToLowerInvariant() is TrainFolder or TestFolder)
                entries.Add((name, parts[0].ToLowerInvariant(), parts[1]));
            else
                problems.Add("misplaced", $"{name} is not in a class folder: expected {{label}}/{{file}}.png or {{train|test}}/{{label}}/{{file}}.png");
        }

        var withSplit = entries.Count(e => e.Split is not null);
        if (withSplit > 0 && withSplit < entries.Count)
        {
            problems.Add($"the folder mixes train/ and test/ with class folders at the top ({string.Join(", ", entries.Where(e => e.Split is null).Select(e => e.Label + "/").Distinct().Take(5))}): put every class under train/ (and test/), or use no split folders");
            entries = [.. entries.Where(e => e.Split is not null)];
        }

        if (withSplit > 0 && !entries.Any(e => e.Split == TrainFolder))
            problems.Add("there is a test/ folder but no train/ folder: the training images go in train/{label}/");
        if (entries.Count == 0)
        {
            problems.Add("no images found: expected {label}/{file}.png (or train/{label}/… and test/{label}/…)");
            return new LabeledImages([], [], null, null, problems.ToList(), notes, 255);
        }

        // Header pass: the size and colour of every file, so a mixed-size dataset is reported in full before any decode.
        var bytes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var infos = new Dictionary<string, (int Channels, int Width, int Height)>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            ct.ThrowIfCancellationRequested();
            var data = read(e.Name);
            if (ImagePng.Identify(data, out var problem) is { } info)
            {
                bytes[e.Name] = data;
                infos[e.Name] = info;
            }
            else
            {
                problems.Add("unreadable PNGs", $"{e.Name} {problem}");
            }
        }

        if (infos.Count == 0)
            return new LabeledImages([], [], null, null, problems.ToList(), notes, 255);

        var channels = recipe.Channels ?? (infos.Values.Any(i => i.Channels == 3) ? 3 : 1);
        var common = infos.Values.GroupBy(i => (i.Width, i.Height)).OrderByDescending(g => g.Count()).ThenBy(g => g.Key.Width).First().Key;
        var size = recipe.Width is { } w && recipe.Height is { } h ? (Width: w, Height: h) : common;
        if (!recipe.Resize)
        {
            var off = infos.Where(kv => (kv.Value.Width, kv.Value.Height) != size).ToList();
            if (off.Count > 0)
            {
                problems.Add($"{off.Count:N0} of {infos.Count:N0} images are not {size.Width}×{size.Height}{(recipe.Width is null ? " (the most common size)" : "")}: " +
                    string.Join(", ", off.Take(20).Select(kv => $"{kv.Key} {kv.Value.Width}×{kv.Value.Height}")) + (off.Count > 20 ? ", …" : "") +
                    "; resize them, or set images.width, images.height and images.resize: true");
            }
        }
        else
        {
            notes.Add($"every image resized to {size.Width}×{size.Height} (bicubic)");
        }

        notes.Add($"{infos.Count:N0} PNGs, {channels} channel(s) ({(channels == 1 ? "grayscale" : "RGB")}){(recipe.Channels is null ? ", from the files" : "")}, {size.Width}×{size.Height}");
        var decoded = new List<(string Name, string? Split, string Label, byte[] Planes)>();
        foreach (var e in entries.Where(e => infos.TryGetValue(e.Name, out var i) && (recipe.Resize || (i.Width, i.Height) == size)))
        {
            ct.ThrowIfCancellationRequested();
            if (ImagePng.TryDecode(bytes[e.Name], channels, recipe.Resize ? size : null, out var problem) is { } pixels)
                decoded.Add((e.Name, e.Split, e.Label, pixels.Planes));
            else
                problems.Add("unreadable PNGs", $"{e.Name} {problem}");
        }

        var poolEntries = decoded.Where(d => d.Split is null or TrainFolder).ToList();
        var testEntries = decoded.Where(d => d.Split == TestFolder).ToList();
        var shape = new[] { channels, size.Height, size.Width };
        return Assemble(poolEntries.Select(d => (d.Label, d.Planes, d.Name)).ToList(), testEntries.Select(d => (d.Label, d.Planes, d.Name)).ToList(), shape, 255, recipe, problems, notes, withSplit > 0 ? "train/" : "");
    }

    /// <summary>Class names, per-class minimums and the shards, shared by the PNG and CSV readers.</summary>
    internal static LabeledImages Assemble(
        List<(string Label, byte[] Planes, string Where)> pool, List<(string Label, byte[] Planes, string Where)> test, int[] shape, int pixelMax,
        ImagesRecipe recipe, ProblemList problems, List<string> notes, string poolFolder)
    {
        var classes = TabularTransform.ClassesOf(pool.Select(p => p.Label));
        var index = classes.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i, StringComparer.Ordinal);
        foreach (var g in pool.GroupBy(p => p.Label.Trim(), StringComparer.Ordinal).Where(g => g.Count() < recipe.MinPerClass))
            problems.Add("small classes", $"class '{g.Key}' has {g.Count()} image(s) ({string.Join(", ", g.Take(3).Select(x => x.Where))}); each class needs at least {recipe.MinPerClass} to be split into train and val/test");
        if (classes.Count == 1)
            problems.Add($"only one class ('{classes[0]}') was found in {(poolFolder.Length > 0 ? poolFolder : "the dataset")}: a classifier needs at least two");
        foreach (var g in test.GroupBy(t => t.Label.Trim(), StringComparer.Ordinal).Where(g => !index.ContainsKey(g.Key)))
            problems.Add($"test/{g.Key}/ ({g.Count()} images) is a class that {poolFolder} does not have; the model can only predict classes it was trained on");
        foreach (var missing in classes.Where(c => test.Count > 0 && !test.Any(t => t.Label.Trim() == c)))
            notes.Add($"class '{missing}' has no test images");

        if (pool.Count == 0)
            return new LabeledImages(classes, shape, null, null, problems.ToList(), notes, pixelMax);
        return new LabeledImages(classes, shape, Shard(pool, index, shape), test.Count > 0 ? Shard(test.Where(t => index.ContainsKey(t.Label.Trim())).ToList(), index, shape) : null, problems.ToList(), notes, pixelMax);
    }

    private static PreparedShard Shard(List<(string Label, byte[] Planes, string Where)> samples, Dictionary<string, int> index, int[] shape)
    {
        var size = shape[0] * shape[1] * shape[2];
        var features = new byte[samples.Count * size];
        var labels = new int[samples.Count];
        for (var i = 0; i < samples.Count; i++)
        {
            samples[i].Planes.CopyTo(features, i * size);
            labels[i] = index[samples[i].Label.Trim()];
        }

        return new PreparedShard(shape, features, labels);
    }
}

/// <summary>
/// A CSV of pixels: one image per row, a label column (<see cref="ImagesRecipe.LabelColumn"/>) and C·H·W integer pixel
/// columns in row-major order (planes C, then rows), with an optional header and gzip. Width and height come from the
/// spec or a square pixel count (64 → 8×8, 784 → 28×28).
/// </summary>
public static class PixelCsvReader
{
    public static LabeledImages Read(IReadOnlyList<CsvSource> sources, ImagesRecipe recipe, CancellationToken ct = default)
    {
        var problems = new ProblemList();
        var notes = new List<string>();
        var rows = new List<(string Label, byte[] Planes, string Where)>();
        int columns = -1, label = -1;
        int[] shape = [];
        string? currentSource = null;
        var header = false;
        try
        {
            foreach (var record in CsvTableReader.ReadRecords(sources, new CsvOptions { HasHeader = false, AllowRaggedRows = true }))
            {
                if ((rows.Count & 1023) == 0)
                    ct.ThrowIfCancellationRequested();
                var first = record.Source != currentSource;
                currentSource = record.Source;
                if (columns < 0)
                {
                    header = recipe.Header ?? record.Values.Skip(1).Take(record.Values.Length - 2).Any(v => !double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out _));
                    columns = record.Values.Length;
                    label = LabelIndex(recipe.LabelColumn, header ? record.Values : null, columns, out var labelProblem);
                    if (labelProblem is not null)
                    {
                        problems.Add(labelProblem);
                        break;
                    }

                    var pixels = columns - 1;
                    var c = recipe.Channels ?? 1;
                    if (recipe.Width is { } w && recipe.Height is { } h)
                    {
                        if (w * h * c != pixels)
                        {
                            problems.Add($"{record.Source} has {pixels} pixel columns but images.width × height × channels is {w}×{h}×{c} = {w * h * c}");
                            break;
                        }

                        shape = [c, h, w];
                    }
                    else
                    {
                        var side = (int)Math.Round(Math.Sqrt(pixels / (double)c));
                        if (pixels % c != 0 || side * side * c != pixels)
                        {
                            problems.Add($"{record.Source} has {pixels} pixel columns (besides the label), which is not a square image of {c} channel(s); set images.width and images.height");
                            break;
                        }

                        shape = [c, side, side];
                    }

                    notes.Add($"label column {label}{(header ? $" ('{record.Values[label]}')" : "")} of {columns}; {shape[0]}×{shape[1]}×{shape[2]} pixels (channels, height, width){(recipe.Width is null ? ", inferred from the square pixel count" : "")}; {(header ? "with" : "no")} header");
                }

                if (first && header)
                    continue;
                var where = $"{record.Source} line {record.Line}";
                if (record.Values.Length != columns)
                {
                    problems.Add("rows with a wrong pixel count", $"{where} has {record.Values.Length - 1} pixel values, the first row has {columns - 1}");
                    continue;
                }

                var planes = new byte[columns - 1];
                var ok = true;
                for (int col = 0, p = 0; col < columns; col++)
                {
                    if (col == label)
                        continue;
                    var cell = record.Values[col];
                    if (!double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                    {
                        problems.Add("non-numeric pixels", $"{where} column {col}: '{Clip(cell)}' is not a number");
                        ok = false;
                        break;
                    }

                    if (v < 0 || v > recipe.MaxValue || v != Math.Floor(v))
                    {
                        problems.Add("pixels out of range", string.Create(CultureInfo.InvariantCulture, $"{where} column {col}: {v} is outside the pixel range: integers 0..{recipe.MaxValue} (images.maxValue)"));
                        ok = false;
                        break;
                    }

                    planes[p++] = (byte)v;
                }

                var text = record.Values[label].Trim();
                if (TabularTable.Missing(text))
                {
                    problems.Add("missing labels", $"{where}: the label (column {label}) is empty");
                    ok = false;
                }

                if (ok)
                    rows.Add((text, planes, where));
            }
        }
        catch (InvalidDataException e)
        {
            problems.Add(e.Message);
        }

        if (columns < 0)
            problems.Add($"no rows in {string.Join(", ", sources.Select(s => s.Name))}");
        if (shape.Length == 0)
            return new LabeledImages([], [], null, null, problems.ToList(), notes, recipe.MaxValue);
        notes.Add($"{rows.Count:N0} images read");
        return PngFolderReader.Assemble(rows, [], shape, recipe.MaxValue, recipe, problems, notes, "");
    }

    private static int LabelIndex(string? spec, string[]? header, int columns, out string? problem)
    {
        problem = null;
        if (spec is null)
        {
            var named = header is null ? -1 : Array.FindIndex(header, h => string.Equals(h.Trim(), "label", StringComparison.OrdinalIgnoreCase));
            return named >= 0 ? named : 0;
        }

        if (spec.Equals("first", StringComparison.OrdinalIgnoreCase))
            return 0;
        if (spec.Equals("last", StringComparison.OrdinalIgnoreCase))
            return columns - 1;
        if (int.TryParse(spec, NumberStyles.None, CultureInfo.InvariantCulture, out var i))
        {
            if (i < columns)
                return i;
            problem = $"images.labelColumn {i} is past the last column ({columns - 1})";
            return -1;
        }

        var byName = header is null ? -1 : Array.FindIndex(header, h => h.Trim() == spec);
        if (byName < 0)
            problem = header is null
                ? $"images.labelColumn '{spec}' is a name, but the files have no header; use \"first\", \"last\" or an index"
                : $"images.labelColumn '{spec}' is not a header column (columns: {string.Join(", ", header.Take(5))}, …)";
        return byName;
    }

    private static string Clip(string s) => s.Length > 20 ? s[..20] + "…" : s;
}
