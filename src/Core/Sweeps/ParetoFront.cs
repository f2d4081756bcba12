namespace MlFunctions.Core.Sweeps;

/// <summary>A trial's two objectives, for the trade-off view of a two-objective sweep (e.g. accuracy vs latency).</summary>
public sealed record ParetoPoint(string Id, double Objective1, double Objective2);

/// <summary>The trials no other trial beats on both objectives at once.</summary>
public static class ParetoFront
{
    /// <summary>
    /// The non-dominated points, sorted by <see cref="ParetoPoint.Objective1"/> ascending (then objective 2,
    /// then id, so the order is stable). A point is dominated when another is at least as good on both
    /// objectives and strictly better on one; equal points do not dominate each other, so both stay.
    /// Points with a non-finite objective are left out.
    /// </summary>
    public static IReadOnlyList<ParetoPoint> Compute(IEnumerable<ParetoPoint> points, ObjectiveDirection direction1, ObjectiveDirection direction2)
    {
        var finite = points.Where(p => double.IsFinite(p.Objective1) && double.IsFinite(p.Objective2)).ToArray();
        double L1(ParetoPoint p) => ObservedHistory.Loss(p.Objective1, direction1);
        double L2(ParetoPoint p) => ObservedHistory.Loss(p.Objective2, direction2);

        // Sort by the first loss, then the second: a point can only be dominated by one before it, and is
        // dominated exactly when one before it has a smaller second loss, or an equal one with a smaller first.
        var ordered = finite.OrderBy(L1).ThenBy(L2).ThenBy(p => p.Id, StringComparer.Ordinal).ToArray();
        var front = new List<ParetoPoint>();
        var bestSecond = double.PositiveInfinity;
        var bestSecondFirst = double.NaN;
        foreach (var p in ordered)
        {
            var l1 = L1(p);
            var l2 = L2(p);
            var dominated = l2 > bestSecond || (l2 == bestSecond && l1 > bestSecondFirst);
            if (!dominated)
            {
                front.Add(p);
            }

            if (l2 < bestSecond)
            {
                bestSecond = l2;
                bestSecondFirst = l1;
            }
        }

        return front.OrderBy(p => p.Objective1).ThenBy(p => p.Objective2).ThenBy(p => p.Id, StringComparer.Ordinal).ToArray();
    }
}
