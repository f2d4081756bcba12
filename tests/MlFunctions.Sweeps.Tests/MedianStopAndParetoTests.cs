using MlFunctions.Core.Sweeps;

namespace MlFunctions.Sweeps.Tests;

public sealed class MedianStopAndParetoTests
{
    // Accuracy by step (maximize). Running averages over steps 1-4: A 0.75, B 0.5, C 0.25 → median 0.5.
    private static readonly IReadOnlyList<double>[] Accuracies =
    [
        [0.5, 0.75, 0.75, 1.0, 1.0],
        [0.25, 0.5, 0.5, 0.75],
        [0.125, 0.125, 0.25, 0.5, 0.5],
    ];

    private static readonly MedianStoppingSettings Defaults = new();

    [Fact]
    public void Stops_a_trial_whose_best_is_below_the_median_when_maximizing()
    {
        var decision = MedianStoppingRule.Evaluate([0.25, 0.375, 0.25, 0.375], Accuracies, ObjectiveDirection.Maximize, Defaults);
        Assert.True(decision.Stop, decision.Reason);
        Assert.Equal(0.5, decision.Median);
        Assert.Equal(0.375, decision.BestSoFar);
        Assert.Equal(4, decision.Step);
    }

    [Fact]
    public void A_tie_with_the_median_is_not_strictly_worse()
    {
        var decision = MedianStoppingRule.Evaluate([0.25, 0.5, 0.25, 0.25], Accuracies, ObjectiveDirection.Maximize, Defaults);
        Assert.False(decision.Stop, decision.Reason);
        Assert.Equal(0.5, decision.Median);
    }

    [Fact]
    public void Does_not_stop_before_start_step()
    {
        var decision = MedianStoppingRule.Evaluate([0.0, 0.0, 0.0], Accuracies, ObjectiveDirection.Maximize, Defaults);
        Assert.False(decision.Stop);
        Assert.Null(decision.Median);
        Assert.Contains("start step 4", decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Needs_min_trials_required_completed_trials()
    {
        var below = MedianStoppingRule.Evaluate([0.0, 0.0, 0.0, 0.0], Accuracies.Take(2).ToArray(), ObjectiveDirection.Maximize, Defaults);
        Assert.False(below.Stop);
        Assert.Contains("at least 3", below.Reason, StringComparison.Ordinal);

        var enough = MedianStoppingRule.Evaluate([0.0, 0.0, 0.0, 0.0], Accuracies.Take(2).ToArray(), ObjectiveDirection.Maximize, new MedianStoppingSettings(MinTrialsRequired: 2));
        Assert.True(enough.Stop);
        Assert.Equal((0.75 + 0.5) / 2, enough.Median);
    }

    [Fact]
    public void Averages_completed_trials_over_the_running_trials_steps()
    {
        // At step 2 the averages are A 0.625, B 0.375, C 0.125: the median 0.375 equals the best, no stop...
        var settings = new MedianStoppingSettings(StartStep: 2);
        Assert.False(MedianStoppingRule.Evaluate([0.25, 0.375], Accuracies, ObjectiveDirection.Maximize, settings).Stop);

        // ...while by step 4 the median has risen to 0.5 and the same best is below it.
        var later = MedianStoppingRule.Evaluate([0.25, 0.375, 0.25, 0.25], Accuracies, ObjectiveDirection.Maximize, settings);
        Assert.True(later.Stop);
        Assert.Equal(0.5, later.Median);

        // A completed trial shorter than the step contributes all it has: at step 5 B still averages 0.5.
        Assert.Equal(0.5, MedianStoppingRule.Evaluate([0.25, 0.375, 0.25, 0.25, 0.25], Accuracies, ObjectiveDirection.Maximize, settings).Median);
    }

    [Fact]
    public void Minimizing_stops_a_trial_whose_best_loss_is_above_the_median()
    {
        // Loss averages over steps 1-4: A 0.5625, B 1.25, C 0.3125 → median 0.5625.
        IReadOnlyList<double>[] losses = [[1.0, 0.5, 0.5, 0.25], [2, 1, 1, 1], [0.5, 0.25, 0.25, 0.25]];
        var stop = MedianStoppingRule.Evaluate([2, 1, 0.75, 0.75], losses, ObjectiveDirection.Minimize, Defaults);
        Assert.True(stop.Stop, stop.Reason);
        Assert.Equal(0.5625, stop.Median);

        Assert.False(MedianStoppingRule.Evaluate([2, 1, 0.5, 0.75], losses, ObjectiveDirection.Minimize, Defaults).Stop);

        // An even number of completed trials: the median is the mean of the middle two (0.3125 + 0.5625) / 2.
        var four = losses.Append([0.0, 0.0, 0.0, 0.0]).ToArray();
        var even = MedianStoppingRule.Evaluate([2, 1, 0.5, 0.75], four, ObjectiveDirection.Minimize, Defaults);
        Assert.Equal(0.4375, even.Median);
        Assert.True(even.Stop);
    }

    [Fact]
    public void Settings_read_katib_names_and_reject_bad_values()
    {
        var settings = MedianStoppingSettings.From(new Dictionary<string, string> { ["min_trials_required"] = "5", ["start_step"] = "2" }, out var problems);
        Assert.Empty(problems);
        Assert.Equal(new MedianStoppingSettings(5, 2), settings);

        MedianStoppingSettings.From(new Dictionary<string, string> { ["min_trials_required"] = "0", ["startStep"] = "x", ["other"] = "1" }, out problems);
        Assert.Equal(3, problems.Count);
        Assert.Throws<ArgumentException>(() => MedianStoppingRule.Evaluate([1, 2, 3, 4], Accuracies, ObjectiveDirection.Maximize, new MedianStoppingSettings(0, 4)));
    }

    [Fact]
    public void Pareto_front_keeps_the_non_dominated_points_sorted_by_the_first_objective()
    {
        ParetoPoint[] points =
        [
            new("c", 3, 4), // dominated by b (2, 3)
            new("a", 1, 5),
            new("d", 4, 1),
            new("b", 2, 3),
            new("e", 2, 3), // equal to b: neither dominates the other
            new("f", 5, 1), // dominated by d: equal second, worse first
            new("g", 0.5, double.NaN),
        ];

        var minMin = ParetoFront.Compute(points, ObjectiveDirection.Minimize, ObjectiveDirection.Minimize);
        Assert.Equal(["a", "b", "e", "d"], minMin.Select(p => p.Id));

        // Maximize accuracy (first), minimize latency (second): f (5, 1) dominates everything else.
        var maxMin = ParetoFront.Compute(points, ObjectiveDirection.Maximize, ObjectiveDirection.Minimize);
        Assert.Equal(["f"], maxMin.Select(p => p.Id));

        // Minimize the first, maximize the second: a (1, 5) beats all.
        Assert.Equal(["a"], ParetoFront.Compute(points, ObjectiveDirection.Minimize, ObjectiveDirection.Maximize).Select(p => p.Id));
        Assert.Empty(ParetoFront.Compute([], ObjectiveDirection.Minimize, ObjectiveDirection.Minimize));
    }
}
