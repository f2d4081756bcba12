using System.Globalization;

namespace MlFunctions.Core.Datasets;

/// <summary>
/// Which columns of a CSV table mean what. Only <see cref="Label"/> is required: every other column is a
/// feature, numeric when all its non-missing cells parse as numbers, else categorical, and the choice is
/// reported (<see cref="ColumnProfile.Inferred"/>). Naming a column overrides the inference; naming one
/// that does not exist is an error, as is a numeric column with a non-numeric cell.
/// </summary>
public sealed record TabularColumns
{
    public string Label { get; init; } = "";

    public IReadOnlyList<string>? Numeric { get; init; }

    public IReadOnlyList<string>? Categorical { get; init; }

    /// <summary>Free-text columns (subject, body): tokenized and TF-IDF weighted by the transform. Never inferred.</summary>
    public IReadOnlyList<string>? Text { get; init; }

    /// <summary>Columns that are not features (ids, free text, leakage).</summary>
    public IReadOnlyList<string> Ignore { get; init; } = [];

    /// <summary>Without a header the columns are named c0..cN-1 (the digits CSV: label "c64").</summary>
    public bool HasHeader { get; init; } = true;

    public char Separator { get; init; } = ',';

    /// <summary>
    /// What the label is: null or <c>classification</c> (its values are classes), or <c>regression</c> (a number to
    /// predict; it must be numeric and not constant). A pipeline spec's top-level <c>task</c> is copied here, so the
    /// schema check, the profile and the transform all see it (absent from recipe hashes when null).
    /// </summary>
    public string? Task { get; init; }

    /// <summary>Whether the label is a number to predict (<see cref="Training.TrainingObjectives.Regression"/>).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsRegression => Training.TrainingObjectives.Normalize(Task) == Training.TrainingObjectives.Regression;

    /// <summary>Problems that need no data: empty names, a column named twice.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(Label))
        {
            problems.Add("columns.label is required: the name of the column to predict");
        }

        var named = (Numeric ?? []).Select(c => ("numeric", c)).Concat((Categorical ?? []).Select(c => ("categorical", c))).Concat((Text ?? []).Select(c => ("text", c))).Concat(Ignore.Select(c => ("ignore", c))).ToList();
        foreach (var (list, column) in named.Where(n => string.IsNullOrWhiteSpace(n.Item2)))
        {
            problems.Add($"columns.{list} has an empty column name");
        }

        foreach (var twice in named.GroupBy(n => n.Item2, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            problems.Add($"column '{twice.Key}' is listed in more than one of numeric/categorical/text/ignore ({string.Join(", ", twice.Select(t => t.Item1))})");
        }

        if (named.Any(n => n.Item2 == Label))
        {
            problems.Add($"the label column '{Label}' cannot also be a feature or ignored");
        }

        if (Training.TrainingObjectives.Normalize(Task) is not (Training.TrainingObjectives.Classification or Training.TrainingObjectives.Regression))
        {
            problems.Add($"task must be {Training.TrainingObjectives.Classification} or {Training.TrainingObjectives.Regression} for a table, got '{Task}'");
        }

        return problems;
    }
}

/// <summary>What a feature column is.</summary>
public enum ColumnKind
{
    Numeric,
    Categorical,

    /// <summary>Free text: tokens → hashed or vocabulary TF-IDF (plus optional flags), see <see cref="Transforms.TextEncoding"/>.</summary>
    Text,
}

/// <summary>One feature column after inference.</summary>
public sealed record TableColumn(string Name, int Index, ColumnKind Kind, bool Inferred);

/// <summary>
/// A CSV table in memory: the header and every row's cells as text, with where each row came from. Tables
/// here are small (the case studies' are at most 42k rows); holding text lets the schema be inferred, the
/// split made and the transform fitted on train rows before anything is encoded.
/// </summary>
public sealed class TabularTable
{
    private TabularTable(IReadOnlyList<string> header, List<CsvRecord> rows)
    {
        Header = header;
        Rows = rows;
    }

    public IReadOnlyList<string> Header { get; }

    public IReadOnlyList<CsvRecord> Rows { get; }

