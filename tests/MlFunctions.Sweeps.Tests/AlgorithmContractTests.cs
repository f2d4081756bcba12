using System.Text.Json;
using MlFunctions.Core.Json;
using MlFunctions.Core.Sweeps;

namespace MlFunctions.Sweeps.Tests;

public sealed class AlgorithmContractTests
{
    private static readonly SearchSpace Space = new(
    [
        ParameterSpec.Double("x", -1, 1),
        ParameterSpec.Int("width", 8, 64, ParameterScale.Log),
        ParameterSpec.Categorical("optimizer", "adam", "sgd", "rmsprop"),
    ]);

    private static readonly Dictionary<string, IReadOnlyDictionary<string, string>?> SettingsFor = new()
    {
        ["grid"] = null,
        ["random"] = null,
        ["sobol"] = null,
        ["tpe"] = null,
        ["gp"] = null,
        ["cmaes"] = null,
        ["auto"] = null,
        ["hyperband"] = new Dictionary<string, string> { ["maxEpochs"] = "9" },
        ["pbt"] = new Dictionary<string, string> { ["population"] = "8", ["generations"] = "5", ["frozen"] = "" },
    };

    /// <summary>Low when x is near 0.3 and the optimizer is sgd; width barely matters.</summary>
    private static double Loss(ParameterSet p) =>
        Math.Pow(p.GetDouble("x") - 0.3, 2) + (p["optimizer"] == "sgd" ? 0 : 1) + (0.001 * p.GetInt("width"));

    public static TheoryData<string> Names() => new(SuggestionAlgorithms.Names);

