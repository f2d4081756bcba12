using System.Globalization;
using System.Text.Json;
using MlFunctions.Core.Json;
using MlFunctions.Core.Sweeps;
using Xunit.Abstractions;

namespace MlFunctions.Sweeps.Tests;

public sealed class CmaEsTests(ITestOutputHelper output)
{
    private static readonly CmaEsSearch Cma = new();

    private static SearchSpace Cube(int n, double lo, double hi) =>
        new(Enumerable.Range(1, n).Select(i => ParameterSpec.Double($"x{i}", lo, hi)).ToArray());

    private static double Sphere(double[] x) => x.Sum(v => v * v);

    /// <summary>Rastrigin: a local minimum at every integer point, the global one 0 at the origin.</summary>
    private static double Rastrigin(double[] x) => (10 * x.Length) + x.Sum(v => (v * v) - (10 * Math.Cos(2 * Math.PI * v)));

    private static double[] Point(SearchSpace space, ParameterSet p) => space.Parameters.Select(s => p.GetDouble(s.Name)).ToArray();

    /// <summary>An ask/tell loop that asks <paramref name="batch"/> points at a time and tells them all before the next ask.</summary>
    private static List<TrialObservation> Run(SearchSpace space, Func<double[], double> f, int budget, long seed, int batch = 1, IReadOnlyDictionary<string, string>? settings = null)
    {
        var history = new List<TrialObservation>();
        while (history.Count < budget)
        {
            var ask = new SuggestionRequest(space, ObjectiveDirection.Minimize, history, Math.Min(batch, budget - history.Count), seed, settings);
            foreach (var s in Cma.Suggest(ask).Suggestions)
            {
                history.Add(new TrialObservation($"t{history.Count:D4}", s.Parameters, TrialState.Succeeded, f(Point(space, s.Parameters))));
            }
        }

        return history;
    }

    [Fact]
    public void Same_history_and_seed_give_the_same_suggestions_and_another_seed_others()
    {
        var space = Cube(3, -1, 1);
        var history = Run(space, Sphere, 23, seed: 5);
        history.Add(history[^1] with { TrialId = "running", State = TrialState.Running, Objective = null });
        string Ask(long seed) => string.Join(" | ", Cma.Suggest(new SuggestionRequest(space, ObjectiveDirection.Minimize, history, 3, seed)).Suggestions.Select(s => s.Parameters.Describe()));

        Assert.Equal(Ask(5), Ask(5));
        Assert.Equal(Ask(5), string.Join(" | ", new CmaEsSearch().Suggest(new SuggestionRequest(space, ObjectiveDirection.Minimize, history.ToList(), 3, 5)).Suggestions.Select(s => s.Parameters.Describe())));
        Assert.NotEqual(Ask(5), Ask(6));
        Assert.Equal(Run(space, Sphere, 40, seed: 9).Select(t => t.Parameters.Describe()), Run(space, Sphere, 40, seed: 9).Select(t => t.Parameters.Describe()));
    }

    [Fact]
    public void Resuming_from_a_recorded_history_prefix_continues_the_uninterrupted_run()
    {
        // The uninterrupted run asks 3 at a time (a parallel sweep); the resumed one is a fresh instance
        // given the JSON-recorded prefix with the last asked points still running, as after a crash.
        var space = new SearchSpace([ParameterSpec.Double("x1", -3, 3), ParameterSpec.Double("x2", 1e-4, 1, ParameterScale.Log), ParameterSpec.Int("units", 8, 256)]);
        double F(double[] x) => Math.Pow(x[0] - 1, 2) + Math.Pow(Math.Log10(x[1]) + 2, 2) + Math.Pow((x[2] - 100) / 50, 2);
        var full = Run(space, F, 60, seed: 21, batch: 3);

        foreach (var cut in new[] { 0, 7, 18, 31, 45 })
        {
            var prefix = full.Take(cut).Concat(full.Skip(cut).Take(2).Select(t => t with { State = TrialState.Running, Objective = null })).ToList();
            var json = JsonSerializer.Serialize(new SuggestionRequest(space, ObjectiveDirection.Minimize, prefix, 1, 21), MlJson.Options);
            var resumed = new CmaEsSearch().Suggest(JsonSerializer.Deserialize<SuggestionRequest>(json, MlJson.Options)!).Suggestions.Single();
            Assert.Equal(full[cut + 2].Parameters.Describe(), resumed.Parameters.Describe());
        }

        // One at a time or a whole generation (λ = 4 + ⌊3 ln 3⌋ = 7) at once: the same points, since member k
        // of a generation is drawn from its own seed. (A batch of 3 differs: its asks straddle generation ends,
        // so some members are drawn before the generation's update, as parallel workers must be.)
        Assert.Equal(Run(space, F, 42, seed: 21, batch: 7).Select(t => t.Parameters.Describe()), Run(space, F, 42, seed: 21, batch: 1).Select(t => t.Parameters.Describe()));
    }

