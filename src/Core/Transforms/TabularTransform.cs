using System.Globalization;
using System.Text.Json.Serialization;
using MlFunctions.Core.Datasets;

namespace MlFunctions.Core.Transforms;

/// <summary>How numeric columns are scaled; fitted on the train split only.</summary>
public enum NumericScaling
{
    /// <summary>(x − mean) / std.</summary>
    Standardize,

    /// <summary>(x − min) / (max − min), so train values land in [0, 1].</summary>
    MinMax,

    None,
}

/// <summary>What replaces a missing numeric cell; fitted on the train split only.</summary>
public enum Imputation
{
    Mean,
    Median,
    Zero,
}

/// <summary>Settings of the tabular transform (the spec's <c>transform</c> block).</summary>
public sealed record TabularTransformOptions
{
    public NumericScaling Numeric { get; init; } = NumericScaling.Standardize;

    public Imputation Impute { get; init; } = Imputation.Mean;

    /// <summary>A category seen fewer times than this in train goes to the out-of-vocabulary slot.</summary>
    public int MinCategoryCount { get; init; } = 1;

    /// <summary>At most this many categories per column keep a slot of their own (the most frequent); the rest share the OOV slot.</summary>
    public int MaxCategories { get; init; } = 256;

    /// <summary>How text columns are tokenized and weighted (null: the defaults; absent from recipe hashes of tables without text).</summary>
    public TextOptions? Text { get; init; }
}

/// <summary>
/// One feature column's fitted encoding. Numeric: one value, <c>(x − Center) / Scale</c>, with
/// <see cref="Fill"/> for a missing cell. Categorical: one-hot over <see cref="Vocabulary"/> plus one
/// out-of-vocabulary slot that also takes missing cells, so a category serving sees for the first time
/// still encodes (TensorFlow Transform's <c>num_oov_buckets=1</c>).
/// </summary>
public sealed record ColumnEncoding
{
    [JsonPropertyName("name")]
    public required string Name { get; init; }

    [JsonPropertyName("kind")]
    public required ColumnKind Kind { get; init; }

    [JsonPropertyName("center")]
    public double Center { get; init; }

    [JsonPropertyName("scale")]
    public double Scale { get; init; } = 1;

    /// <summary>The imputed raw value of a missing numeric cell.</summary>
    [JsonPropertyName("fill")]
    public double Fill { get; init; }

    [JsonPropertyName("vocabulary")]
    public IReadOnlyList<string> Vocabulary { get; init; } = [];

    /// <summary>A text column's tokenization, term slots and idf (null for the other kinds).</summary>
    [JsonPropertyName("text")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public TextEncoding? Text { get; init; }

    /// <summary>Encoded width: 1 for numeric, |vocabulary| + 1 (OOV) for categorical, the term slots and flags for text.</summary>
    [JsonIgnore]
    public int Width => Kind switch
    {
        ColumnKind.Numeric => 1,
        ColumnKind.Text => Text?.Width ?? 0,
        _ => Vocabulary.Count + 1,
    };
}

/// <summary>
/// A regression target's standardization, fitted on the train split: the model learns z = (y − Mean) / Std, and
/// serving answers y = z · Std + Mean, in the label's units. MSE on z trains at the same step sizes whatever the
/// label's scale (a target in the thousands would otherwise need a learning rate 10⁶ smaller).
/// </summary>
public sealed record TargetScaling
{
    /// <summary>The served output a regressor answers in the label's units (serving derives it; evaluation and the smoke test read it).</summary>
    public const string PredictionOutput = "prediction";

    [JsonPropertyName("mean")]
    public double Mean { get; init; }

    [JsonPropertyName("std")]
    public double Std { get; init; } = 1;

    /// <summary>Mean and population standard deviation of <paramref name="train"/>; a constant target is refused.</summary>
    public static TargetScaling Fit(IReadOnlyCollection<double> train)
    {
        if (train.Count == 0)
            throw new ArgumentException("the train split has no targets; cannot fit the target scaling");
        var mean = train.Average();
        var std = Math.Sqrt(train.Sum(y => (y - mean) * (y - mean)) / train.Count);
        if (!(std > 1e-12) || !double.IsFinite(std))
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"the regression target is constant on the train split (every value {mean}); there is nothing to learn"));
        return new TargetScaling { Mean = mean, Std = std };
    }

    public float Standardize(double y) => (float)((y - Mean) / Std);

    public double Unstandardize(float z) => (z * Std) + Mean;
}

