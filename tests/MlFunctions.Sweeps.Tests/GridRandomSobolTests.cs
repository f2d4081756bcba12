using MlFunctions.Core.Sweeps;
using Xunit.Abstractions;

namespace MlFunctions.Sweeps.Tests;

public sealed class GridRandomSobolTests(ITestOutputHelper output)
{
    private static readonly SearchSpace MixedSpace = new(
    [
        ParameterSpec.Double("learningRate", 1e-4, 1e-1, ParameterScale.Log),
        ParameterSpec.Int("layers", 1, 3),
        ParameterSpec.Double("dropout", 0.0, 0.5, step: 0.25),
        ParameterSpec.Categorical("optimizer", "adam", "sgd"),
    ]);

    [Fact]
    public void Grid_covers_every_combination_exactly_once_then_is_exhausted()
    {
        var grid = SuggestionAlgorithms.Get("grid");
        var settings = new Dictionary<string, string> { ["gridPoints"] = "4" };
        var history = new List<TrialObservation>();
        var exhausted = false;
        for (var ask = 0; ask < 100 && !exhausted; ask++)
        {
            var result = grid.Suggest(new SuggestionRequest(MixedSpace, ObjectiveDirection.Minimize, history, 5, 7, settings));
            foreach (var s in result.Suggestions)
            {
                history.Add(new TrialObservation($"t{history.Count}", s.Parameters, history.Count % 3 == 0 ? TrialState.Failed : TrialState.Succeeded, 1.0));
            }

            exhausted = result.Exhausted;
        }

        // 4 log points × 3 ints × 3 steps (0, 0.25, 0.5) × 2 categories.
        Assert.True(exhausted);
        Assert.Equal(4 * 3 * 3 * 2, history.Count);
        Assert.Equal(history.Count, history.Select(t => t.Parameters.Describe()).Distinct().Count());
        Assert.Equal(["0.0001", "0.001", "0.01", "0.1"], history.Select(t => t.Parameters["learningRate"]).Distinct().OrderBy(double.Parse));
        Assert.Equal(["0", "0.25", "0.5"], history.Select(t => t.Parameters["dropout"]).Distinct().OrderBy(double.Parse));
        Assert.Equal(["1", "2", "3"], history.Select(t => t.Parameters["layers"]).Distinct().Order());

        var after = grid.Suggest(new SuggestionRequest(MixedSpace, ObjectiveDirection.Minimize, history, 5, 7, settings));
        Assert.Empty(after.Suggestions);
        Assert.True(after.Exhausted);
    }

    [Fact]
    public void Grid_without_step_uses_grid_points_and_counts_running_trials_as_taken()
    {
        var space = new SearchSpace([ParameterSpec.Double("x", 0, 1)]);
        var grid = SuggestionAlgorithms.Get("grid");
        var first = grid.Suggest(new SuggestionRequest(space, ObjectiveDirection.Minimize, [], 2, 1));
        Assert.Equal(["0", "0.25"], first.Suggestions.Select(s => s.Parameters["x"]));
        Assert.False(first.Exhausted);

        var running = first.Suggestions.Select((s, i) => new TrialObservation($"t{i}", s.Parameters, TrialState.Running, null)).ToList();
        var rest = grid.Suggest(new SuggestionRequest(space, ObjectiveDirection.Minimize, running, 10, 1));
        Assert.Equal(["0.5", "0.75", "1"], rest.Suggestions.Select(s => s.Parameters["x"]));
        Assert.True(rest.Exhausted);
    }

    [Fact]
    public void Random_stays_in_bounds_and_follows_the_scale()
    {
        var space = new SearchSpace(
        [
            ParameterSpec.Double("logLr", 1e-5, 1e-1, ParameterScale.Log),
            ParameterSpec.Double("linLr", 1e-5, 1e-1),
            ParameterSpec.Int("batch", 16, 256, ParameterScale.Log),
            ParameterSpec.Int("units", 10, 100, step: 10),
            ParameterSpec.Double("momentum", 0.5, 0.9, step: 0.1),
        ]);
        var suggestions = SuggestionAlgorithms.Get("random").Suggest(new SuggestionRequest(space, ObjectiveDirection.Minimize, [], 4000, 42)).Suggestions;
        var geometricMean = Math.Sqrt(1e-5 * 1e-1);

        var logLr = suggestions.Select(s => s.Parameters.GetDouble("logLr")).ToArray();
        var linLr = suggestions.Select(s => s.Parameters.GetDouble("linLr")).ToArray();
        Assert.All(logLr, v => Assert.InRange(v, 1e-5, 1e-1));
        Assert.All(linLr, v => Assert.InRange(v, 1e-5, 1e-1));
        var logBelow = logLr.Count(v => v < geometricMean) / (double)logLr.Length;
        var linBelow = linLr.Count(v => v < geometricMean) / (double)linLr.Length;
        output.WriteLine($"fraction below the geometric mean: log {logBelow:F3}, linear {linBelow:F3}");
        Assert.InRange(logBelow, 0.45, 0.55);
        Assert.True(linBelow < 0.05, $"linear fraction {linBelow}");

        var batch = suggestions.Select(s => s.Parameters["batch"]).ToArray();
        Assert.All(batch, v => Assert.InRange(int.Parse(v), 16, 256));
        Assert.True(batch.Count(v => int.Parse(v) < 64) > batch.Length * 0.4, "log-scaled ints favour small values");

        var units = suggestions.Select(s => int.Parse(s.Parameters["units"])).ToArray();
        Assert.All(units, v => Assert.True(v % 10 == 0 && v is >= 10 and <= 100, $"units {v}"));
        Assert.Equal(10, units.Distinct().Count());

        var momentum = suggestions.Select(s => s.Parameters["momentum"]).Distinct().OrderBy(double.Parse).ToArray();
        Assert.Equal(["0.5", "0.6", "0.7", "0.8", "0.9"], momentum);
    }