    /// <summary>Reads every row. A ragged row, a header that differs between files or an empty table throws <see cref="InvalidDataException"/> naming the file and line.</summary>
    public static TabularTable Read(IReadOnlyList<CsvSource> sources, TabularColumns columns, int maxRows = 0)
    {
        if (sources.Count == 0)
        {
            throw new InvalidDataException("the dataset has no CSV files");
        }

        var options = new CsvOptions { HasHeader = columns.HasHeader, Separator = columns.Separator };
        IReadOnlyList<string> header;
        try
        {
            header = CsvTableReader.ReadHeader(sources[0], options);
        }
        catch (Exception e) when (e is InvalidDataException or IndexOutOfRangeException or ArgumentException)
        {
            throw new InvalidDataException($"{sources[0].Name}: cannot read the header: {e.Message}", e);
        }

        if (header.Count == 0)
        {
            throw new InvalidDataException($"{sources[0].Name} is empty: no header and no rows");
        }

        var rows = new List<CsvRecord>();
        foreach (var record in CsvTableReader.ReadRecords(sources, options))
        {
            if (record.Values.Length != header.Count)
            {
                throw new InvalidDataException($"{record.Source} line {record.Line} has {record.Values.Length} cells, the header has {header.Count}; every row needs one cell per column");
            }

            rows.Add(record);
            if (maxRows > 0 && rows.Count >= maxRows)
            {
                break;
            }
        }

        if (rows.Count == 0)
        {
            throw new InvalidDataException($"the table ({string.Join(", ", sources.Select(s => s.Name))}) has a header but no data rows");
        }

        return new TabularTable(header, rows);
    }

    /// <summary>A table from records another reader made (mail archives), each naming where it came from.</summary>
    public static TabularTable FromRecords(IReadOnlyList<string> header, IReadOnlyList<CsvRecord> rows)
    {
        if (rows.Any(r => r.Values.Length != header.Count))
        {
            throw new ArgumentException($"every record needs {header.Count} values");
        }

        return new(header, rows.ToList());
    }

    /// <summary>A table from rows in memory (tests, and serving-side checks).</summary>
    public static TabularTable FromRows(IReadOnlyList<string> header, IEnumerable<string[]> rows) =>
        new(header, rows.Select((r, i) => new CsvRecord("rows", i + 2, r)).ToList());

