using MlFunctions.Core.Sweeps;

namespace MlFunctions.Sweeps.Tests;

public sealed class HyperbandTests
{
    private static readonly SearchSpace Space = new([ParameterSpec.Double("lr", 1e-4, 1e-1, ParameterScale.Log), ParameterSpec.Categorical("act", "relu", "gelu")]);

    private static readonly Dictionary<string, string> Settings = new() { ["maxEpochs"] = "9", ["eta"] = "3" };

    [Fact]
    public void Schedule_for_r9_eta3_matches_successive_halving()
    {
        var schedule = HyperbandSearch.Schedule(9, 3);
        Assert.Equal(
            ["s2: 9x1 3x3 1x9", "s1: 5x3 1x9", "s0: 3x9"],
            schedule.Select(b => $"s{b.S}: " + string.Join(' ', b.Rungs.Select(r => $"{r.Configurations}x{r.Epochs}"))));
    }

    [Fact]
    public void Schedule_for_r81_eta3_matches_the_papers_table()
    {
        // Li et al. (JMLR 2018), Table 1.
        var schedule = HyperbandSearch.Schedule(81, 3);
        Assert.Equal(
            ["s4: 81x1 27x3 9x9 3x27 1x81", "s3: 34x3 11x9 3x27 1x81", "s2: 15x9 5x27 1x81", "s1: 8x27 2x81", "s0: 5x81"],
            schedule.Select(b => $"s{b.S}: " + string.Join(' ', b.Rungs.Select(r => $"{r.Configurations}x{r.Epochs}"))));
    }

    [Fact]
    public void Promotes_the_best_third_only_when_the_rung_has_finished_and_is_exhausted_at_the_end()
    {
        var hyperband = SuggestionAlgorithms.Get("hyperband");
        var history = new List<TrialObservation>();
        SuggestionResult Ask(int count = 100) => hyperband.Suggest(new SuggestionRequest(Space, ObjectiveDirection.Maximize, history, count, 5, Settings));

        // Every bracket's first rung starts at once: 9 × 1 epoch, 5 × 3, 3 × 9.
        var first = Ask();
        Assert.False(first.Exhausted);
        Assert.Equal(
            ["s0/r0:9", "s1/r0:3", "s2/r0:1"],
            first.Suggestions.GroupBy(s => $"{s.Bracket}:{s.Budget}").Select(g => g.Key).Order());
        Assert.Equal(9, first.Suggestions.Count(s => s.Bracket == "s2/r0"));
        Assert.Equal(5, first.Suggestions.Count(s => s.Bracket == "s1/r0"));
        Assert.Equal(3, first.Suggestions.Count(s => s.Bracket == "s0/r0"));
        foreach (var s in first.Suggestions)
        {
            history.Add(new TrialObservation($"t{history.Count:D3}", s.Parameters, TrialState.Running, null, s.Budget, s.Bracket));
        }

        // Nothing to do while everything runs.
        var waiting = Ask();
        Assert.Empty(waiting.Suggestions);
        Assert.False(waiting.Exhausted);

        // 8 of the 9 one-epoch trials finish (one fails): still waiting for the ninth.
        var s2 = history.Where(t => t.Bracket == "s2/r0").Select(t => t.TrialId).ToArray();
        double Accuracy(int i) => i * 0.1;
        for (var i = 0; i < 8; i++)
        {
            Finish(history, s2[i], i == 7 ? TrialState.Failed : TrialState.Succeeded, i == 7 ? null : Accuracy(i));
        }

        Assert.Empty(Ask().Suggestions);

        // The ninth finishes: the best three (maximize: i = 8, 6, 5; 7 failed) go on with 3 epochs.
        Finish(history, s2[8], TrialState.EarlyStopped, Accuracy(8));
        var promoted = Ask();
        Assert.Equal(3, promoted.Suggestions.Count);
        Assert.All(promoted.Suggestions, s => Assert.Equal(("s2/r1", 3), (s.Bracket!, s.Budget!.Value)));
        var expected = new[] { 8, 6, 5 }.Select(i => history.Single(t => t.TrialId == s2[i]).Parameters.Describe());
        Assert.Equal(expected, promoted.Suggestions.Select(s => s.Parameters.Describe()));

        // Asking one at a time hands out the rest of the promotions, never one twice.
        var one = Ask(1).Suggestions.Single();
        Assert.Equal(expected.First(), one.Parameters.Describe());
        history.Add(new TrialObservation($"t{history.Count:D3}", one.Parameters, TrialState.Running, null, one.Budget, one.Bracket));
        Assert.Equal(expected.Skip(1), Ask().Suggestions.Select(s => s.Parameters.Describe()));

        // Run everything to the end, finishing each trial with a value from its learning rate.
        history.RemoveAt(history.Count - 1);
        var rounds = 0;
        SuggestionResult result;
        while (true)
        {
            foreach (var t in history.Where(t => t.State == TrialState.Running).ToArray())
            {
                Finish(history, t.TrialId, TrialState.Succeeded, -Math.Abs(Math.Log10(t.Parameters.GetDouble("lr")) + 2));
            }

            result = Ask();
            if (result.Exhausted || ++rounds > 20)
            {
                break;
            }

            Assert.NotEmpty(result.Suggestions);
            foreach (var s in result.Suggestions)
            {
                history.Add(new TrialObservation($"t{history.Count:D3}", s.Parameters, TrialState.Running, null, s.Budget, s.Bracket));
            }
        }

        Assert.True(result.Exhausted);
        Assert.Empty(result.Suggestions);

        // Every rung got its size (s2/r1 got 3 from 8 survivors, its r2 one), and each promoted config was in the rung below.
        var sizes = history.GroupBy(t => t.Bracket!).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(new Dictionary<string, int> { ["s2/r0"] = 9, ["s2/r1"] = 3, ["s2/r2"] = 1, ["s1/r0"] = 5, ["s1/r1"] = 1, ["s0/r0"] = 3 }, sizes);
        var bestOfS2R1 = history.Where(t => t.Bracket == "s2/r1").OrderByDescending(t => t.Objective).First().Parameters.Describe();
        Assert.Equal(bestOfS2R1, history.Single(t => t.Bracket == "s2/r2").Parameters.Describe());
        Assert.Equal(9, history.Single(t => t.Bracket == "s2/r2").Budget);
    }

    [Fact]
    public void Requires_max_epochs()
    {
        var problems = SuggestionAlgorithms.Get("hyperband").ValidateSettings(Space, new Dictionary<string, string> { ["eta"] = "1" });
        Assert.Contains(problems, p => p.Contains("maxEpochs", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("'eta'", StringComparison.Ordinal));
    }

    private static void Finish(List<TrialObservation> history, string id, TrialState state, double? objective)
    {
        var index = history.FindIndex(t => t.TrialId == id);
        history[index] = history[index] with { State = state, Objective = objective };
    }
}
