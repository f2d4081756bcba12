using System.Globalization;

namespace MlFunctions.Core.Sweeps;

/// <summary>How a numeric parameter is sampled: uniformly in its value or in its logarithm.</summary>
public enum ParameterScale
{
    Linear,
    Log,
}

/// <summary>The kind of a search-space parameter.</summary>
public enum ParameterKind
{
    Double,
    Int,
    Categorical,
}

/// <summary>
/// One dimension of a search space (Katib's <c>parameters[]</c>): a double or int range, linear or log,
/// with an optional step, or a list of categorical values.
/// </summary>
public sealed record ParameterSpec
{
    public required string Name { get; init; }

    public ParameterKind Kind { get; init; } = ParameterKind.Double;

    public double? Min { get; init; }

    public double? Max { get; init; }

    public ParameterScale Scale { get; init; } = ParameterScale.Linear;

    /// <summary>Optional quantization step (in value units, also on a log scale). Grid uses it as its spacing.</summary>
    public double? Step { get; init; }

    /// <summary>Categorical values (strings; numbers are written in invariant culture).</summary>
    public IReadOnlyList<string>? Values { get; init; }

    public static ParameterSpec Double(string name, double min, double max, ParameterScale scale = ParameterScale.Linear, double? step = null) =>
        new() { Name = name, Kind = ParameterKind.Double, Min = min, Max = max, Scale = scale, Step = step };

    public static ParameterSpec Int(string name, int min, int max, ParameterScale scale = ParameterScale.Linear, int? step = null) =>
        new() { Name = name, Kind = ParameterKind.Int, Min = min, Max = max, Scale = scale, Step = step };

    public static ParameterSpec Categorical(string name, params string[] values) =>
        new() { Name = name, Kind = ParameterKind.Categorical, Values = values };
}

/// <summary>The parameters a sweep searches over, in order.</summary>
public sealed record SearchSpace(IReadOnlyList<ParameterSpec> Parameters);

/// <summary>
/// One point of a search space: parameter name → value as an invariant-culture string, as MLflow records
/// params. Strings keep every kind in one JSON-stable shape (doubles are written round-trippable).
/// </summary>
public sealed class ParameterSet : Dictionary<string, string>
{
    public ParameterSet()
        : base(StringComparer.Ordinal)
    {
    }

    public ParameterSet(IDictionary<string, string> values)
        : base(values, StringComparer.Ordinal)
    {
    }

    public double GetDouble(string name) => double.Parse(this[name], NumberStyles.Float, CultureInfo.InvariantCulture);

    public int GetInt(string name) => (int)Math.Round(GetDouble(name));

    public static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    public static string Format(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A stable text form ("a=1, b=x"), sorted by name, for logs and de-duplication.</summary>
    public string Describe() => string.Join(", ", this.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));
}
