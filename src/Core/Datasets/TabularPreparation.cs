using MlFunctions.Core.Transforms;

namespace MlFunctions.Core.Datasets;

/// <summary>How a CSV dataset is prepared: which columns mean what, and how features are encoded.</summary>
public sealed record TabularRecipe
{
    public TabularColumns Columns { get; init; } = new();

    public TabularTransformOptions Transform { get; init; } = new();

    /// <summary>
    /// Cross-validation: the test split is this stratified fold (<see cref="StratifiedSplitter.Folds"/>) and train/val
    /// are cut from the other folds in the train:val ratio; the transform is fitted on that train alone. Null: one split.
    /// </summary>
    public Training.CrossValidationFold? TestFold { get; init; }
}

/// <summary>Per-column statistics of a table (raw values, every row), stored in the validation report.</summary>
public sealed record ColumnProfile(
    string Name,
    ColumnKind Kind,
    bool Inferred,
    long Count,
    long Missing,
    long Distinct,
    double? Min,
    double? Max,
    double? Mean,
    double? Std,
    IReadOnlyList<KeyValuePair<string, long>> TopValues);

/// <summary>The table's schema as used, its columns' statistics and the class balance of the label.</summary>
public sealed record TableProfile(long Rows, string Label, IReadOnlyDictionary<string, long> ClassCounts, IReadOnlyList<ColumnProfile> Columns)
{
    /// <summary>A regression label's statistics (empty <see cref="ClassCounts"/> then); null for a classifier's label.</summary>
    public ColumnProfile? Target { get; init; }

    /// <summary>
    /// A classifier's label that looks like a number to predict: numeric, with more than <see cref="RegressionHintDistinct"/>
    /// distinct values. Reported, never acted on: a spec says <c>"task": "regression"</c> to train it as one.
    /// </summary>
    public string? TaskHint { get; init; }

    /// <summary>Above 20 distinct numeric labels, a table is more likely a regression than a 20-class problem (digits has 10).</summary>
    public const int RegressionHintDistinct = 20;

