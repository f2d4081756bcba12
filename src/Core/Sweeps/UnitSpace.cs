using System.Globalization;

namespace MlFunctions.Core.Sweeps;

/// <summary>
/// The one mapping between parameter values and the unit interval [0, 1] that every algorithm works in:
/// linear or log scale, int rounding and step quantization are decided here and nowhere else, so grid,
/// random, Sobol, TPE, GP and Hyperband all agree on what a point of the space is.
/// </summary>
/// <remarks>
/// Discrete parameters (ints, stepped values, categoricals) give each level an equal share of [0, 1] so a
/// uniform u draws every level equally often (ints widen the range by half a unit at each end, as Optuna
/// does, so the bounds are not drawn half as often as the inner values). <see cref="ToUnit(ParameterSpec, string)"/>
/// returns the centre of a level's share, so a round trip is stable.
/// </remarks>
public static class UnitSpace
{
    /// <summary>The value of <paramref name="p"/> at <paramref name="u"/>, formatted as a parameter string.</summary>
    public static string FromUnit(ParameterSpec p, double u)
    {
        u = Clamp01(u);
        if (p.Kind == ParameterKind.Categorical)
        {
            return p.Values![CategoryIndex(p, u)];
        }

        return Format(p, NumericFromUnit(p, u));
    }

    /// <summary>The numeric value at <paramref name="u"/>, already quantized (int, step) and inside the bounds.</summary>
    public static double NumericFromUnit(ParameterSpec p, double u)
    {
        u = Clamp01(u);
        var (min, max) = Bounds(p);
        if (p.Step is { } step)
        {
            var levels = StepLevels(p);
            int k;
            if (p.Scale == ParameterScale.Log)
            {
                // Log-scaled with a step: sample in log space, then snap to the step grid (in value units).
                var v = Math.Exp(Lerp(Math.Log(min), Math.Log(max), u));
                k = (int)Math.Clamp(Math.Round((v - min) / step, MidpointRounding.AwayFromZero), 0, levels - 1);
            }
            else
            {
                k = Math.Min(levels - 1, (int)Math.Floor(u * levels));
            }

            return Clean(p, min + (k * step));
        }

        if (p.Kind == ParameterKind.Int)
        {
            var lo = min - 0.5;
            var hi = max + 0.5;
            var v = p.Scale == ParameterScale.Log ? Math.Exp(Lerp(Math.Log(lo), Math.Log(hi), u)) : Lerp(lo, hi, u);
            return Math.Clamp(Math.Round(v, MidpointRounding.AwayFromZero), min, max);
        }

        var value = p.Scale == ParameterScale.Log ? Math.Exp(Lerp(Math.Log(min), Math.Log(max), u)) : Lerp(min, max, u);
        return Math.Clamp(value, min, max);
    }