    [Fact]
    public void Sobol_first_points_match_the_reference_sequence()
    {
        // Unshifted Joe–Kuo Sobol points 1…4 in 3-D (as scipy.stats.qmc.Sobol(scramble=False) gives them).
        var sequence = new SobolSequence(3, seed: null);
        Assert.Equal([0.0, 0.0, 0.0], sequence.Point(0));
        Assert.Equal([0.5, 0.5, 0.5], sequence.Point(1));
        Assert.Equal([0.75, 0.25, 0.25], sequence.Point(2));
        Assert.Equal([0.25, 0.75, 0.75], sequence.Point(3));
        Assert.Equal([0.375, 0.375, 0.625], sequence.Point(4));
    }

    [Fact]
    public void Sobol_points_are_stratified_in_every_dimension_up_to_thirty_two()
    {
        // The first 2^m points of any dimension of a Sobol sequence put exactly one point in each interval
        // [k/2^m, (k+1)/2^m); a wrong direction number (even, or too large) breaks it.
        var sequence = new SobolSequence(SobolSequence.MaxDimensions, seed: 99);
        const int m = 10;
        var points = Enumerable.Range(0, 1 << m).Select(i => sequence.Point(i)).ToArray();
        for (var d = 0; d < SobolSequence.MaxDimensions; d++)
        {
            var cells = points.Select(p => (int)(p[d] * (1 << m))).Distinct().Count();
            Assert.Equal(1 << m, cells);
        }

        // And every two-dimensional projection of the first 2^m points puts 2^m / 16 points in each cell of
        // a 4 × 4 grid (t ≤ m − 4 for the first dimensions; Joe–Kuo were chosen for this property).
        for (var a = 0; a < 10; a++)
        {
            for (var b = a + 1; b < 10; b++)
            {
                var counts = points.GroupBy(p => ((int)(p[a] * 4), (int)(p[b] * 4))).Select(g => g.Count()).ToArray();
                Assert.Equal(16, counts.Length);
                Assert.All(counts, c => Assert.Equal((1 << m) / 16, c));
            }
        }
    }

    [Fact]
    public void Sobol_has_lower_discrepancy_than_random()
    {
        foreach (var dimensions in new[] { 2, 3, 5 })
        {
            var space = new SearchSpace(Enumerable.Range(0, dimensions).Select(i => ParameterSpec.Double($"x{i}", 0, 1)).ToArray());
            double sobol = 0, random = 0;
            const int seeds = 5;
            for (var seed = 0; seed < seeds; seed++)
            {
                sobol += CenteredL2Discrepancy(Points(SuggestionAlgorithms.Get("sobol"), space, seed));
                random += CenteredL2Discrepancy(Points(SuggestionAlgorithms.Get("random"), space, seed));
            }

            output.WriteLine($"{dimensions}-D, 256 points, mean centered L2 discrepancy: sobol {sobol / seeds:E3}, random {random / seeds:E3}");
            Assert.True(sobol < random / 2, $"{dimensions}-D: sobol {sobol / seeds} vs random {random / seeds}");
        }
    }

    [Fact]
    public void Sobol_index_follows_the_history()
    {
        var space = new SearchSpace([ParameterSpec.Double("x", 0, 1), ParameterSpec.Double("y", 0, 1)]);
        var sobol = SuggestionAlgorithms.Get("sobol");
        var all = sobol.Suggest(new SuggestionRequest(space, ObjectiveDirection.Minimize, [], 8, 3)).Suggestions;
        var history = all.Take(5).Select((s, i) => new TrialObservation($"t{i}", s.Parameters, TrialState.Running, null)).ToList();
        var next = sobol.Suggest(new SuggestionRequest(space, ObjectiveDirection.Minimize, history, 3, 3)).Suggestions;
        Assert.Equal(all.Skip(5).Select(s => s.Parameters.Describe()), next.Select(s => s.Parameters.Describe()));
    }

    private static double[][] Points(ISuggestionAlgorithm algorithm, SearchSpace space, long seed) =>
        algorithm.Suggest(new SuggestionRequest(space, ObjectiveDirection.Minimize, [], 256, seed)).Suggestions
            .Select(s => space.Parameters.Select(p => s.Parameters.GetDouble(p.Name)).ToArray()).ToArray();

    /// <summary>Hickernell's centered L2 discrepancy (squared), the measure scipy.stats.qmc.discrepancy defaults to.</summary>
    internal static double CenteredL2Discrepancy(double[][] x)
    {
        var n = x.Length;
        var d = x[0].Length;
        var term1 = Math.Pow(13.0 / 12.0, d);
        var term2 = 0.0;
        foreach (var p in x)
        {
            var prod = 1.0;
            foreach (var v in p)
            {
                var a = Math.Abs(v - 0.5);
                prod *= 1 + (0.5 * a) - (0.5 * a * a);
            }

            term2 += prod;
        }

        var term3 = 0.0;
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j < n; j++)
            {
                var prod = 1.0;
                for (var k = 0; k < d; k++)
                {
                    var a = Math.Abs(x[i][k] - 0.5);
                    var b = Math.Abs(x[j][k] - 0.5);
                    prod *= 1 + (0.5 * a) + (0.5 * b) - (0.5 * Math.Abs(x[i][k] - x[j][k]));
                }

                term3 += prod;
            }
        }

        return term1 - (2.0 / n * term2) + (term3 / (n * n));
    }
}
