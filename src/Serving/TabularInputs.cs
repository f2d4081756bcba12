using System.Globalization;
using MlFunctions.Core.Datasets.Mail;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Transforms;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving;

/// <summary>
/// How a tabular model is served: a request carries one V2 input per raw column, named as in the CSV header
/// (BYTES for any column, or a number type for numeric ones), shape [n] or [n, 1]; the stored
/// <see cref="TabularTransform"/> turns them into the model's one feature tensor [n, F]. The answer adds the
/// predicted class's text (<see cref="LabelOutput"/>) and the class probabilities (<see cref="ProbabilitiesOutput"/>)
/// to the model's logits, so a client never featurizes a row nor decodes an index. A regressor's answer adds
/// <see cref="PredictionOutput"/>: its one output un-standardized by the stored <see cref="TargetScaling"/>, in the label's units.
/// </summary>
internal static class TabularInputs
{
    public const string LabelOutput = "label";
    public const string ProbabilitiesOutput = "probabilities";
    public const string PredictionOutput = TargetScaling.PredictionOutput;

    /// <summary>The raw columns as metadata inputs: numeric ones as FP32 [-1], categorical and text ones as BYTES [-1].</summary>
    public static IReadOnlyList<TensorMetadata> Metadata(TabularTransform table) =>
        table.Columns.Select(c => new TensorMetadata(c.Name, c.Kind == Core.Datasets.ColumnKind.Numeric ? Datatype.FP32 : Datatype.BYTES, [-1])).ToList();

    public static IReadOnlyList<TensorMetadata> DerivedOutputs(TabularTransform table) => table.IsRegression
        ? [new(PredictionOutput, Datatype.FP32, [-1])]
        : [new(LabelOutput, Datatype.BYTES, [-1]), new(ProbabilitiesOutput, Datatype.FP32, [-1, table.Classes.Count])];

    /// <summary>
    /// Encodes the named raw inputs into the model input <paramref name="modelInput"/> [n, F]. Every problem is a
    /// 400: an unknown or missing column, ragged row counts, a bad type, a non-numeric value in a numeric column.
    /// </summary>
    public static InferTensor Encode(TabularTransform table, IReadOnlyList<InferTensor> inputs, string modelInput)
    {
        var byName = new Dictionary<string, InferTensor>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var input in inputs)
        {
            if (!byName.TryAdd(input.Name, input))
                problems.Add($"input '{input.Name}' appears more than once");
        }

        var columns = table.Columns.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        if (table.HasText && !columns.Contains(MailFields.Message) && byName.Remove(MailFields.Message, out var raw))
            ExpandMessage(raw, byName, table, problems);
        var unknown = byName.Keys.Where(k => !columns.Contains(k)).ToList();
        if (unknown.Count > 0)
            problems.Add($"unknown input(s) {string.Join(", ", unknown.Select(u => $"'{u}'"))}; the model takes the raw columns: {string.Join(", ", table.Columns.Select(c => c.Name))}");
        var missing = table.Columns.Where(c => !byName.ContainsKey(c.Name)).Select(c => c.Name).ToList();
        if (missing.Count > 0)
            problems.Add($"missing input(s) {string.Join(", ", missing.Select(m => $"'{m}'"))}: send every column (an empty string or NaN is a missing value, which the transform imputes)");

        long rows = -1;
        foreach (var input in byName.Values.Where(i => columns.Contains(i.Name)))
        {
            if (input.Shape.Length is < 1 or > 2 || (input.Shape.Length == 2 && input.Shape[1] != 1))
                problems.Add($"input '{input.Name}' has shape [{string.Join(",", input.Shape)}]; a column is [n] or [n, 1]");
            else if (rows >= 0 && input.Shape[0] != rows)
                problems.Add($"input '{input.Name}' has {input.Shape[0]} rows, other columns have {rows}");
            else
                rows = input.Shape[0];
            if (input.Data.Length != InferTensor.ElementCount(input.Shape))
                problems.Add($"input '{input.Name}' has {input.Data.Length} values for shape [{string.Join(",", input.Shape)}]");
        }

        foreach (var text in table.Columns.Where(c => c.Kind == Core.Datasets.ColumnKind.Text && byName.TryGetValue(c.Name, out var i) && i.Data is not string[]))
            problems.Add($"input '{text.Name}' is a text field: send it as BYTES (raw text), not {byName[text.Name].Datatype}");

        if (problems.Count > 0)
            throw InferenceError.Invalid(string.Join("; ", problems));
        if (rows <= 0)
            throw InferenceError.Invalid("the request has no rows");

