using System.Globalization;

namespace MlFunctions.Core.Sweeps;

/// <summary>
/// Katib's <c>medianstop</c> settings: <c>min_trials_required</c> (completed trials needed before any stop,
/// default 3, must be &gt; 0) and <c>start_step</c> (reports a trial makes before it can be stopped,
/// default 4, must be ≥ 1).
/// </summary>
public sealed record MedianStoppingSettings(int MinTrialsRequired = 3, int StartStep = 4)
{
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (MinTrialsRequired <= 0)
        {
            problems.Add("minTrialsRequired must be greater than zero.");
        }

        if (StartStep < 1)
        {
            problems.Add("startStep must be at least one.");
        }

        return problems;
    }

    /// <summary>Reads the settings by Katib's names or camelCase ones; missing ones keep their defaults.</summary>
    public static MedianStoppingSettings From(IReadOnlyDictionary<string, string>? settings, out IReadOnlyList<string> problems)
    {
        var reader = new SettingsReader(
            settings?.ToDictionary(p => p.Key.Replace("_", string.Empty, StringComparison.Ordinal), p => p.Value, StringComparer.OrdinalIgnoreCase),
            "minTrialsRequired", "startStep");
        reader.RejectUnknown("medianstop");
        var result = new MedianStoppingSettings(reader.Int("minTrialsRequired", 3, 1), reader.Int("startStep", 4, 1));
        problems = reader.Problems;
        return result;
    }
}

/// <summary>Whether to stop a running trial now, the median it was held against, and why.</summary>
public sealed record MedianStopDecision(bool Stop, int Step, double? BestSoFar, double? Median, int CompletedTrials, string Reason);

/// <summary>
/// The median stopping rule (Golovin et al., "Google Vizier", KDD 2017, §3.2.2), with Katib's settings: a
/// running trial is stopped at step s when s ≥ start_step, at least min_trials_required trials have
/// completed, and its best objective value so far is strictly worse than the median, over the completed
/// trials, of each one's running average of the objective over steps 1 … s.
/// </summary>
/// <remarks>
/// Matched to Katib v1beta1 (kubeflow/katib): the defaults and bounds of min_trials_required (3, &gt; 0) and
/// start_step (4, ≥ 1) from pkg/earlystopping/v1beta1/medianstop/service.py; only succeeded trials count as
/// completed (its SUCCEEDED_TRIAL filter); the running trial is judged by its best value so far, not its
/// last one, and the comparison is strict (LESS for maximize, GREATER for minimize) as in
/// cmd/metricscollector/v1beta1/file-metricscollector (updateStopRules, "optimalObjValue").
/// Deliberately not matched: Katib's service averages each completed trial over its first start_step
/// values only and then takes the arithmetic mean of those averages, and its collector checks the rule once,
/// at exactly start_step. That is a mean, not the median its documentation and the Vizier paper describe;
/// this rule follows the documented one (a true median of running averages up to the current step,
/// checked at every step from start_step on), so one outlier trial cannot drag the threshold.
/// A completed trial with fewer than s values contributes the average of all it reported.
/// </remarks>
public static class MedianStoppingRule
{
    /// <param name="runningTrialValuesBySteps">The running trial's objective at steps 1 … s (s = its count).</param>
    /// <param name="completedTrialsValuesBySteps">Each completed (succeeded) trial's objective by step.</param>
    public static MedianStopDecision Evaluate(
        IReadOnlyList<double> runningTrialValuesBySteps,
        IReadOnlyList<IReadOnlyList<double>> completedTrialsValuesBySteps,
        ObjectiveDirection direction,
        MedianStoppingSettings settings)
    {
        var settingProblems = settings.Validate();
        if (settingProblems.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", settingProblems), nameof(settings));
        }

        var step = runningTrialValuesBySteps.Count;
        var completed = completedTrialsValuesBySteps.Where(v => v is { Count: > 0 }).ToArray();
        if (step < settings.StartStep)
        {
            return new MedianStopDecision(false, step, Best(runningTrialValuesBySteps, direction), null, completed.Length,
                $"Step {step} is before start step {settings.StartStep}.");
        }

        var best = Best(runningTrialValuesBySteps, direction)!.Value;
        if (completed.Length < settings.MinTrialsRequired)
        {
            return new MedianStopDecision(false, step, best, null, completed.Length,
                $"Only {completed.Length} completed trial(s); at least {settings.MinTrialsRequired} are required.");
        }

        var averages = completed.Select(values => values.Take(step).Average()).ToArray();
        var median = Median(averages);
        var worse = direction == ObjectiveDirection.Maximize ? best < median : best > median;
        var comparison = direction == ObjectiveDirection.Maximize ? "below" : "above";
        var reason = worse
            ? $"Best value {F(best)} by step {step} is {comparison} the median {F(median)} of {completed.Length} completed trials' running averages."
            : $"Best value {F(best)} by step {step} is not worse than the median {F(median)} of {completed.Length} completed trials' running averages.";
        return new MedianStopDecision(worse, step, best, median, completed.Length, reason);
    }

    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            throw new ArgumentException("The median of no values is undefined.", nameof(values));
        }

        var sorted = values.OrderBy(v => v).ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2.0;
    }

    private static double? Best(IReadOnlyList<double> values, ObjectiveDirection direction) =>
        values.Count == 0 ? null : direction == ObjectiveDirection.Maximize ? values.Max() : values.Min();

    private static string F(double value) => value.ToString("G6", CultureInfo.InvariantCulture);
}
