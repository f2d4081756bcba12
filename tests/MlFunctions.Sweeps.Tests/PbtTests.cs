using System.Text.Json;
using MlFunctions.Core.Json;
using MlFunctions.Core.Sweeps;

namespace MlFunctions.Sweeps.Tests;

/// <summary>Population-based training as a pure function of the history: generations, exploit/explore, determinism and resume.</summary>
public sealed class PbtTests
{
    private static readonly SearchSpace Space = new(
    [
        ParameterSpec.Double("learningRate", 1e-4, 1e-1, ParameterScale.Log),
        ParameterSpec.Double("dropout", 0, 0.5),
        ParameterSpec.Int("batchSize", 32, 256),
        ParameterSpec.Categorical("model", "mlp", "cnn"),
    ]);

    private static readonly Dictionary<string, string> Settings = new() { ["population"] = "4", ["generations"] = "3", ["interval"] = "2" };

    /// <summary>Higher is better; best near learningRate 3e-3 and dropout 0.2.</summary>
    private static double Score(ParameterSet p) =>
        -Math.Pow(Math.Log10(p.GetDouble("learningRate")) - Math.Log10(3e-3), 2) - Math.Pow(p.GetDouble("dropout") - 0.2, 2);

    private static SuggestionResult Ask(List<TrialObservation> history, int count, long seed = 7) =>
        SuggestionAlgorithms.Get("pbt").Suggest(new SuggestionRequest(Space, ObjectiveDirection.Maximize, history, count, seed, Settings));

    /// <summary>A whole PBT sweep, <paramref name="parallel"/> trials at a time, finishing them in start order.</summary>
    private static List<(TrialObservation Trial, Suggestion Suggestion)> Run(int parallel, long seed = 7, int? stopAfter = null, List<(TrialObservation, Suggestion)>? resumeFrom = null)
    {
        var log = resumeFrom?.ToList() ?? [];
        var running = new Queue<(TrialObservation, Suggestion)>();
        for (var round = 0; round < 100; round++)
        {
            var history = log.Select(l => l.Item1).Concat(running.Select(r => r.Item1)).ToList();
            var result = Ask(history, parallel - running.Count, seed);
            foreach (var s in result.Suggestions)
                running.Enqueue((new TrialObservation($"t{log.Count + running.Count:D3}", s.Parameters, TrialState.Running, null, s.Budget, s.Bracket), s));
            if (running.Count == 0)
            {
                Assert.True(result.Exhausted);
                break;
            }

            var (trial, suggestion) = running.Dequeue();
            log.Add((trial with { State = TrialState.Succeeded, Objective = Score(trial.Parameters) }, suggestion));
            if (log.Count == stopAfter)
                return log;
        }

        return log;
    }

    [Fact]
    public void Generations_wait_for_the_previous_one_and_the_bottom_quarter_exploits_the_top_quarter()
    {
        var history = new List<TrialObservation>();
        var first = Ask(history, 10);
        Assert.False(first.Exhausted);
        Assert.Equal(["pbt/g0/m0", "pbt/g0/m1", "pbt/g0/m2", "pbt/g0/m3"], first.Suggestions.Select(s => s.Bracket));
        Assert.All(first.Suggestions, s => Assert.Equal(2, s.Budget));
        Assert.All(first.Suggestions, s => Assert.Null(s.Parent));

        // Scores 0.1·m: member 3 is the top quarter, member 0 the bottom one.
        for (var m = 0; m < 4; m++)
            history.Add(new TrialObservation($"g0m{m}", first.Suggestions[m].Parameters, m == 2 ? TrialState.Running : TrialState.Succeeded, m == 2 ? null : 0.1 * m, 2, first.Suggestions[m].Bracket));
        var waiting = Ask(history, 10);
        Assert.Empty(waiting.Suggestions);
        Assert.False(waiting.Exhausted);

        history[2] = history[2] with { State = TrialState.Succeeded, Objective = 0.2 };
        var second = Ask(history, 10);
        Assert.Equal(["pbt/g1/m0", "pbt/g1/m1", "pbt/g1/m2", "pbt/g1/m3"], second.Suggestions.Select(s => s.Bracket));
        Assert.All(second.Suggestions, s => Assert.Equal(4, s.Budget));

        // Members 1-3 continue from their own checkpoint with their own hyperparameters.
        for (var m = 1; m < 4; m++)
        {
            Assert.Equal($"g0m{m}", second.Suggestions[m].Parent);
            Assert.Equal(history[m].Parameters.Describe(), second.Suggestions[m].Parameters.Describe());
        }

        // Member 0 exploits member 3 (its checkpoint), explores its hyperparameters: ×0.8 or ×1.2 for the numeric ones,
        // the model (frozen: it shapes the network the checkpoint fits) unchanged.
        var exploit = second.Suggestions[0];
        Assert.Equal("g0m3", exploit.Parent);
        var donor = history[3].Parameters;
        Assert.Equal(donor["model"], exploit.Parameters["model"]);
        var ratio = exploit.Parameters.GetDouble("learningRate") / donor.GetDouble("learningRate");
        Assert.True(Math.Abs(ratio - 0.8) < 1e-9 || Math.Abs(ratio - 1.2) < 1e-9 || exploit.Parameters.GetDouble("learningRate") is 1e-4 or 1e-1, $"learning rate ×{ratio}");
        Assert.InRange(exploit.Parameters.GetDouble("dropout"), 0, 0.5);
        Assert.InRange(exploit.Parameters.GetInt("batchSize"), 32, 256);

        // A failed member is replaced like a bottom one.
        var failed = history.Select(t => t.TrialId == "g0m2" ? t with { State = TrialState.Failed, Objective = null } : t).ToList();
        Assert.Equal("g0m3", Ask(failed, 10).Suggestions[2].Parent);
    }

