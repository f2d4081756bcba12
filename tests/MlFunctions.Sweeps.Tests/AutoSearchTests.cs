using MlFunctions.Core.Sweeps;

namespace MlFunctions.Sweeps.Tests;

public sealed class AutoSearchTests
{
    private static readonly SearchSpace Continuous = new([ParameterSpec.Double("x1", -5, 10), ParameterSpec.Int("x2", 0, 15)]);

    private static List<TrialObservation> Finished(SearchSpace space, int count) =>
        SuggestionAlgorithms.Get("random").Suggest(new SuggestionRequest(space, ObjectiveDirection.Minimize, [], count, 4)).Suggestions
            .Select((s, i) => new TrialObservation($"t{i}", s.Parameters, TrialState.Succeeded, i % 7))
            .ToList();

    [Fact]
    public void Categorical_spaces_get_tpe_and_continuous_ones_gp_then_cmaes_from_the_best_so_far()
    {
        var mixed = new SearchSpace([ParameterSpec.Double("lr", 1e-4, 1e-1, ParameterScale.Log), ParameterSpec.Categorical("model", "mlp", "cnn")]);
        Assert.Equal("tpe", AutoSearch.Choose(new SuggestionRequest(mixed, ObjectiveDirection.Minimize, Finished(mixed, 80), 1, 1)).Algorithm);

        Assert.Equal("gp", AutoSearch.Choose(new SuggestionRequest(Continuous, ObjectiveDirection.Minimize, [], 1, 1)).Algorithm);
        var gpPhase = Finished(Continuous, AutoSearch.DefaultGpTrials - 1);

        // Running trials do not count: the switch waits for finished ones.
        gpPhase.Add(gpPhase[0] with { TrialId = "running", State = TrialState.Running, Objective = null });
        Assert.Equal("gp", AutoSearch.Choose(new SuggestionRequest(Continuous, ObjectiveDirection.Minimize, gpPhase, 1, 1)).Algorithm);

        var (algorithm, settings) = AutoSearch.Choose(new SuggestionRequest(Continuous, ObjectiveDirection.Minimize, Finished(Continuous, AutoSearch.DefaultGpTrials), 1, 1));
        Assert.Equal("cmaes", algorithm);
        Assert.Equal(AutoSearch.DefaultGpTrials.ToString(System.Globalization.CultureInfo.InvariantCulture), settings!["nStartup"]);

        // CMA-ES's first generation is centred on the best trial of the GP phase.
        var history = Finished(Continuous, AutoSearch.DefaultGpTrials);
        history[17] = history[17] with { Objective = -100 };
        var progress = new CmaEsSearch().Inspect(new SuggestionRequest(Continuous, ObjectiveDirection.Minimize, history, 1, 1, settings));
        Assert.Equal(UnitSpace.TryToUnitVector(Continuous, history[17].Parameters), progress.Mean);
        Assert.Equal(AutoSearch.DefaultSigma0, progress.Sigma);
    }

    [Fact]
    public void Auto_answers_what_it_delegates_to_and_is_the_default()
    {
        Assert.Equal("auto", new SweepSpec { Name = "n", Parameters = Continuous.Parameters, Objective = new SweepObjective("loss"), Trial = new TrialTemplate() }.Algorithm);
        foreach (var count in new[] { 3, AutoSearch.DefaultGpTrials + 9 })
        {
            var request = new SuggestionRequest(Continuous, ObjectiveDirection.Minimize, Finished(Continuous, count), 2, 8);
            var (name, settings) = AutoSearch.Choose(request);
            var direct = SuggestionAlgorithms.Get(name).Suggest(request with { Settings = settings });
            Assert.Equal(direct.Suggestions.Select(s => s.Parameters.Describe()), SuggestionAlgorithms.Get("auto").Suggest(request).Suggestions.Select(s => s.Parameters.Describe()));
        }

        Assert.Contains(SuggestionAlgorithms.Get("auto").ValidateSettings(Continuous, new Dictionary<string, string> { ["gpTrials"] = "-1" }), p => p.Contains("gpTrials", StringComparison.Ordinal));
    }

    [Fact]
    public void The_gp_sees_log_losses_only_when_their_upper_tail_is_heavy()
    {
        var light = Finished(Continuous, 20);
        var heavy = light.Select((t, i) => t with { Objective = i == 3 ? 1e6 : t.Objective }).ToList();
        string Ask(string name, List<TrialObservation> history) => string.Join(" | ", SuggestionAlgorithms.Get(name)
            .Suggest(new SuggestionRequest(Continuous, ObjectiveDirection.Minimize, history, 2, 5)).Suggestions.Select(s => s.Parameters.Describe()));

        // Losses 0…6 in turn: (max − median) = 3 is not 4 × (median − min) = 12, so auto is plain GP-EI.
        Assert.Equal(Ask("gp", light), Ask("auto", light));

        // One loss of 10⁶: auto's GP is fitted to log losses and so suggests elsewhere than plain GP-EI,
        // and the same as plain GP-EI given those log losses itself.
        Assert.NotEqual(Ask("gp", heavy), Ask("auto", heavy));
        var min = heavy.Min(t => t.Objective!.Value);
        var median = heavy.Select(t => t.Objective!.Value).Order().ElementAt(heavy.Count / 2);
        var logged = heavy.Select(t => t with { Objective = Math.Log(t.Objective!.Value - min + (1e-3 * (median - min))) }).ToList();
        Assert.Equal(Ask("gp", logged), Ask("auto", heavy));
    }
}
