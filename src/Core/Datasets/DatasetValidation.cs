using System.Globalization;

namespace MlFunctions.Core.Datasets;

/// <summary>What a dataset must satisfy. Null fields are not checked.</summary>
public sealed record DatasetValidationRules
{
    /// <summary>Shape of one sample, e.g. [28, 28] for MNIST images.</summary>
    public int[]? SampleShape { get; init; }

    /// <summary>Each labeled part (e.g. "train", "t10k") needs at least this many samples.</summary>
    public long MinSamples { get; init; } = 1;

    /// <summary>Labels must lie in [0, NumClasses) and every class must occur.</summary>
    public int? NumClasses { get; init; }

    /// <summary>
    /// Largest allowed ratio of the most to the least frequent class. MNIST's is 1.24 (6,742 ones vs
    /// 5,421 fives); a much larger ratio usually means a truncated or mis-joined file.
    /// </summary>
    public double? MaxClassImbalance { get; init; }

    public double? MinValue { get; init; }

    public double? MaxValue { get; init; }

    /// <summary>NaN or infinite feature values (missing CSV cells count as NaN).</summary>
    public bool AllowNonFinite { get; init; }

    /// <summary>For CSV datasets: the label column and whether files have a header. Features are every other column.</summary>
    public int? CsvLabelColumn { get; init; }

    public bool CsvHasHeader { get; init; } = true;

    /// <summary>For CSV tables with named columns (a tabular pipeline): the schema to check, all problems at once.</summary>
    public TabularColumns? Table { get; init; }

    /// <summary>For interaction data (a recommender pipeline): how rows are read and cleaned; the report carries its profile.</summary>
    public InteractionsRecipe? Interactions { get; init; }

    /// <summary>For CT slice pairs (a denoiser): every file is read and every problem listed (<see cref="Imaging.CtPreparation.Problems"/>).</summary>
    public Imaging.CtValidationRules? Ct { get; init; }

    /// <summary>For PNG folders and pixel CSVs: how they are read and the per-class minimum (<see cref="LabeledImages.Profile"/>).</summary>
    public ImagesRecipe? Images { get; init; }

    /// <summary>The table must have at least this many rows (tabular pipelines need enough to split three ways).</summary>
    public int MinRows { get; init; } = 1;

    public static DatasetValidationRules Mnist { get; } = new()
    {
        SampleShape = [28, 28],
        MinSamples = 1,
        NumClasses = 10,
        MaxClassImbalance = 3.0,
        MinValue = 0,
        MaxValue = 255,
    };
}

/// <summary>Streaming statistics of one labeled part: counts, label histogram and value range.</summary>
public sealed class DataProfileBuilder(string name, int[] sampleShape)
{
    private readonly SortedDictionary<int, long> labelCounts = [];
    private long count;
    private long values;
    private long nonFinite;
    private double min = double.PositiveInfinity;
    private double max = double.NegativeInfinity;
    private double sum;
    private double sumSquares;

    public void AddBytes(ReadOnlySpan<byte> features, ReadOnlySpan<int> labels)
    {
        // Bytes cannot be NaN; a 256-bin histogram keeps the per-element work to one increment.
        Span<long> histogram = stackalloc long[256];
        foreach (var b in features)
        {
            histogram[b]++;
        }

        for (var v = 0; v < 256; v++)
        {
            if (histogram[v] == 0)
            {
                continue;
            }

            min = Math.Min(min, v);
            max = Math.Max(max, v);
            sum += (double)v * histogram[v];
            sumSquares += (double)v * v * histogram[v];
        }

        values += features.Length;
        AddLabels(labels);
    }

    public void AddFloats(ReadOnlySpan<float> features, ReadOnlySpan<int> labels)
    {
        foreach (var f in features)
        {
            if (!float.IsFinite(f))
            {
                nonFinite++;
                continue;
            }

            min = Math.Min(min, f);
            max = Math.Max(max, f);
            sum += f;
            sumSquares += (double)f * f;
            values++;
        }

        AddLabels(labels);
    }

    public DataProfile Build()
    {
        var mean = values > 0 ? sum / values : 0;
        var variance = values > 0 ? Math.Max(0, (sumSquares / values) - (mean * mean)) : 0;
        return new DataProfile(
            name,
            sampleShape,
            count,
            labelCounts.ToDictionary(kv => kv.Key, kv => kv.Value),
            values > 0 ? min : null,
            values > 0 ? max : null,
            nonFinite,
            mean,
            Math.Sqrt(variance));
    }

    private void AddLabels(ReadOnlySpan<int> labels)
    {
        foreach (var l in labels)
        {
            labelCounts[l] = labelCounts.GetValueOrDefault(l) + 1;
        }

        count += labels.Length;
    }
}

/// <summary>Statistics of one labeled part of a dataset (raw values, before any transform).</summary>
public sealed record DataProfile(
    string Name,
    int[] SampleShape,
    long Count,
    IReadOnlyDictionary<int, long> LabelCounts,
    double? Min,
    double? Max,
    long NonFiniteValues,
    double Mean,
    double Std);

public sealed record ValidationCheck(string Part, string Check, bool Passed, string Detail);

/// <summary>The validation report, stored as <c>datasets/{name}/{version}/validation.json</c>.</summary>
public sealed record ValidationReport
{
    public const int CurrentSchemaVersion = 1;

    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    public DatasetRef? Dataset { get; init; }