    [Fact]
    public void A_sweep_is_deterministic_whatever_the_parallelism_and_ends_exhausted()
    {
        var serial = Run(parallel: 1);
        var wide = Run(parallel: 4);
        Assert.Equal(12, serial.Count);
        Assert.Equal(
            serial.Select(l => $"{l.Suggestion.Bracket} {l.Suggestion.Parent} {l.Suggestion.Parameters.Describe()}"),
            wide.Select(l => $"{l.Suggestion.Bracket} {l.Suggestion.Parent} {l.Suggestion.Parameters.Describe()}"));
        Assert.NotEqual(
            serial.Select(l => l.Suggestion.Parameters.Describe()),
            Run(parallel: 1, seed: 8).Select(l => l.Suggestion.Parameters.Describe()));
        Assert.Equal([2, 4, 6], serial.Select(l => l.Suggestion.Budget!.Value).Distinct());

        // Exploitation pays: the last generation's best is at least the first's, and some trial warm-started from another member.
        var best0 = serial.Where(l => l.Suggestion.Bracket!.StartsWith("pbt/g0/", StringComparison.Ordinal)).Max(l => l.Trial.Objective!.Value);
        var best2 = serial.Where(l => l.Suggestion.Bracket!.StartsWith("pbt/g2/", StringComparison.Ordinal)).Max(l => l.Trial.Objective!.Value);
        Assert.True(best2 >= best0, $"generation 2 best {best2} < generation 0 best {best0}");
        Assert.Contains(serial, l => l.Suggestion.Parent is { } p && !l.Suggestion.Bracket!.EndsWith("/m" + PbtSearch.ParseTag(serial.Single(s => s.Trial.TrialId == p).Suggestion.Bracket)!.Value.Member, StringComparison.Ordinal));
        Console.WriteLine($"PBT on the test function: generation 0 best {best0:F4}, generation 2 best {best2:F4}");
    }

    [Fact]
    public void A_resumed_sweep_makes_the_decisions_of_the_uninterrupted_one()
    {
        var whole = Run(parallel: 2);

        // "Crash" after 5 trials (mid generation 1): the recorded history goes through JSON, as the orchestration keeps it.
        var prefix = Run(parallel: 2, stopAfter: 5);
        var recorded = JsonSerializer.Deserialize<List<TrialObservation>>(JsonSerializer.Serialize(prefix.Select(p => p.Trial).ToList(), MlJson.Options), MlJson.Options)!;
        var resumed = Run(parallel: 2, resumeFrom: recorded.Zip(prefix, (t, p) => (t, p.Suggestion)).ToList());
        Assert.Equal(
            whole.Select(l => $"{l.Trial.TrialId} {l.Suggestion.Parent} {l.Suggestion.Parameters.Describe()}"),
            resumed.Select(l => $"{l.Item1.TrialId} {l.Item2.Parent} {l.Item2.Parameters.Describe()}"));
    }

    [Fact]
    public void Settings_are_checked()
    {
        var pbt = SuggestionAlgorithms.Get("pbt");
        Assert.Empty(pbt.ValidateSettings(Space, Settings));
        Assert.Contains(pbt.ValidateSettings(Space, new Dictionary<string, string> { ["population"] = "1" }), p => p.Contains("at least 2", StringComparison.Ordinal));
        Assert.Contains(pbt.ValidateSettings(Space, new Dictionary<string, string> { ["frozen"] = "depth" }), p => p.Contains("'depth'", StringComparison.Ordinal));
        Assert.Contains(pbt.ValidateSettings(Space, new Dictionary<string, string> { ["quantile"] = "0.9" }), p => p.Contains("quantile", StringComparison.Ordinal));
        Assert.Contains(pbt.ValidateSettings(Space, new Dictionary<string, string> { ["frozen"] = "learningRate,dropout,batchSize,model" }), p => p.Contains("nothing to explore", StringComparison.Ordinal));
        Assert.Contains(pbt.ValidateSettings(Space, new Dictionary<string, string> { ["intervall"] = "2" }), p => p.Contains("'intervall'", StringComparison.Ordinal));
    }
}
