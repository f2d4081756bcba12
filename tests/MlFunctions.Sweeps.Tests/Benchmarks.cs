using MlFunctions.Core.Sweeps;

namespace MlFunctions.Sweeps.Tests;

/// <summary>Standard global-optimization test functions, each with its search space and known minimum.</summary>
public sealed record BenchmarkFunction(string Name, SearchSpace Space, Func<double[], double> Function, double Minimum)
{
    public double Evaluate(ParameterSet parameters) =>
        Function(Space.Parameters.Select(p => parameters.GetDouble(p.Name)).ToArray());

    // The functions themselves are the product's stand-in objectives (one definition for trials and tests).

    /// <summary>Branin–Hoo on [−5, 10] × [0, 15]; minimum 0.397887 at three points.</summary>
    public static BenchmarkFunction Branin { get; } = new(
        "Branin (2-D)",
        new SearchSpace([ParameterSpec.Double("x1", -5, 10), ParameterSpec.Double("x2", 0, 15)]),
        x => StandInObjectives.Branin(x),
        StandInObjectives.Minimum("branin"));

    /// <summary>Hartmann 6-D on [0, 1]^6; minimum −3.32237.</summary>
    public static BenchmarkFunction Hartmann6 { get; } = new(
        "Hartmann6 (6-D)",
        new SearchSpace(Enumerable.Range(1, 6).Select(i => ParameterSpec.Double($"x{i}", 0, 1)).ToArray()),
        x => StandInObjectives.Hartmann6(x),
        StandInObjectives.Minimum("hartmann6"));

    /// <summary>Rosenbrock 4-D on [−2, 2]^4; minimum 0 at (1, 1, 1, 1).</summary>
    public static BenchmarkFunction Rosenbrock4 { get; } = new(
        "Rosenbrock (4-D)",
        new SearchSpace(Enumerable.Range(1, 4).Select(i => ParameterSpec.Double($"x{i}", -2, 2)).ToArray()),
        x => StandInObjectives.Rosenbrock(x),
        StandInObjectives.Minimum("rosenbrock"));
}
