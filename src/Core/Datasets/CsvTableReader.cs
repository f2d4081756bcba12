using System.Globalization;
using System.IO.Compression;
using nietras.SeparatedValues;

namespace MlFunctions.Core.Datasets;

/// <summary>One CSV input: a name for messages and a way to open it (a file, a blob stream).</summary>
public sealed record CsvSource(string Name, Func<Stream> Open)
{
    public static CsvSource FromFile(string path) => new(Path.GetFileName(path), () => File.OpenRead(path));
}

public sealed record CsvOptions
{
    public char Separator { get; init; } = ',';

    /// <summary>Every file starts with the same header row (true for the retail by-day files).</summary>
    public bool HasHeader { get; init; } = true;

    /// <summary>Rows may differ in column count (the caller checks them and reports each, e.g. a pixel CSV's wrong pixel counts).</summary>
    public bool AllowRaggedRows { get; init; }
}

/// <summary>One data row with where it came from (file and 1-based line), so errors can point at it.</summary>
public sealed record CsvRecord(string Source, int Line, string[] Values);

/// <summary>A batch of numeric rows: row-major features and integer labels.</summary>
public sealed record NumericBatch(int FirstRow, int Count, int FeatureCount, float[] Features, int[] Labels);

/// <summary>
/// Tabular datasets over Sep: several files (e.g. one CSV per trading day) read in order as one table,
/// gzip detected by content, one row in memory at a time. Files with a header must all share it, since a
/// reordered column in one day's file would otherwise silently corrupt that day.
/// </summary>
public static class CsvTableReader
{
    /// <summary>The header of the first source (column names), or generated names c0..cN-1 without one.</summary>
    public static IReadOnlyList<string> ReadHeader(CsvSource source, CsvOptions? options = null)
    {
        options ??= new CsvOptions();
        using var stream = OpenDecoded(source);
        using var reader = CreateReader(options).From(stream);
        if (options.HasHeader)
        {
            return reader.Header.ColNames.ToArray();
        }

        return reader.MoveNext() ? Enumerable.Range(0, reader.Current.ColCount).Select(i => $"c{i}").ToArray() : [];
    }

    /// <summary>
    /// Streams the rows of every source in order. <paramref name="columns"/> selects columns by name (with a
    /// header) to keep allocations to what the caller uses; null returns all columns.
    /// </summary>
    public static IEnumerable<CsvRecord> ReadRecords(IEnumerable<CsvSource> sources, CsvOptions? options = null, IReadOnlyList<string>? columns = null)
    {
        options ??= new CsvOptions();
        string[]? firstHeader = null;
        string? firstSource = null;
        foreach (var source in sources)
        {
            using var stream = OpenDecoded(source);
            using var reader = CreateReader(options).From(stream);
            int[]? indices = null;
            if (options.HasHeader)
            {
                var header = reader.Header.ColNames.ToArray();
                if (firstHeader is null)
                {
                    (firstHeader, firstSource) = (header, source.Name);
                }
                else if (!header.SequenceEqual(firstHeader))
                {
                    throw new InvalidDataException(
                        $"{source.Name} has header [{string.Join(",", header)}] but {firstSource} has [{string.Join(",", firstHeader)}]; all files of one table need the same columns in the same order");
                }

                if (columns is not null)
                {
                    indices = columns.Select(c => Array.IndexOf(header, c) is var i and >= 0
                        ? i
                        : throw new InvalidDataException($"{source.Name} has no column '{c}' (columns: {string.Join(", ", header)})")).ToArray();
                }
            }
            else if (columns is not null)
            {
                throw new ArgumentException("column names need a header; use ReadNumeric with column indices for headerless files");
            }

            while (MoveNext(reader, source))
            {
                var record = ToRecord(reader.Current, source, indices);
                yield return record;
            }
        }
    }