    [Theory]
    [MemberData(nameof(Names))]
    public void Same_request_gives_the_same_suggestions(string name)
    {
        var algorithm = SuggestionAlgorithms.Get(name);
        var history = RunLoop(algorithm, name, 14);
        history.Add(history[^1] with { TrialId = "running", State = TrialState.Running, Objective = null });
        var request = new SuggestionRequest(Space, ObjectiveDirection.Minimize, history, 3, 11, SettingsFor[name]);

        // Through JSON and back, as an orchestration records the request: still the same answer.
        var replayed = JsonSerializer.Deserialize<SuggestionRequest>(JsonSerializer.Serialize(request, MlJson.Options), MlJson.Options)!;
        var first = Describe(algorithm.Suggest(request));
        Assert.Equal(first, Describe(algorithm.Suggest(request)));
        Assert.Equal(first, Describe(algorithm.Suggest(replayed)));
        Assert.NotEmpty(first);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Categoricals_and_ints_are_handled(string name)
    {
        var algorithm = SuggestionAlgorithms.Get(name);
        Assert.Empty(algorithm.ValidateSettings(Space, SettingsFor[name]));
        var history = RunLoop(algorithm, name, 40);
        Assert.All(history, t =>
        {
            Assert.Contains(t.Parameters["optimizer"], Space.Parameters[2].Values!);
            Assert.InRange(int.Parse(t.Parameters["width"]), 8, 64);
            Assert.InRange(t.Parameters.GetDouble("x"), -1, 1);
        });
        Assert.Equal(3, history.Select(t => t.Parameters["optimizer"]).Distinct().Count());

        // The model-based ones learn that sgd is the good optimizer.
        if (name is "tpe" or "gp" or "cmaes" or "auto")
        {
            var late = history.Skip(25).Count(t => t.Parameters["optimizer"] == "sgd");
            Assert.True(late >= 10, $"{name} chose sgd {late} times in its last 15 trials");
        }
    }

    [Theory]
    [InlineData("tpe")]
    [InlineData("gp")]
    public void Model_based_search_does_not_resuggest_running_points_and_survives_failures(string name)
    {
        var algorithm = SuggestionAlgorithms.Get(name);
        var history = RunLoop(algorithm, name, 15);
        var batch = algorithm.Suggest(new SuggestionRequest(Space, ObjectiveDirection.Minimize, history, 4, 3)).Suggestions;
        Assert.Equal(4, batch.Select(s => s.Parameters.Describe()).Distinct().Count());

        var next = algorithm.Suggest(new SuggestionRequest(Space, ObjectiveDirection.Minimize, history, 1, 3)).Suggestions.Single();
        var withRunning = history.Append(new TrialObservation("running", next.Parameters, TrialState.Running, null)).ToList();
        var after = algorithm.Suggest(new SuggestionRequest(Space, ObjectiveDirection.Minimize, withRunning, 1, 3)).Suggestions.Single();
        Assert.NotEqual(next.Parameters.Describe(), after.Parameters.Describe());

        // Only failures: nothing to model, still a valid suggestion.
        var failed = history.Select(t => t with { State = TrialState.Failed, Objective = null }).ToList();
        Assert.Single(algorithm.Suggest(new SuggestionRequest(Space, ObjectiveDirection.Minimize, failed, 1, 3)).Suggestions);
    }

    [Fact]
    public void Maximize_is_minimizing_the_negation()
    {
        foreach (var name in new[] { "tpe", "gp" })
        {
            var algorithm = SuggestionAlgorithms.Get(name);
            var minimized = RunLoop(algorithm, name, 16);
            var maximized = minimized.Select(t => t with { Objective = -t.Objective }).ToList();
            var a = algorithm.Suggest(new SuggestionRequest(Space, ObjectiveDirection.Minimize, minimized, 2, 9));
            var b = algorithm.Suggest(new SuggestionRequest(Space, ObjectiveDirection.Maximize, maximized, 2, 9));
            Assert.Equal(Describe(a), Describe(b));
        }
    }

    [Fact]
    public void Registry_is_case_insensitive_and_names_the_known_algorithms_on_a_miss()
    {
        Assert.Equal(["grid", "random", "sobol", "tpe", "gp", "cmaes", "hyperband", "pbt", "auto"], SuggestionAlgorithms.Names);
        Assert.Equal("tpe", SuggestionAlgorithms.Get("TPE").Name);
        Assert.Equal("hyperband", SuggestionAlgorithms.Get(" HyperBand ").Name);
        var error = Assert.Throws<ArgumentException>(() => SuggestionAlgorithms.Get("bayes"));
        Assert.Contains("'bayes'", error.Message, StringComparison.Ordinal);
        Assert.Contains("grid, random, sobol, tpe, gp, cmaes, hyperband, pbt, auto", error.Message, StringComparison.Ordinal);
        Assert.Contains(SuggestionAlgorithms.Get("tpe").ValidateSettings(Space, new Dictionary<string, string> { ["gama"] = "0.2" }), p => p.Contains("'gama'", StringComparison.Ordinal));
    }

    [Fact]
    public void Validation_lists_every_problem_at_once()
    {
        var space = new SearchSpace(
        [
            ParameterSpec.Double("lr", 0, 0.1, ParameterScale.Log),        // log bound <= 0
            ParameterSpec.Double("lr", 0.5, 0.1),                          // duplicate name, min > max
            new ParameterSpec { Name = "", Kind = ParameterKind.Double, Min = 0, Max = 1 }, // empty name
            new ParameterSpec { Name = "noMax", Kind = ParameterKind.Double, Min = 0 },      // missing max
            ParameterSpec.Double("zeroStep", 0, 1, step: 0),               // step <= 0
            ParameterSpec.Double("bigStep", 0, 1, step: 2),                // step > range
            ParameterSpec.Categorical("empty"),                            // no values
            ParameterSpec.Categorical("dupes", "a", "b", "a"),             // duplicate value
            new ParameterSpec { Name = "layers", Kind = ParameterKind.Int, Min = 1.5, Max = 4 }, // int bound not integral
        ]);

        var problems = SearchSpaceValidation.Validate(space);
        string[] expected =
        [
            "'lr' is log-scaled, so its min must be > 0",
            "name 'lr' is used more than once",
            "'lr' has min 0.5 greater than max 0.1",
            "#3 has an empty name",
            "'noMax' has no max",
            "'zeroStep' has step 0",
            "'bigStep' has step 2 larger than its range 1",
            "'empty' is categorical but has no values",
            "'dupes' lists the value 'a' more than once",
            "'layers' is an int but its min 1.5 is not integral",
        ];
        foreach (var text in expected)
        {
            Assert.Contains(problems, p => p.Contains(text, StringComparison.Ordinal));
        }

        Assert.Equal(expected.Length, problems.Count);
        Assert.Equal(["The search space has no parameters."], SearchSpaceValidation.Validate(new SearchSpace([])));
        Assert.Empty(SearchSpaceValidation.Validate(Space));
    }

    [Fact]
    public void Unit_mapping_round_trips_and_quantizes()
    {
        var lr = ParameterSpec.Double("lr", 1e-4, 1e-2, ParameterScale.Log);
        Assert.Equal(1e-3, double.Parse(UnitSpace.FromUnit(lr, 0.5)), 12);
        Assert.Equal(0.5, UnitSpace.ToUnit(lr, "0.001"), 12);

        var units = ParameterSpec.Int("units", 1, 4);
        Assert.Equal(["1", "2", "3", "4"], new[] { 0.0, 0.3, 0.6, 1.0 }.Select(u => UnitSpace.FromUnit(units, u)));
        Assert.Equal("3", UnitSpace.FromUnit(units, UnitSpace.ToUnit(units, "3")));

        var dropout = ParameterSpec.Double("dropout", 0, 0.5, step: 0.1);
        Assert.Equal("0.3", UnitSpace.FromUnit(dropout, UnitSpace.ToUnit(dropout, "0.3")));
        Assert.Equal(["0", "0.1", "0.2", "0.3", "0.4", "0.5"], UnitSpace.GridValues(dropout, 5));

        var act = ParameterSpec.Categorical("act", "relu", "gelu");
        Assert.Equal("gelu", UnitSpace.FromUnit(act, UnitSpace.ToUnit(act, "gelu")));
        Assert.Throws<ArgumentException>(() => UnitSpace.ToUnit(act, "tanh"));
    }

    [Fact]
    public void Records_round_trip_through_json()
    {
        var request = new SuggestionRequest(
            Space,
            ObjectiveDirection.Maximize,
            [new TrialObservation("t1", new ParameterSet { ["x"] = "0.5", ["width"] = "16", ["optimizer"] = "sgd" }, TrialState.EarlyStopped, 0.9, 3, "s2/r1")],
            2,
            42,
            new Dictionary<string, string> { ["maxEpochs"] = "9" });
        var json = JsonSerializer.Serialize(request, MlJson.Options);
        Assert.Contains("\"direction\":\"maximize\"", json, StringComparison.Ordinal);
        Assert.Contains("\"state\":\"earlyStopped\"", json, StringComparison.Ordinal);
        var back = JsonSerializer.Deserialize<SuggestionRequest>(json, MlJson.Options)!;
        Assert.Equal(json, JsonSerializer.Serialize(back, MlJson.Options));

        var result = new SuggestionResult([new Suggestion(new ParameterSet { ["x"] = "1" }, 9, "s0/r0")], false);
        var resultJson = JsonSerializer.Serialize(result, MlJson.Options);
        Assert.Equal(resultJson, JsonSerializer.Serialize(JsonSerializer.Deserialize<SuggestionResult>(resultJson, MlJson.Options), MlJson.Options));
    }

    private static List<TrialObservation> RunLoop(ISuggestionAlgorithm algorithm, string name, int trials)
    {
        var history = new List<TrialObservation>();
        for (var ask = 0; ask < 200 && history.Count < trials; ask++)
        {
            var result = algorithm.Suggest(new SuggestionRequest(Space, ObjectiveDirection.Minimize, history, 1, 17, SettingsFor[name]));
            foreach (var s in result.Suggestions)
            {
                history.Add(new TrialObservation($"t{history.Count:D3}", s.Parameters, TrialState.Succeeded, Loss(s.Parameters), s.Budget, s.Bracket));
            }

            if (result.Exhausted)
            {
                break;
            }
        }

        return history;
    }

    private static string[] Describe(SuggestionResult result) =>
        result.Suggestions.Select(s => $"{s.Parameters.Describe()} | {s.Budget} | {s.Bracket}").Append($"exhausted={result.Exhausted}").ToArray();
}