    /// <summary>Where <paramref name="value"/> lies in [0, 1]; the centre of its level for discrete parameters.</summary>
    public static double ToUnit(ParameterSpec p, string value)
    {
        if (p.Kind == ParameterKind.Categorical)
        {
            var index = IndexOf(p, value);
            if (index < 0)
            {
                throw new ArgumentException($"'{value}' is not one of the values of parameter '{p.Name}'.", nameof(value));
            }

            return (index + 0.5) / p.Values!.Count;
        }

        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) || !double.IsFinite(number))
        {
            throw new ArgumentException($"'{value}' is not a number, as parameter '{p.Name}' needs.", nameof(value));
        }

        return NumericToUnit(p, number);
    }

    public static double NumericToUnit(ParameterSpec p, double value)
    {
        var (min, max) = Bounds(p);
        value = Math.Clamp(value, min, max);
        if (p.Step is { } step)
        {
            var levels = StepLevels(p);
            var k = (int)Math.Clamp(Math.Round((value - min) / step, MidpointRounding.AwayFromZero), 0, levels - 1);
            if (p.Scale == ParameterScale.Log)
            {
                return ScaleFraction(min + (k * step), min, max, log: true);
            }

            return (k + 0.5) / levels;
        }

        if (p.Kind == ParameterKind.Int)
        {
            return ScaleFraction(Math.Round(value, MidpointRounding.AwayFromZero), min - 0.5, max + 0.5, p.Scale == ParameterScale.Log);
        }

        return ScaleFraction(value, min, max, p.Scale == ParameterScale.Log);
    }

    /// <summary>
    /// Moves a unit value to where the value it stands for lies (the centre of its category, int or step
    /// level), so a model scores the point that will actually run, and two unit values that give the same
    /// parameters look the same to it.
    /// </summary>
    public static double Snap(ParameterSpec p, double u) =>
        p.Kind == ParameterKind.Categorical
            ? (CategoryIndex(p, u) + 0.5) / p.Values!.Count
            : p.Kind == ParameterKind.Int || p.Step is not null ? NumericToUnit(p, NumericFromUnit(p, u)) : Clamp01(u);

    /// <summary>The category a unit value falls in: [0, 1] split into equal shares.</summary>
    public static int CategoryIndex(ParameterSpec p, double u) =>
        Math.Min(p.Values!.Count - 1, (int)Math.Floor(Clamp01(u) * p.Values.Count));

    public static int IndexOf(ParameterSpec p, string value)
    {
        var values = p.Values!;
        for (var i = 0; i < values.Count; i++)
        {
            if (string.Equals(values[i], value, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>A whole point from a unit vector (one entry per parameter, in space order).</summary>
    public static ParameterSet ToParameterSet(SearchSpace space, IReadOnlyList<double> unit)
    {
        var set = new ParameterSet();
        for (var i = 0; i < space.Parameters.Count; i++)
        {
            set[space.Parameters[i].Name] = FromUnit(space.Parameters[i], unit[i]);
        }

        return set;
    }

    /// <summary>
    /// The unit vector of a recorded point, or null when it does not fit this space (a parameter missing,
    /// a value that is not a number or not a listed category): such a trial is ignored by the models.
    /// </summary>
    public static double[]? TryToUnitVector(SearchSpace space, ParameterSet parameters)
    {
        var unit = new double[space.Parameters.Count];
        for (var i = 0; i < unit.Length; i++)
        {
            var p = space.Parameters[i];
            if (!parameters.TryGetValue(p.Name, out var text))
            {
                return null;
            }

            if (p.Kind == ParameterKind.Categorical)
            {
                var index = IndexOf(p, text);
                if (index < 0)
                {
                    return null;
                }

                unit[i] = (index + 0.5) / p.Values!.Count;
            }
            else
            {
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) || !double.IsFinite(number))
                {
                    return null;
                }

                unit[i] = NumericToUnit(p, number);
            }
        }

        return unit;
    }

    /// <summary>
    /// A canonical text for a point (values re-quantized and re-formatted), so "0.10" and "0.1" or a value
    /// recorded before snapping count as the same point when grid and Hyperband look for what was tried.
    /// </summary>
    public static string? CanonicalKey(SearchSpace space, ParameterSet parameters)
    {
        var parts = new string[space.Parameters.Count];
        for (var i = 0; i < parts.Length; i++)
        {
            var p = space.Parameters[i];
            if (!parameters.TryGetValue(p.Name, out var text))
            {
                return null;
            }

            if (p.Kind == ParameterKind.Categorical)
            {
                parts[i] = text;
                continue;
            }

            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
            {
                return null;
            }

            parts[i] = Format(p, Quantize(p, number));
        }

        return string.Join('\u001f', parts);
    }

    /// <summary>Snaps a numeric value to what the parameter can take: bounds, int, step.</summary>
    public static double Quantize(ParameterSpec p, double value)
    {
        var (min, max) = Bounds(p);
        value = Math.Clamp(value, min, max);
        if (p.Step is { } step)
        {
            var k = Math.Clamp(Math.Round((value - min) / step, MidpointRounding.AwayFromZero), 0, StepLevels(p) - 1);
            return Clean(p, min + (k * step));
        }

        return p.Kind == ParameterKind.Int ? Math.Round(value, MidpointRounding.AwayFromZero) : value;
    }

    /// <summary>The values a grid takes for one parameter, in increasing order.</summary>
    /// <param name="pointsPerNumeric">How many points a numeric parameter without a step gets, spread evenly in its scale.</param>
    public static IReadOnlyList<string> GridValues(ParameterSpec p, int pointsPerNumeric)
    {
        if (p.Kind == ParameterKind.Categorical)
        {
            return p.Values!.ToArray();
        }

        var (min, max) = Bounds(p);
        var values = new List<double>();
        if (p.Step is { } step)
        {
            var levels = StepLevels(p);
            for (var k = 0; k < levels; k++)
            {
                values.Add(Clean(p, min + (k * step)));
            }
        }
        else
        {
            var count = min == max ? 1 : pointsPerNumeric;
            for (var i = 0; i < count; i++)
            {
                var u = count == 1 ? 0.5 : (double)i / (count - 1);
                var v = p.Scale == ParameterScale.Log ? Math.Exp(Lerp(Math.Log(min), Math.Log(max), u)) : Lerp(min, max, u);

                // Land the ends exactly on the bounds, and drop exp/log noise inside (a grid shows 0.001, not
                // 0.0010000000000000002): exp(log(x)) is not always x.
                v = i == 0 ? min : i == count - 1 ? max : p.Scale == ParameterScale.Log ? Clean(p, v) : v;
                values.Add(Quantize(p, v));
            }
        }

        return values.Distinct().Select(v => Format(p, v)).ToArray();
    }

    /// <summary>How a numeric value is written: ints without a fraction, doubles round-trippable.</summary>
    public static string Format(ParameterSpec p, double value) =>
        p.Kind == ParameterKind.Int
            ? ((long)Math.Round(value, MidpointRounding.AwayFromZero)).ToString(CultureInfo.InvariantCulture)
            : ParameterSet.Format(value);

    private static int StepLevels(ParameterSpec p)
    {
        var (min, max) = Bounds(p);

        // The epsilon keeps (1 - 0) / 0.1 = 9.999999999999998 from losing the last level.
        return (int)Math.Floor(((max - min) / p.Step!.Value) + 1e-9) + 1;
    }

    /// <summary>
    /// Removes the float noise of min + k·step (0.30000000000000004) so the recorded parameter reads as
    /// the user wrote the step; 12 significant digits is far below any step a sweep would use.
    /// </summary>
    private static double Clean(ParameterSpec p, double value)
    {
        var (min, max) = Bounds(p);
        var cleaned = double.Parse(value.ToString("G12", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture);
        return Math.Clamp(cleaned, min, max);
    }

    private static (double Min, double Max) Bounds(ParameterSpec p) =>
        (p.Min ?? throw new ArgumentException($"Parameter '{p.Name}' has no min."),
         p.Max ?? throw new ArgumentException($"Parameter '{p.Name}' has no max."));

    private static double ScaleFraction(double value, double min, double max, bool log)
    {
        if (max <= min)
        {
            return 0.5;
        }

        var fraction = log ? (Math.Log(value) - Math.Log(min)) / (Math.Log(max) - Math.Log(min)) : (value - min) / (max - min);
        return Clamp01(fraction);
    }

    private static double Lerp(double a, double b, double u) => a + ((b - a) * u);

    private static double Clamp01(double u) => double.IsNaN(u) ? 0.5 : Math.Clamp(u, 0.0, 1.0);
}
