using System.Diagnostics;
using System.Globalization;
using System.Text;
using MlFunctions.Core.Sweeps;
using Xunit.Abstractions;

namespace MlFunctions.Sweeps.Tests;

/// <summary>
/// The model-based algorithms must earn their cost: at the same number of evaluations, TPE and GP-EI must
/// find better values than random search on standard test functions, averaged over seeds.
/// </summary>
public sealed class OptimizerComparisonTests(ITestOutputHelper output)
{
    private const int Seeds = 10;

    [Fact]
    public void Tpe_and_gp_beat_random_search_at_an_equal_budget()
    {
        var functions = new[] { (BenchmarkFunction.Branin, 40), (BenchmarkFunction.Hartmann6, 60), (BenchmarkFunction.Rosenbrock4, 50) };
        var algorithms = new[] { "random", "tpe", "gp" };
        var table = new StringBuilder();
        table.AppendLine(CultureInfo.InvariantCulture, $"{"function",-18} {"budget",6} {"algorithm",-9} {"mean best",12} {"std",10} {"mean regret",12} {"wins vs random",15} {"seconds",8}");
        var failures = new List<string>();

        foreach (var (function, budget) in functions)
        {
            var results = new Dictionary<string, double[]>();
            foreach (var name in algorithms)
            {
                var clock = Stopwatch.StartNew();
                // Seeds are independent runs, each a pure function of its seed: running them in parallel keeps the
                // results identical and the test short.
                var found = new double[Seeds];
                Parallel.For(0, Seeds, seed => found[seed] = BestFound(SuggestionAlgorithms.Get(name), function, budget, 1000 + seed));
                results[name] = found;
                var best = results[name];
                var mean = best.Average();
                var std = Math.Sqrt(best.Sum(v => (v - mean) * (v - mean)) / (best.Length - 1));
                var wins = name == "random" ? "-" : $"{Enumerable.Range(0, Seeds).Count(i => best[i] < results["random"][i])}/{Seeds}";
                table.AppendLine(CultureInfo.InvariantCulture, $"{function.Name,-18} {budget,6} {name,-9} {mean,12:F4} {std,10:F4} {mean - function.Minimum,12:F4} {wins,15} {clock.Elapsed.TotalSeconds,8:F2}");
            }

            foreach (var name in new[] { "tpe", "gp" })
            {
                if (!(results[name].Average() < results["random"].Average()))
                {
                    failures.Add($"{name} on {function.Name}: mean best {results[name].Average():F4} is not below random's {results["random"].Average():F4}");
                }
            }
        }

        output.WriteLine(table.ToString());

        // The console logger shows a passing test's ITestOutputHelper text only at detailed verbosity; the
        // comparison is the point of the test, so it goes to the runner's console too.
        Console.WriteLine(table.ToString());
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }

    /// <summary>A sequential ask/tell loop: ask for one point, evaluate it, append it to the history.</summary>
    internal static double BestFound(ISuggestionAlgorithm algorithm, BenchmarkFunction function, int budget, long seed)
    {
        var history = new List<TrialObservation>();
        var best = double.PositiveInfinity;
        for (var i = 0; i < budget; i++)
        {
            var result = algorithm.Suggest(new SuggestionRequest(function.Space, ObjectiveDirection.Minimize, history, 1, seed));
            var parameters = result.Suggestions.Single().Parameters;
            var value = function.Evaluate(parameters);
            best = Math.Min(best, value);
            history.Add(new TrialObservation($"t{i:D3}", parameters, TrialState.Succeeded, value));
        }

        return best;
    }
}