/// <summary>
/// The raw-row → feature-vector transform of a tabular model (TensorFlow Transform's promise): fitted on the
/// train split alone, stored with the prepared data and the model version, and applied by serving to the named
/// fields of a request, so a client sends a CSV row's values, never a hand-made vector.
/// </summary>
public sealed record TabularTransform
{
    [JsonPropertyName("columns")]
    public required IReadOnlyList<ColumnEncoding> Columns { get; init; }

    [JsonPropertyName("label")]
    public required string Label { get; init; }

    /// <summary>Class index → the label's text in the data (ordinal order of the train labels).</summary>
    [JsonPropertyName("classes")]
    public required IReadOnlyList<string> Classes { get; init; }

    /// <summary>A regression model's target scaling (null for classifiers, whose <see cref="Classes"/> are then non-empty).</summary>
    [JsonPropertyName("target")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public TargetScaling? Target { get; init; }

    /// <summary>Whether the model predicts a number (<see cref="Target"/>) rather than a class.</summary>
    [JsonIgnore]
    public bool IsRegression => Target is not null;

    [JsonIgnore]
    public int FeatureCount => Columns.Sum(c => c.Width);

    /// <summary>Whether any column is free text (the transform is then stored as kind <c>text</c>).</summary>
    [JsonIgnore]
    public bool HasText => Columns.Any(c => c.Kind == ColumnKind.Text);

    /// <summary>Problems that make the fitted transform unusable: no columns or classes, a text column without its encoding.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Columns is not { Count: > 0 } || (Classes is not { Count: > 0 } && Target is null))
            problems.Add("a tabular transform needs its fitted columns and classes (or, for regression, its target scaling)");
        if (Target is { } t && !(t.Std > 0 && double.IsFinite(t.Std) && double.IsFinite(t.Mean)))
            problems.Add("a regression transform's target std must be positive and finite");
        foreach (var c in Columns ?? [])
        {
            if (c.Kind == ColumnKind.Text)
                problems.AddRange(c.Text is null ? [$"text column '{c.Name}' has no fitted text encoding"] : c.Text.Problems(c.Name));
        }

        return problems;
    }

    /// <summary>
    /// Fits every column on <paramref name="train"/> (rows of <paramref name="table"/>) and maps the label text to class
    /// indices, or, with <paramref name="regression"/>, fits the numeric label's <see cref="TargetScaling"/> on train (no classes).
    /// </summary>
    public static TabularTransform Fit(TabularTable table, IReadOnlyList<TableColumn> features, int labelColumn, IReadOnlyList<int> train, TabularTransformOptions options, bool regression = false)
    {
        if (train.Count == 0)
        {
            throw new ArgumentException("the train split is empty; cannot fit the transform");
        }

        var columns = new List<ColumnEncoding>(features.Count);
        foreach (var f in features)
        {
            columns.Add(f.Kind switch
            {
                ColumnKind.Numeric => FitNumeric(table, f, train, options),
                ColumnKind.Text => new ColumnEncoding { Name = f.Name, Kind = ColumnKind.Text, Text = TextEncoding.Fit(train.Select(r => (string?)table.Rows[r].Values[f.Index]), options.Text ?? new()) },
                _ => FitCategorical(table, f, train, options),
            });
        }

        return new TabularTransform
        {
            Columns = columns,
            Label = table.Header[labelColumn],
            Classes = regression ? [] : ClassesOf(table.Rows.Select(r => r.Values[labelColumn])),
            Target = regression ? TargetScaling.Fit(train.Select(r => TargetOf(table.Rows[r], labelColumn)).ToList()) : null,
        };
    }

    /// <summary>A row's numeric label (the schema check has made sure it is one).</summary>
    public static double TargetOf(CsvRecord row, int labelColumn) =>
        TabularTable.TryNumber(row.Values[labelColumn], out var y) ? y : throw new InvalidDataException($"{row.Source} line {row.Line}: label '{row.Values[labelColumn]}' is not a number");

