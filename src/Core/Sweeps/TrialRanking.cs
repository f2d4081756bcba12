namespace MlFunctions.Core.Sweeps;

/// <summary>The one ordering of trials everywhere they are listed: the sweep result, the trials API, the run report.</summary>
public static class TrialRanking
{
    /// <summary>
    /// Best first by the objective in its direction; trials without an objective (failed) last. Callers add
    /// their own tie-break with <c>ThenBy</c>.
    /// </summary>
    public static IOrderedEnumerable<T> BestFirst<T>(IEnumerable<T> trials, Func<T, double?> objective, ObjectiveDirection direction)
    {
        var sign = direction == ObjectiveDirection.Maximize ? -1 : 1;
        return trials
            .OrderBy(t => objective(t) is null ? 1 : 0)
            .ThenBy(t => objective(t) is { } o ? sign * o : 0);
    }
}
