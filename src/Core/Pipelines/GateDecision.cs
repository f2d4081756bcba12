using System.Globalization;
using MlFunctions.Core.Metrics;

namespace MlFunctions.Core.Pipelines;

/// <summary>The promotion gate's verdict and the sentence the report and the run result carry.</summary>
public sealed record GateVerdict(bool Promote, string Reason);

/// <summary>
/// The promotion rule, pure so it is unit-tested apart from any orchestration: with no champion the candidate is
/// promoted; otherwise it must beat the champion, scored on the same test split, by at least the margin, strictly
/// (an identical model re-trained on unchanged data is never promoted over itself).
/// </summary>
public static class GateDecision
{
    public static GateVerdict Decide(string metric, double candidate, double? champion, int? championVersion, double margin, string model)
    {
        var higher = MetricNames.HigherIsBetter(metric);
        if (double.IsNaN(candidate))
            return new(false, $"the candidate's test {metric} is not defined (NaN); nothing promoted");
        if (champion is not { } bar)
            return new(true, Say($"first {model} model (test {metric} {candidate:F4}); no champion to beat"));
        var beats = higher ? candidate > bar + margin : candidate < bar - margin;
        return beats
            ? new(true, Say($"test {metric} {candidate:F4} beats champion v{championVersion} ({bar:F4}) by more than {margin:F4}"))
            : new(false, Say($"the candidate's test {metric} {candidate:F4} does not beat champion v{championVersion} ({bar:F4}) by the margin {margin:F4}; nothing promoted"));
    }

    private static string Say(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