    public required bool Passed { get; init; }

    public required IReadOnlyList<ValidationCheck> Checks { get; init; }

    public required IReadOnlyList<DataProfile> Parts { get; init; }

    public DatasetValidationRules? Rules { get; init; }

    /// <summary>A CSV table's schema as inferred, per-column statistics and class balance (null for IDX).</summary>
    public TableProfile? Table { get; init; }

    /// <summary>Interaction data: rows read and kept, dropped rows by reason, users, items, pairs, density (null otherwise).</summary>
    public InteractionsProfile? Interactions { get; init; }

    public IReadOnlyList<string> Violations => Checks.Where(c => !c.Passed).Select(c => $"{c.Part}: {c.Detail}").ToList();
}

/// <summary>A dataset broke a rule: the message lists every violation, the report has the details.</summary>
public sealed class DatasetValidationException(ValidationReport report)
    : Exception($"dataset {report.Dataset?.Name}/{report.Dataset?.Version} failed validation: {string.Join("; ", report.Violations)}")
{
    public ValidationReport Report { get; } = report;
}

/// <summary>Applies <see cref="DatasetValidationRules"/> to profiles. Pure, so every rule is unit-testable.</summary>
public static class DatasetValidator
{
    public static ValidationReport Validate(IReadOnlyList<DataProfile> parts, DatasetValidationRules rules, DatasetRef? dataset = null, IEnumerable<ValidationCheck>? structural = null)
    {
        var checks = new List<ValidationCheck>(structural ?? []);
        if (parts.Count == 0)
        {
            checks.Add(new("dataset", "parts", false, "no labeled data found: an IDX dataset needs {prefix}-images-idxN-ubyte with {prefix}-labels-idx1-ubyte"));
        }

        foreach (var p in parts)
        {
            checks.AddRange(Check(p, rules));
        }

        return new ValidationReport { Dataset = dataset, Passed = checks.All(c => c.Passed), Checks = checks, Parts = parts, Rules = rules };
    }

    private static IEnumerable<ValidationCheck> Check(DataProfile p, DatasetValidationRules rules)
    {
        if (rules.SampleShape is { } shape)
        {
            var ok = shape.SequenceEqual(p.SampleShape);
            yield return new(p.Name, "shape", ok, ok
                ? $"samples are [{Dims(p.SampleShape)}]"
                : $"samples are [{Dims(p.SampleShape)}], expected [{Dims(shape)}]; the files are not the dataset the rules describe");
        }

        var enough = p.Count >= rules.MinSamples;
        yield return new(p.Name, "count", enough, enough
            ? $"{N(p.Count)} samples"
            : $"{N(p.Count)} samples, at least {N(rules.MinSamples)} required; a part may be missing or truncated");

        if (rules.NumClasses is { } k)
        {
            var outside = p.LabelCounts.Where(kv => kv.Key < 0 || kv.Key >= k).ToList();
            yield return new(p.Name, "label range", outside.Count == 0, outside.Count == 0
                ? $"labels in [0, {k - 1}]"
                : $"{N(outside.Sum(kv => kv.Value))} labels outside [0, {k - 1}] (values {string.Join(", ", outside.Select(kv => kv.Key).Take(10))}); fix the labels or set NumClasses");

            var absent = Enumerable.Range(0, k).Where(c => !p.LabelCounts.ContainsKey(c)).ToList();
            yield return new(p.Name, "classes present", absent.Count == 0, absent.Count == 0
                ? $"all {k} classes present"
                : $"class(es) {string.Join(", ", absent)} never occur; a stratified split and the metrics need every class");
        }

        if (rules.MaxClassImbalance is { } ratioLimit && p.LabelCounts.Count > 0)
        {
            var most = p.LabelCounts.MaxBy(kv => kv.Value);
            var least = p.LabelCounts.MinBy(kv => kv.Value);
            var ratio = (double)most.Value / least.Value;
            var ok = ratio <= ratioLimit;
            yield return new(p.Name, "label distribution", ok,
                $"most frequent class {most.Key} has {N(most.Value)}, least frequent {least.Key} has {N(least.Value)} (ratio {ratio:0.00}, limit {ratioLimit:0.00})" +
                (ok ? string.Empty : "; rebalance or raise MaxClassImbalance if this skew is real"));
        }

        if (!rules.AllowNonFinite)
        {
            var ok = p.NonFiniteValues == 0;
            yield return new(p.Name, "finite values", ok, ok
                ? "no NaN or infinite values"
                : $"{N(p.NonFiniteValues)} NaN/infinite/missing values; impute or drop those rows before registering");
        }

        if (rules.MinValue is { } lo && p.Min is { } min)
        {
            var ok = min >= lo;
            yield return new(p.Name, "minimum value", ok, ok ? $"min {min:G6} ≥ {lo:G6}" : $"min value {min:G6} is below the allowed {lo:G6}");
        }

        if (rules.MaxValue is { } hi && p.Max is { } max)
        {
            var ok = max <= hi;
            yield return new(p.Name, "maximum value", ok, ok ? $"max {max:G6} ≤ {hi:G6}" : $"max value {max:G6} is above the allowed {hi:G6}");
        }
    }

    private static string Dims(int[] d) => string.Join(", ", d);

    private static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
}