    /// <summary>
    /// Label texts in class order: numerically when every label is a number ("0" &lt; "2" &lt; "10"), else ordinal.
    /// Taken from all rows, not train alone: a class absent from train would otherwise have no output to score.
    /// </summary>
    public static IReadOnlyList<string> ClassesOf(IEnumerable<string> labels)
    {
        var distinct = labels.Select(l => l.Trim()).Where(l => !TabularTable.Missing(l)).Distinct(StringComparer.Ordinal).ToList();
        return distinct.All(l => TabularTable.TryNumber(l, out _))
            ? distinct.OrderBy(l => double.Parse(l, CultureInfo.InvariantCulture)).ToList()
            : distinct.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Encodes one row. <paramref name="values"/> holds the raw cell of each of <see cref="Columns"/>, in that
    /// order (null = missing). A non-numeric text in a numeric column throws <see cref="FormatException"/>
    /// naming the column, so serving answers 400 with it.
    /// </summary>
    public void Encode(IReadOnlyList<string?> values, Span<float> destination)
    {
        if (values.Count != Columns.Count)
        {
            throw new ArgumentException($"{values.Count} values for {Columns.Count} columns");
        }

        if (destination.Length != FeatureCount)
        {
            throw new ArgumentException($"destination has {destination.Length} slots, the transform writes {FeatureCount}");
        }

        destination.Clear();
        var at = 0;
        for (var c = 0; c < Columns.Count; c++)
        {
            var column = Columns[c];
            var raw = values[c];
            if (column.Kind == ColumnKind.Numeric)
            {
                double x;
                if (TabularTable.Missing(raw))
                {
                    x = column.Fill;
                }
                else if (!TabularTable.TryNumber(raw!, out x))
                {
                    throw new FormatException($"column '{column.Name}' is numeric, but got '{raw}'");
                }

                destination[at] = (float)((x - column.Center) / column.Scale);
            }
            else if (column.Kind == ColumnKind.Text)
            {
                column.Text!.Encode(raw, destination.Slice(at, column.Width));
            }
            else
            {
                var slot = TabularTable.Missing(raw) ? -1 : IndexOf(column.Vocabulary, raw!.Trim());
                destination[at + (slot < 0 ? column.Vocabulary.Count : slot)] = 1f;
            }

            at += column.Width;
        }
    }

    /// <summary>Encodes numeric cells given as numbers (a V2 FP32/FP64 input); NaN is missing.</summary>
    public static string? FromNumber(double value) => double.IsNaN(value) ? null : value.ToString("R", CultureInfo.InvariantCulture);

    private static int IndexOf(IReadOnlyList<string> vocabulary, string value)
    {
        for (var i = 0; i < vocabulary.Count; i++)
        {
            if (string.Equals(vocabulary[i], value, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    private static ColumnEncoding FitNumeric(TabularTable table, TableColumn f, IReadOnlyList<int> train, TabularTransformOptions options)
    {
        var values = new List<double>(train.Count);
        foreach (var r in train)
        {
            var cell = table.Rows[r].Values[f.Index];
            if (!TabularTable.Missing(cell) && TabularTable.TryNumber(cell, out var x))
            {
                values.Add(x);
            }
        }

        // A column that is missing in every train row carries nothing; it encodes as a constant 0.
        if (values.Count == 0)
        {
            return new ColumnEncoding { Name = f.Name, Kind = ColumnKind.Numeric, Center = 0, Scale = 1, Fill = 0 };
        }

        values.Sort();
        var mean = values.Average();
        var fill = options.Impute switch
        {
            Imputation.Mean => mean,
            Imputation.Median => values.Count % 2 == 1 ? values[values.Count / 2] : (values[(values.Count / 2) - 1] + values[values.Count / 2]) / 2,
            _ => 0,
        };
        var (center, scale) = options.Numeric switch
        {
            NumericScaling.Standardize => (mean, Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Count)),
            NumericScaling.MinMax => (values[0], values[^1] - values[0]),
            _ => (0.0, 1.0),
        };

        // A constant column would divide by zero at serving; it stays centred but unscaled.
        return new ColumnEncoding { Name = f.Name, Kind = ColumnKind.Numeric, Center = center, Scale = scale > 1e-12 ? scale : 1, Fill = fill };
    }

    private static ColumnEncoding FitCategorical(TabularTable table, TableColumn f, IReadOnlyList<int> train, TabularTransformOptions options)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var r in train)
        {
            var cell = table.Rows[r].Values[f.Index];
            if (!TabularTable.Missing(cell))
            {
                var key = cell.Trim();
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
        }

        // Most frequent first, ties by text, so the vocabulary (and the one-hot layout) is a function of the data alone.
        var vocabulary = counts.Where(kv => kv.Value >= options.MinCategoryCount)
            .OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Take(options.MaxCategories).Select(kv => kv.Key).ToList();
        return new ColumnEncoding { Name = f.Name, Kind = ColumnKind.Categorical, Vocabulary = vocabulary };
    }
}