    /// <summary>One line per column saying what it was taken for and why ("age: numeric (inferred: every value is a number)").</summary>
    public IReadOnlyList<string> Inference => Columns.Select(c =>
        $"{c.Name}: {c.Kind.ToString().ToLowerInvariant()} ({(c.Inferred ? c.Kind == ColumnKind.Numeric ? "inferred: every value is a number" : "inferred: has non-numeric values" : "as named in the spec")})")
        .Concat(Target is { } t ? [string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{t.Name}: regression target (numeric; {t.Distinct} distinct values, mean {t.Mean:G4}, std {t.Std:G4}, range {t.Min:G4}..{t.Max:G4}; standardized on the train split)")] : [])
        .Concat(TaskHint is { } hint ? [hint] : []).ToList();
}

/// <summary>
/// The raw cells of a split's rows, in the transform's column order: evaluation sends them through serving.
/// <see cref="Targets"/> holds a regression split's labels in their own units (its <see cref="Labels"/> are all 0).
/// </summary>
public sealed record RawRows(IReadOnlyList<string> Columns, IReadOnlyList<string?[]> Rows, IReadOnlyList<int> Labels, IReadOnlyList<double>? Targets = null);

/// <summary>What preparing a table produced.</summary>
public sealed record TabularPrepared(
    IReadOnlyDictionary<string, PreparedShard> Shards,
    IReadOnlyDictionary<string, RawRows> Raw,
    TabularTransform Transform,
    TableProfile Profile);

/// <summary>
/// A CSV table to training data, pure: schema (all problems at once), a seeded stratified split, the transform
/// fitted on the train rows only, and every split encoded with it into float shards. The val and test rows are
/// also kept raw, so evaluation scores them through the serving path (raw fields in, the stored transform
/// applied there), exactly as a client's request would be.
/// </summary>
public static class TabularPreparation
{
    public static TableProfile Profile(TabularTable table, IReadOnlyList<TableColumn> features, int label, bool regression = false)
    {
        var columns = new List<ColumnProfile>();
        foreach (var f in features.Append(new TableColumn(table.Header[label], label, ColumnKind.Numeric, Inferred: false)))
        {
            long missing = 0;
            var counts = new Dictionary<string, long>(StringComparer.Ordinal);
            var numbers = new List<double>();
            foreach (var row in table.Rows)
            {
                var cell = row.Values[f.Index];
                if (TabularTable.Missing(cell))
                {
                    missing++;
                    continue;
                }

                if (f.Kind == ColumnKind.Text)
                {
                    // Documents are not values to count: profile their length in tokens instead.
                    numbers.Add(Transforms.TextEncoding.Tokenize(cell, 1).Count);
                    continue;
                }

                var key = cell.Trim();
                counts[key] = counts.GetValueOrDefault(key) + 1;
                if (f.Kind == ColumnKind.Numeric && TabularTable.TryNumber(key, out var x))
                {
                    numbers.Add(x);
                }
            }

            double? mean = numbers.Count > 0 ? numbers.Average() : null;
            columns.Add(new ColumnProfile(
                f.Name,
                f.Kind,
                f.Inferred,
                table.Rows.Count,
                missing,
                counts.Count,
                numbers.Count > 0 ? numbers.Min() : null,
                numbers.Count > 0 ? numbers.Max() : null,
                mean,
                mean is { } m ? Math.Sqrt(numbers.Sum(v => (v - m) * (v - m)) / numbers.Count) : null,
                counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Take(10).ToList()));
        }

        // The last profile is the label's, taken as numeric: a regression target's statistics, or a classifier's hint.
        var labelProfile = columns[^1];
        columns.RemoveAt(columns.Count - 1);
        if (regression)
        {
            return new TableProfile(table.Rows.Count, table.Header[label], new Dictionary<string, long>(), columns) { Target = labelProfile };
        }

        var hint = labelProfile.Mean is not null && labelProfile.Distinct > TableProfile.RegressionHintDistinct && table.Rows.All(r => TabularTable.Missing(r.Values[label]) || TabularTable.TryNumber(r.Values[label], out _))
            ? $"{labelProfile.Name}: label with {labelProfile.Distinct} distinct numeric values, trained as {labelProfile.Distinct} classes; if it is a number to predict, set \"task\": \"regression\""
            : null;
        var classes = table.Rows.Select(r => r.Values[label].Trim()).Where(v => !TabularTable.Missing(v))
            .GroupBy(v => v, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => (long)g.Count(), StringComparer.Ordinal);
        return new TableProfile(table.Rows.Count, table.Header[label], classes, columns) { TaskHint = hint };
    }

    /// <summary>Prepares the table, or throws <see cref="InvalidDataException"/> listing every schema problem.</summary>
    public static TabularPrepared Prepare(TabularTable table, TabularRecipe recipe, double trainFraction, double valFraction, double testFraction, long seed)
    {
        var (features, label, problems) = table.Schema(recipe.Columns);
        if (problems.Count > 0)
        {
            throw new InvalidDataException(string.Join("; ", problems));
        }

        var regression = recipe.Columns.IsRegression;
        int[] labels;
        double[]? targets = null;
        if (regression)
        {
            // One stratum: a seeded random split. Labels are all 0; the targets travel beside the features.
            targets = table.Rows.Select(r => TabularTransform.TargetOf(r, label)).ToArray();
            labels = new int[table.Rows.Count];
        }
        else
        {
            var classes = TabularTransform.ClassesOf(table.Rows.Select(r => r.Values[label]));
            var classIndex = classes.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i, StringComparer.Ordinal);
            labels = table.Rows.Select(r => classIndex[r.Values[label].Trim()]).ToArray();
        }

        var split = recipe.TestFold is { } fold ? FoldSplit(labels, fold, trainFraction, valFraction, seed) : StratifiedSplitter.Split(labels, trainFraction, valFraction, testFraction, seed);
        var transform = TabularTransform.Fit(table, features, label, split.Train, recipe.Transform, regression);

        var shards = new Dictionary<string, PreparedShard>();
        var raw = new Dictionary<string, RawRows>();
        var names = transform.Columns.Select(c => c.Name).ToList();
        foreach (var (name, rows) in new[] { (PreparedLayout.Train, split.Train), (PreparedLayout.Val, split.Val), (PreparedLayout.Test, split.Test) })
        {
            // A regression sample is [F + 1]: the encoded features, then the standardized target (as a denoiser's
            // [2, H, W] carries its input and target), so the shard format and every split operation stay as they are.
            var width = transform.FeatureCount;
            var stride = regression ? width + 1 : width;
            var encoded = new float[rows.Length * stride];
            var cells = new List<string?[]>(rows.Length);
            for (var i = 0; i < rows.Length; i++)
            {
                var record = table.Rows[rows[i]];
                var values = features.Select(f => (string?)record.Values[f.Index]).ToArray();
                try
                {
                    transform.Encode(values, encoded.AsSpan(i * stride, width));
                    if (targets is not null)
                        encoded[(i * stride) + width] = transform.Target!.Standardize(targets[rows[i]]);
                }
                catch (FormatException e)
                {
                    throw new InvalidDataException($"{record.Source} line {record.Line}: {e.Message}", e);
                }

                cells.Add(values);
            }

            var splitLabels = rows.Select(r => labels[r]).ToArray();
            shards[name] = new PreparedShard([stride], encoded, splitLabels);
            if (name != PreparedLayout.Train)
            {
                raw[name] = new RawRows(names, cells, splitLabels, targets is null ? null : rows.Select(r => targets[r]).ToArray());
            }
        }

        return new TabularPrepared(shards, raw, transform, Profile(table, features, label, regression));
    }

    /// <summary>The test split is fold <paramref name="fold"/>; the other folds are split train:val in the given ratio.</summary>
    public static SplitIndices FoldSplit(int[] labels, Training.CrossValidationFold fold, double trainFraction, double valFraction, long seed)
    {
        if (fold.Count < 2 || fold.Index < 0 || fold.Index >= fold.Count)
        {
            throw new ArgumentException($"fold {fold.Index} of {fold.Count} is not a fold; need 0 <= index < count and count >= 2");
        }

        var folds = StratifiedSplitter.Folds(labels, fold.Count, seed);
        var test = Enumerable.Range(0, labels.Length).Where(i => folds[i] == fold.Index).ToArray();
        var rest = Enumerable.Range(0, labels.Length).Where(i => folds[i] != fold.Index).ToArray();
        var inner = StratifiedSplitter.Split(rest.Select(i => labels[i]).ToArray(), trainFraction / (trainFraction + valFraction), valFraction / (trainFraction + valFraction), 0, seed);
        return new SplitIndices(inner.Train.Select(i => rest[i]).ToArray(), inner.Val.Select(i => rest[i]).ToArray(), test);
    }
}
