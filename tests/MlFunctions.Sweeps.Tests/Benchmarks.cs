using MlFunctions.Core.Sweeps;

namespace MlFunctions.Sweeps.Tests;

/// <summary>Standard global-optimization test functions, each with its search space and known minimum.</summary>
public sealed record BenchmarkFunction(string Name, SearchSpace Space, Func<double[], double> Function, double Minimum)
{
    public double Evaluate(ParameterSet parameters) =>
        Function(Space.Parameters.Select(p => parameters.GetDouble(p.Name)).ToArray());

    /// <summary>Branin–Hoo on [−5, 10] × [0, 15]; minimum 0.397887 at three points.</summary>
    public static BenchmarkFunction Branin { get; } = new(
        "Branin (2-D)",
        new SearchSpace([ParameterSpec.Double("x1", -5, 10), ParameterSpec.Double("x2", 0, 15)]),
        x =>
        {
            const double a = 1, b = 5.1 / (4 * Math.PI * Math.PI), c = 5 / Math.PI, r = 6, s = 10, t = 1 / (8 * Math.PI);
            var u = x[1] - (b * x[0] * x[0]) + (c * x[0]) - r;
            return (a * u * u) + (s * (1 - t) * Math.Cos(x[0])) + s;
        },
        0.397887);

    /// <summary>Hartmann 6-D on [0, 1]^6; minimum −3.32237.</summary>
    public static BenchmarkFunction Hartmann6 { get; } = new(
        "Hartmann6 (6-D)",
        new SearchSpace(Enumerable.Range(1, 6).Select(i => ParameterSpec.Double($"x{i}", 0, 1)).ToArray()),
        x =>
        {
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
                { 0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886 },
                { 0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991 },
                { 0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650 },
                { 0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381 },
            };
            var sum = 0.0;
            for (var i = 0; i < 4; i++)
            {
                var inner = 0.0;
                for (var j = 0; j < 6; j++)
                {
                    inner += a[i, j] * (x[j] - p[i, j]) * (x[j] - p[i, j]);
                }

                sum += alpha[i] * Math.Exp(-inner);
            }

            return -sum;
        },
        -3.32237);

    /// <summary>Rosenbrock 4-D on [−2, 2]^4; minimum 0 at (1, 1, 1, 1).</summary>
    public static BenchmarkFunction Rosenbrock4 { get; } = new(
        "Rosenbrock (4-D)",
        new SearchSpace(Enumerable.Range(1, 4).Select(i => ParameterSpec.Double($"x{i}", -2, 2)).ToArray()),
        x =>
        {
            var sum = 0.0;
            for (var i = 0; i < x.Length - 1; i++)
            {
                sum += (100 * Math.Pow(x[i + 1] - (x[i] * x[i]), 2)) + Math.Pow(1 - x[i], 2);
            }

            return sum;
        },
        0.0);
}
