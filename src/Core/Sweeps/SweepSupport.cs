using System.Globalization;

namespace MlFunctions.Core.Sweeps;

/// <summary>
/// Seeded randomness for the algorithms. Every draw comes from a generator seeded by the sweep's seed and
/// the length of the history, never from a clock or shared state, so the same ask replays to the same
/// answer (an orchestration replay, a resumed sweep) while each new ask still gets fresh draws.
/// </summary>
public static class SweepRandom
{
    public static Random Create(long seed, int historyCount, string purpose) =>
        new(SeedFor(seed, historyCount, purpose));

    /// <summary>A 31-bit seed mixed from the inputs with SplitMix64 (string.GetHashCode is randomized per process).</summary>
    public static int SeedFor(long seed, long index, string purpose)
    {
        var h = unchecked((ulong)seed);
        h = Mix(h ^ Mix(unchecked((ulong)index) + 0x9E3779B97F4A7C15UL));
        h = Mix(h ^ Fnv1a(purpose));
        return (int)(h & 0x7FFFFFFF);
    }

    public static ulong Mix(ulong z)
    {
        unchecked
        {
            z += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    private static ulong Fnv1a(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in text)
        {
            hash = unchecked((hash ^ c) * 1099511628211UL);
        }

        return hash;
    }

    /// <summary>An index drawn with the given probabilities (they sum to 1; the last absorbs rounding).</summary>
    public static int PickIndex(this Random random, IReadOnlyList<double> probabilities)
    {
        var pick = random.NextDouble();
        var i = 0;
        for (; i < probabilities.Count - 1; i++)
        {
            pick -= probabilities[i];
            if (pick < 0)
            {
                break;
            }
        }

        return i;
    }

    /// <summary>A standard normal draw (Box–Muller), for the Parzen and GP local search.</summary>
    public static double NextGaussian(this Random random)
    {
        var u1 = 1.0 - random.NextDouble();
        var u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    public static double[] NextUnitVector(this Random random, int dimensions)
    {
        var u = new double[dimensions];
        for (var i = 0; i < u.Length; i++)
        {
            u[i] = random.NextDouble();
        }

        return u;
    }
}

/// <summary>Reads the string settings of a sweep (Katib's algorithmSettings) and collects what is wrong with them.</summary>
public sealed class SettingsReader
{
    private readonly IReadOnlyDictionary<string, string> _settings;
    private readonly HashSet<string> _known;

    public SettingsReader(IReadOnlyDictionary<string, string>? settings, params string[] known)
    {
        _settings = settings ?? new Dictionary<string, string>();
        _known = new HashSet<string>(known, StringComparer.OrdinalIgnoreCase);
    }

    public List<string> Problems { get; } = new();

    /// <summary>Adds a problem for every setting the algorithm does not know (a typo would otherwise be ignored).</summary>
    public SettingsReader RejectUnknown(string algorithm)
    {
        foreach (var key in _settings.Keys.Where(k => !_known.Contains(k)).OrderBy(k => k, StringComparer.Ordinal))
        {
            var known = _known.Count == 0 ? "none" : string.Join(", ", _known.OrderBy(k => k, StringComparer.Ordinal));
            Problems.Add($"Unknown setting '{key}' for {algorithm} (known: {known}).");
        }

        return this;
    }

    public bool Has(string name) => TryGetRaw(name, out _);

    public int Int(string name, int fallback, int min, int max = int.MaxValue)
    {
        if (!TryGetRaw(name, out var raw))
        {
            return fallback;
        }

        if (!int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            var range = max == int.MaxValue ? $">= {min}" : $"between {min} and {max}";
            Problems.Add($"Setting '{name}' must be an integer {range} (it is '{raw}').");
            return fallback;
        }

        return value;
    }

    public bool Bool(string name, bool fallback)
    {
        if (!TryGetRaw(name, out var raw))
        {
            return fallback;
        }

        if (!bool.TryParse(raw, out var value))
        {
            Problems.Add($"Setting '{name}' must be true or false (it is '{raw}').");
            return fallback;
        }

        return value;
    }

    public double Double(string name, double fallback, double minExclusive, double maxInclusive)
    {
        if (!TryGetRaw(name, out var raw))
        {
            return fallback;
        }

        if (!double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            || !double.IsFinite(value) || value <= minExclusive || value > maxInclusive)
        {
            Problems.Add($"Setting '{name}' must be a number in ({minExclusive.ToString(CultureInfo.InvariantCulture)}, {maxInclusive.ToString(CultureInfo.InvariantCulture)}] (it is '{raw}').");
            return fallback;
        }

        return value;
    }

    public bool TryGetRaw(string name, out string value)
    {
        foreach (var pair in _settings)
        {
            if (string.Equals(pair.Key, name, StringComparison.OrdinalIgnoreCase))
            {
                value = pair.Value;
                return true;
            }
        }

        value = string.Empty;
        return false;
    }
}

/// <summary>
/// The history as the model-based algorithms need it: points in unit space, split into finished ones
/// with a loss (the objective, negated when maximizing, so every model minimizes), running ones (no
/// value yet) and failed ones (no value, and never to be taken for good).
/// </summary>
internal sealed class ObservedHistory
{
    public List<double[]> DonePoints { get; } = new();

    public List<double> DoneLosses { get; } = new();

    public List<double[]> RunningPoints { get; } = new();

    public List<double[]> FailedPoints { get; } = new();

    public static ObservedHistory From(SuggestionRequest request)
    {
        var history = new ObservedHistory();
        foreach (var trial in request.History)
        {
            var unit = UnitSpace.TryToUnitVector(request.Space, trial.Parameters);
            if (unit is null)
            {
                continue;
            }

            switch (trial.State)
            {
                case TrialState.Running:
                    history.RunningPoints.Add(unit);
                    break;
                case TrialState.Succeeded or TrialState.EarlyStopped when trial.Objective is { } objective && double.IsFinite(objective):
                    history.DonePoints.Add(unit);
                    history.DoneLosses.Add(Loss(objective, request.Direction));
                    break;
                default:
                    // Failed, or finished without a usable value: treat like a failure.
                    history.FailedPoints.Add(unit);
                    break;
            }
        }

        return history;
    }

    public static double Loss(double objective, ObjectiveDirection direction) =>
        direction == ObjectiveDirection.Maximize ? -objective : objective;
}

/// <summary>The standard normal distribution, for TPE's truncated Parzen windows and GP's expected improvement.</summary>
internal static class Normal
{
    private const double InvSqrt2Pi = 0.3989422804014327;

    public static double Pdf(double z) => InvSqrt2Pi * Math.Exp(-0.5 * z * z);

    public static double Cdf(double z) => 0.5 * Erfc(-z / Math.Sqrt(2.0));

    // Numerical Recipes' erfcc coefficients, highest order last applied first (Horner from the inside).
    private static readonly double[] ErfcCoefficients =
        [-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196, 1.00002368, -1.26551223];

    /// <summary>Complementary error function (Numerical Recipes' Chebyshev fit, relative error below 1.2e-7).</summary>
    public static double Erfc(double x)
    {
        var z = Math.Abs(x);
        var t = 1.0 / (1.0 + (0.5 * z));
        var poly = 0.17087277;
        foreach (var c in ErfcCoefficients)
        {
            poly = c + (t * poly);
        }

        var r = t * Math.Exp(-(z * z) + poly);
        return x >= 0 ? r : 2.0 - r;
    }
}
