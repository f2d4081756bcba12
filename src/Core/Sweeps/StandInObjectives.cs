namespace MlFunctions.Core.Sweeps;

/// <summary>
/// Closed-form test functions for stand-in trials and the optimizer benchmarks (Surjanovic &amp; Bingham's
/// library of test functions). Each takes parameters named x1..xn.
/// </summary>
public static class StandInObjectives
{
    /// <summary>The metric a stand-in trial reports (minimized by convention).</summary>
    public const string Loss = "loss";

    /// <summary>Also reported: 1 / (1 + loss), so maximize-direction sweeps can be exercised too.</summary>
    public const string Score = "score";

    public static readonly IReadOnlyList<string> Known = ["branin", "hartmann6", "rosenbrock", "ackley", "sphere"];

    public static readonly IReadOnlyList<string> Metrics = [Loss, Score];

    /// <summary>Global minima, for regret.</summary>
    public static double Minimum(string function) => function.ToLowerInvariant() switch
    {
        "branin" => 0.397887,
        "hartmann6" => -3.32237,
        _ => 0,
    };

    public static double Evaluate(string function, ParameterSet p)
    {
        var x = p.Where(kv => kv.Key.Length > 1 && kv.Key[0] == 'x' && int.TryParse(kv.Key.AsSpan(1), out _))
            .OrderBy(kv => int.Parse(kv.Key.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture))
            .Select(kv => p.GetDouble(kv.Key))
            .ToArray();
        return function.ToLowerInvariant() switch
        {
            "branin" => Branin(x),
            "hartmann6" => Hartmann6(x),
            "rosenbrock" => Rosenbrock(x),
            "ackley" => Ackley(x),
            "sphere" => x.Sum(v => v * v),
            _ => throw new ArgumentException($"unknown stand-in function '{function}'; known: {string.Join(", ", Known)}"),
        };
    }

    /// <summary>Branin on x1 ∈ [-5, 10], x2 ∈ [0, 15]; minimum 0.397887 at three points.</summary>
    public static double Branin(IReadOnlyList<double> x)
    {
        Need(x, 2, "branin");
        const double a = 1, b = 5.1 / (4 * Math.PI * Math.PI), c = 5 / Math.PI, r = 6, s = 10, t = 1 / (8 * Math.PI);
        var (x1, x2) = (x[0], x[1]);
        return a * Math.Pow(x2 - b * x1 * x1 + c * x1 - r, 2) + s * (1 - t) * Math.Cos(x1) + s;
    }

    /// <summary>Hartmann 6-D on [0, 1]^6; minimum −3.32237.</summary>
    public static double Hartmann6(IReadOnlyList<double> x)
    {
        Need(x, 6, "hartmann6");
        double[] alpha = [1.0, 1.2, 3.0, 3.2];
        double[,] a =
        {
            { 10, 3, 17, 3.5, 1.7, 8 },
            { 0.05, 10, 17, 0.1, 8, 14 },
            { 3, 3.5, 1.7, 10, 17, 8 },
            { 17, 8, 0.05, 10, 0.1, 14 },
        };
        double[,] p =
        {
            { 1312, 1696, 5569, 124, 8283, 5886 },
            { 2329, 4135, 8307, 3736, 1004, 9991 },
            { 2348, 1451, 3522, 2883, 3047, 6650 },
            { 4047, 8828, 8732, 5743, 1091, 381 },
        };
        var sum = 0.0;
        for (var i = 0; i < 4; i++)
        {
            var inner = 0.0;
            for (var j = 0; j < 6; j++)
                inner += a[i, j] * Math.Pow(x[j] - p[i, j] * 1e-4, 2);
            sum += alpha[i] * Math.Exp(-inner);
        }

        return -sum;
    }

    /// <summary>Rosenbrock in n ≥ 2 dimensions; minimum 0 at (1, …, 1).</summary>
    public static double Rosenbrock(IReadOnlyList<double> x)
    {
        Need(x, 2, "rosenbrock", exact: false);
        var sum = 0.0;
        for (var i = 0; i < x.Count - 1; i++)
            sum += 100 * Math.Pow(x[i + 1] - x[i] * x[i], 2) + Math.Pow(1 - x[i], 2);
        return sum;
    }

    /// <summary>Ackley in n ≥ 1 dimensions (a = 20, b = 0.2, c = 2π): a near-flat, bumpy plain around one deep well; minimum 0 at the origin.</summary>
    public static double Ackley(IReadOnlyList<double> x)
    {
        Need(x, 1, "ackley", exact: false);
        var squares = 0.0;
        var cosines = 0.0;
        foreach (var v in x)
        {
            squares += v * v;
            cosines += Math.Cos(2 * Math.PI * v);
        }

        return -20 * Math.Exp(-0.2 * Math.Sqrt(squares / x.Count)) - Math.Exp(cosines / x.Count) + 20 + Math.E;
    }

    /// <summary>
    /// The usual search domain of each function (Surjanovic &amp; Bingham): Branin [−5, 10] × [0, 15],
    /// Hartmann6 [0, 1]^6, Rosenbrock [−5, 10]^n, Ackley [−32.768, 32.768]^n, sphere [−5.12, 5.12]^n.
    /// </summary>
    public static SearchSpace StandardSpace(string function, int dimensions)
    {
        ParameterSpec[] Cube(double lo, double hi) => Enumerable.Range(1, dimensions).Select(i => ParameterSpec.Double($"x{i}", lo, hi)).ToArray();
        return new SearchSpace(function.ToLowerInvariant() switch
        {
            "branin" => [ParameterSpec.Double("x1", -5, 10), ParameterSpec.Double("x2", 0, 15)],
            "hartmann6" => Cube(0, 1),
            "rosenbrock" => Cube(-5, 10),
            "ackley" => Cube(-32.768, 32.768),
            "sphere" => Cube(-5.12, 5.12),
            _ => throw new ArgumentException($"unknown stand-in function '{function}'; known: {string.Join(", ", Known)}"),
        });
    }

    /// <summary>
    /// A learning curve that converges to the trial's final loss: epoch e of E reports
    /// loss · (1 + 1.5 · (E − e) / E), so early epochs look worse and the median rule has a trend to judge.
    /// </summary>
    public static IReadOnlyList<double> Curve(double finalLoss, int epochs)
    {
        var offset = Math.Abs(finalLoss) + 1;
        return Enumerable.Range(1, epochs).Select(e => finalLoss + 1.5 * offset * (epochs - e) / epochs).ToArray();
    }

    private static void Need(IReadOnlyList<double> x, int n, string name, bool exact = true)
    {
        if (exact ? x.Count != n : x.Count < n)
            throw new ArgumentException($"{name} needs {(exact ? "exactly" : "at least")} {n} parameters named x1..x{n}, got {x.Count}");
    }
}