        var width = table.FeatureCount;
        var encoded = new float[rows * width];
        var values = new string?[table.Columns.Count];
        var data = table.Columns.Select(c => byName[c.Name].Data).ToArray();
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < values.Length; c++)
                values[c] = Cell(data[c], r, table.Columns[c].Name);
            try
            {
                table.Encode(values, encoded.AsSpan((int)(r * width), width));
            }
            catch (FormatException e)
            {
                throw InferenceError.Invalid($"row {r}: {e.Message}");
            }
        }

        return new InferTensor(modelInput, Datatype.FP32, [rows, width], encoded);
    }

    /// <summary>
    /// A text model's raw-message input: <c>message</c> (BYTES [n], each an RFC 5322 message, an mbox <c>From </c> line
    /// allowed) is parsed by the ingest's <see cref="MailParser"/> into the columns it derives (subject, body, list, hour,
    /// weekday); a column also sent by name wins, and a column neither sent nor derived (e.g. <c>posted_before</c>,
    /// which needs the archive's history) is a missing value that the stored transform imputes.
    /// </summary>
    private static void ExpandMessage(InferTensor raw, Dictionary<string, InferTensor> byName, TabularTransform table, List<string> problems)
    {
        if (raw.Data is not string[] messages || raw.Shape.Length is < 1 or > 2 || (raw.Shape.Length == 2 && raw.Shape[1] != 1) || messages.Length != raw.Shape[0])
        {
            problems.Add($"input '{MailFields.Message}' is the raw RFC 5322 message: send it as BYTES with shape [n], not {raw.Datatype} [{string.Join(",", raw.Shape)}]");
            return;
        }

        var fields = new IReadOnlyDictionary<string, string>?[messages.Length];
        for (var r = 0; r < messages.Length; r++)
        {
            var (message, reason) = MailParser.ParseRaw(messages[r]);
            if (message is null)
                problems.Add($"input '{MailFields.Message}' row {r} is not a usable mail message: {reason}");
            fields[r] = message?.Fields();
        }

        foreach (var column in table.Columns.Where(c => !byName.ContainsKey(c.Name)))
        {
            var values = fields.Select(f => f is not null && f.TryGetValue(column.Name, out var v) ? v : "").ToArray();
            byName[column.Name] = new InferTensor(column.Name, Datatype.BYTES, [messages.Length], values);
        }
    }

    /// <summary>The label and probability outputs for logits [n, classes]; a regressor's prediction [n] for its output [n, 1].</summary>
    public static IEnumerable<InferTensor> Derive(TabularTransform table, InferTensor logits, IReadOnlyCollection<string> wanted)
    {
        if (table.Target is { } target)
        {
            var z = (float[])logits.Data;
            var y = new float[z.Length];
            for (var r = 0; r < z.Length; r++)
                y[r] = (float)target.Unstandardize(z[r]);
            if (wanted.Contains(PredictionOutput))
                yield return new InferTensor(PredictionOutput, Datatype.FP32, [z.Length], y);
            yield break;
        }

        foreach (var t in DeriveClasses(table.Classes, logits, wanted))
            yield return t;
    }

    /// <summary>The class name (<see cref="LabelOutput"/>) and softmax probabilities for logits [n, classes] (tables and image classifiers).</summary>
    public static IEnumerable<InferTensor> DeriveClasses(IReadOnlyList<string> classNames, InferTensor logits, IReadOnlyCollection<string> wanted)
    {
        var classes = classNames.Count;
        var values = (float[])logits.Data;
        var n = values.Length / classes;
        var labels = new string[n];
        var probabilities = new float[values.Length];
        for (var r = 0; r < n; r++)
        {
            var row = values.AsSpan(r * classes, classes);
            var (best, _, logSumExp) = ClassificationMetrics.Softmax(row);
            for (var c = 0; c < classes; c++)
                probabilities[(r * classes) + c] = (float)Math.Exp(row[c] - logSumExp);
            labels[r] = classNames[best];
        }

        if (wanted.Contains(LabelOutput))
            yield return new InferTensor(LabelOutput, Datatype.BYTES, [n], labels);
        if (wanted.Contains(ProbabilitiesOutput))
            yield return new InferTensor(ProbabilitiesOutput, Datatype.FP32, [n, classes], probabilities);
    }

    private static string? Cell(Array data, int row, string column) => data switch
    {
        string[] s => s[row],
        float[] f => TabularTransform.FromNumber(f[row]),
        double[] d => TabularTransform.FromNumber(d[row]),
        long[] l => l[row].ToString(CultureInfo.InvariantCulture),
        int[] i => i[row].ToString(CultureInfo.InvariantCulture),
        bool[] b => b[row] ? "1" : "0",
        byte[] u => u[row].ToString(CultureInfo.InvariantCulture),
        _ => throw InferenceError.Invalid($"input '{column}' has an unsupported datatype"),
    };
}