    [Fact]
    public void Converges_on_sphere_and_rosenbrock()
    {
        var sphere = Run(Cube(4, -2, 2), Sphere, 600, seed: 3, batch: 8);
        var rosenbrock = Run(Cube(4, -2, 2), x => StandInObjectives.Rosenbrock(x), 2400, seed: 3, batch: 8);
        var bestSphere = sphere.Min(t => t.Objective!.Value);
        var bestRosenbrock = rosenbrock.Min(t => t.Objective!.Value);
        output.WriteLine($"sphere-4 best after 600: {bestSphere:E2}; rosenbrock-4 best after 2400: {bestRosenbrock:E2}");

        // Random search over 600 points of [-2, 2]^4 reaches about 0.3 on the sphere; CMA-ES's linear
        // convergence goes far below, until the 1e-4-of-range step-size floor (about 1e-7 here).
        Assert.True(bestSphere < 1e-5, $"sphere best {bestSphere}");
        Assert.True(bestRosenbrock < 1e-4, $"rosenbrock best {bestRosenbrock}");
    }

    [Fact]
    public void Ipop_restarts_with_a_doubled_population_on_a_multimodal_function()
    {
        var space = Cube(2, -5.12, 5.12);
        var history = Run(space, Rastrigin, 1500, seed: 7, batch: 6);
        var progress = Cma.Inspect(new SuggestionRequest(space, ObjectiveDirection.Minimize, history, 1, 7));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"rastrigin-2 after 1500: restarts {progress.Restarts}, λ {progress.PopulationSize}, best {history.Min(t => t.Objective!.Value):F4}"));
        Assert.True(progress.Restarts >= 1, "no restart in 1500 evaluations");
        Assert.Equal(6 << progress.Restarts, progress.PopulationSize);
    }

    [Fact]
    public void Categoricals_are_chosen_by_tpe_and_an_all_categorical_space_is_searched()
    {
        var space = new SearchSpace([ParameterSpec.Double("x", -1, 1), ParameterSpec.Categorical("opt", "adam", "sgd", "rmsprop")]);
        var history = new List<TrialObservation>();
        for (var i = 0; i < 60; i++)
        {
            var s = Cma.Suggest(new SuggestionRequest(space, ObjectiveDirection.Minimize, history, 1, 2)).Suggestions.Single();
            var loss = Math.Pow(s.Parameters.GetDouble("x") - 0.4, 2) + (s.Parameters["opt"] == "rmsprop" ? 0 : 1);
            history.Add(new TrialObservation($"t{i}", s.Parameters, TrialState.Succeeded, loss));
        }

        Assert.Equal(3, history.Select(t => t.Parameters["opt"]).Distinct().Count());
        Assert.True(history.Skip(40).Count(t => t.Parameters["opt"] == "rmsprop") >= 14, "rmsprop not learned");

        var categorical = new SearchSpace([ParameterSpec.Categorical("a", "p", "q"), ParameterSpec.Categorical("b", "r", "s", "t")]);
        Assert.Equal(2, Cma.Suggest(new SuggestionRequest(categorical, ObjectiveDirection.Minimize, [], 2, 1)).Suggestions.Count);
    }

    [Fact]
    public void Jacobi_decomposition_reconstructs_a_symmetric_matrix()
    {
        var random = new Random(4);
        const int n = 7;
        var a = new double[n, n];
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j <= i; j++)
            {
                a[i, j] = a[j, i] = random.NextDouble() - 0.5;
            }
        }

        var (values, b) = SymmetricEigen.Decompose(a);
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j < n; j++)
            {
                var reconstructed = 0.0;
                var orthogonal = 0.0;
                for (var k = 0; k < n; k++)
                {
                    reconstructed += b[i, k] * values[k] * b[j, k];
                    orthogonal += b[k, i] * b[k, j];
                }

                Assert.Equal(a[i, j], reconstructed, 12);
                Assert.Equal(i == j ? 1.0 : 0.0, orthogonal, 12);
            }
        }
    }
}