    /// <summary>
    /// Streams numeric rows in batches: <paramref name="featureColumns"/> become floats (an empty cell is
    /// NaN, for validation to count), <paramref name="labelColumn"/> an integer. Unparseable text is an
    /// error that names the file, line and column.
    /// </summary>
    public static IEnumerable<NumericBatch> ReadNumeric(IEnumerable<CsvSource> sources, int[] featureColumns, int labelColumn, int batchSize, CsvOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        options ??= new CsvOptions();
        var width = featureColumns.Length;
        var features = new float[batchSize * width];
        var labels = new int[batchSize];
        int n = 0, row = 0, first = 0;
        foreach (var source in sources)
        {
            using var stream = OpenDecoded(source);
            using var reader = CreateReader(options).From(stream);
            while (MoveNext(reader, source))
            {
                ParseNumeric(reader.Current, source, featureColumns, labelColumn, features.AsSpan(n * width, width), out labels[n]);
                n++;
                row++;
                if (n == batchSize)
                {
                    yield return new NumericBatch(first, n, width, features, labels);
                    (features, labels, n, first) = (new float[batchSize * width], new int[batchSize], 0, row);
                }
            }
        }

        if (n > 0)
        {
            yield return new NumericBatch(first, n, width, features[..(n * width)], labels[..n]);
        }
    }

    private static void ParseNumeric(SepReader.Row row, CsvSource source, int[] featureColumns, int labelColumn, Span<float> features, out int label)
    {
        for (var i = 0; i < featureColumns.Length; i++)
        {
            var text = Cell(row, source, featureColumns[i]);
            if (text.IsWhiteSpace())
            {
                features[i] = float.NaN;
            }
            else if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out features[i]))
            {
                throw new InvalidDataException($"{source.Name} line {row.LineNumberFrom} column {featureColumns[i]}: '{text}' is not a number");
            }
        }

        var labelText = Cell(row, source, labelColumn);
        if (!int.TryParse(labelText, NumberStyles.Integer, CultureInfo.InvariantCulture, out label))
        {
            // Labels written as floats ("3.0") are common in exported tables; accept them when integral.
            if (!double.TryParse(labelText, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || d != Math.Floor(d) || Math.Abs(d) > int.MaxValue)
            {
                throw new InvalidDataException($"{source.Name} line {row.LineNumberFrom} column {labelColumn}: label '{labelText}' is not an integer");
            }

            label = (int)d;
        }
    }

    private static ReadOnlySpan<char> Cell(SepReader.Row row, CsvSource source, int column)
    {
        if (column >= row.ColCount)
        {
            throw new InvalidDataException($"{source.Name} line {row.LineNumberFrom} has {row.ColCount} columns; column {column} was asked for");
        }

        return row[column].Span;
    }

    private static CsvRecord ToRecord(SepReader.Row row, CsvSource source, int[]? indices)
    {
        var values = SelectColumns(row, indices ?? [.. Enumerable.Range(0, row.ColCount)]);
        return new CsvRecord(source.Name, row.LineNumberFrom, values);
    }

    private static string[] SelectColumns(SepReader.Row row, int[] indices)
    {
        var values = new string[indices.Length];
        for (var i = 0; i < indices.Length; i++)
        {
            values[i] = row[indices[i]].ToString();
        }

        return values;
    }

    private static bool MoveNext(SepReader reader, CsvSource source)
    {
        try
        {
            return reader.MoveNext();
        }
        catch (InvalidDataException e)
        {
            // Sep reports a ragged row (column count differs from the header) this way; add the file.
            throw new InvalidDataException($"{source.Name}: {e.Message}", e);
        }
    }

    private static SepReaderOptions CreateReader(CsvOptions options) =>
        Sep.New(options.Separator).Reader(o => o with { HasHeader = options.HasHeader, Unescape = true, CultureInfo = CultureInfo.InvariantCulture, DisableColCountCheck = options.AllowRaggedRows });

    /// <summary>Opens a source, transparently gunzipping it when it starts with the gzip magic.</summary>
    internal static Stream OpenDecoded(CsvSource source)
    {
        var stream = source.Open();
        var sniff = new byte[2];
        var got = stream.ReadAtLeast(sniff, 2, throwOnEndOfStream: false);
        var replay = new PrefixedStream(sniff, got, stream, leaveOpen: false);
        return got == 2 && sniff[0] == 0x1F && sniff[1] == 0x8B ? new GZipStream(replay, CompressionMode.Decompress) : replay;
    }
}