    /// <summary>
    /// The feature columns and the label column's index, or every problem at once: unknown columns, a numeric
    /// column with text in it (file, line and value), a label column with fewer than two values.
    /// </summary>
    public (IReadOnlyList<TableColumn> Features, int Label, IReadOnlyList<string> Problems) Schema(TabularColumns columns)
    {
        var problems = new List<string>(columns.Problems());
        var index = Header.Select((h, i) => (h, i)).GroupBy(x => x.h, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().i, StringComparer.Ordinal);
        foreach (var dup in Header.GroupBy(h => h, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            problems.Add($"the header names column '{dup.Key}' {dup.Count()} times");
        }

        string Known() => string.Join(", ", Header.Take(30)) + (Header.Count > 30 ? $", … ({Header.Count} columns)" : "");
        foreach (var name in new[] { columns.Label }.Concat(columns.Numeric ?? []).Concat(columns.Categorical ?? []).Concat(columns.Text ?? []).Concat(columns.Ignore).Where(n => !string.IsNullOrWhiteSpace(n)))
        {
            if (!index.ContainsKey(name))
            {
                problems.Add($"unknown column '{name}' (the table has: {Known()})");
            }
        }

        var label = index.GetValueOrDefault(columns.Label, -1);
        if (label >= 0 && columns.IsRegression)
        {
            problems.AddRange(RegressionLabelProblems(columns.Label, label));
        }
        else if (label >= 0)
        {
            var classes = Rows.Select(r => r.Values[label].Trim()).Where(v => !Missing(v)).Distinct(StringComparer.Ordinal).Take(2).Count();
            if (classes < 2)
            {
                problems.Add($"label column '{columns.Label}' has {(classes == 0 ? "no values" : "a single class")}; a classifier needs at least two classes");
            }

            var missing = Rows.Where(r => Missing(r.Values[label])).Take(3).ToList();
            if (missing.Count > 0)
            {
                problems.Add($"label column '{columns.Label}' is empty at {string.Join(", ", missing.Select(r => $"{r.Source} line {r.Line}"))}; drop unlabeled rows before training");
            }
        }

        var numeric = new HashSet<string>(columns.Numeric ?? [], StringComparer.Ordinal);
        var categorical = new HashSet<string>(columns.Categorical ?? [], StringComparer.Ordinal);
        var text = new HashSet<string>(columns.Text ?? [], StringComparer.Ordinal);
        var ignore = new HashSet<string>(columns.Ignore, StringComparer.Ordinal);
        var features = new List<TableColumn>();
        for (var c = 0; c < Header.Count; c++)
        {
            var name = Header[c];
            if (c == label || ignore.Contains(name))
            {
                continue;
            }

            if (text.Contains(name))
            {
                features.Add(new TableColumn(name, c, ColumnKind.Text, Inferred: false));
                continue;
            }

            if (categorical.Contains(name))
            {
                features.Add(new TableColumn(name, c, ColumnKind.Categorical, Inferred: false));
                continue;
            }

            var bad = FirstNonNumeric(c);
            if (numeric.Contains(name))
            {
                if (bad is { } row)
                {
                    problems.Add($"numeric column '{name}' has '{row.Values[c]}' at {row.Source} line {row.Line}; fix the value, leave it empty (missing) or declare the column categorical");
                }

                features.Add(new TableColumn(name, c, ColumnKind.Numeric, Inferred: false));
            }
            else
            {
                features.Add(new TableColumn(name, c, bad is null ? ColumnKind.Numeric : ColumnKind.Categorical, Inferred: true));
            }
        }

        if (label >= 0 && features.Count == 0)
        {
            problems.Add("no feature columns are left besides the label and the ignored ones");
        }

        return (features, label, problems);
    }

    /// <summary>
    /// A regression label must be a number in every row (the first few offending cells are named) and take at least two
    /// values: a constant target has nothing to learn, and its standard deviation (the target scaling) would be 0.
    /// </summary>
    private List<string> RegressionLabelProblems(string name, int label)
    {
        var problems = new List<string>();
        var bad = Rows.Where(r => !Missing(r.Values[label]) && !TryNumber(r.Values[label], out _)).Take(3).ToList();
        if (bad.Count > 0)
        {
            problems.Add($"label column '{name}' is not numeric: '{bad[0].Values[label]}' at {string.Join(", ", bad.Select(r => $"{r.Source} line {r.Line}"))}; a regression label must be a number in every row (use task classification for categories)");
        }

        var missing = Rows.Where(r => Missing(r.Values[label])).Take(3).ToList();
        if (missing.Count > 0)
        {
            problems.Add($"label column '{name}' is empty at {string.Join(", ", missing.Select(r => $"{r.Source} line {r.Line}"))}; drop unlabeled rows before training");
        }

        var distinct = Rows.Select(r => TryNumber(r.Values[label], out var y) ? y : double.NaN).Where(double.IsFinite).Distinct().Take(2).Count();
        if (bad.Count == 0 && distinct < 2)
        {
            problems.Add($"label column '{name}' is {(distinct == 0 ? "empty" : "constant")}; a regression target needs at least two distinct values");
        }

        return problems;
    }

    private CsvRecord? FirstNonNumeric(int column)
    {
        foreach (var row in Rows)
        {
            var v = row.Values[column];
            if (!Missing(v) && !TryNumber(v, out _))
            {
                return row;
            }
        }

        return null;
    }

    /// <summary>An empty cell or one of the usual missing markers (NA, NaN, null) is a missing value.</summary>
    public static bool Missing(string? value) =>
        value is null || value.AsSpan().Trim() is var t && (t.IsEmpty || t.Equals("NA", StringComparison.OrdinalIgnoreCase) || t.Equals("NaN", StringComparison.OrdinalIgnoreCase) || t.Equals("null", StringComparison.OrdinalIgnoreCase));

    /// <summary>Invariant-culture numbers; infinities are not numbers a feature can carry.</summary>
    public static bool TryNumber(string value, out double number) =>
        double.TryParse(value.AsSpan().Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out number) && double.IsFinite(number);
}
