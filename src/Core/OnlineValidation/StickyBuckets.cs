using MlFunctions.Core.Sweeps;

namespace MlFunctions.Core.OnlineValidation;

/// <summary>
/// Weighted choice that is sticky per request key: the key hashes (FNV-1a, SplitMix64; never
/// string.GetHashCode, which differs per process) to a point u in [0, 1), and the arm is the one whose
/// cumulative-weight interval holds u. The same key gets the same arm in every host process and after restarts,
/// as long as the weights do not change; moving 10% of weight moves only the keys in that 10%.
/// </summary>
public static class StickyBuckets
{
    /// <summary>The key's point in [0, 1): 31 bits, so buckets are finer than 1 in 2 billion.</summary>
    public static double Point(string key, long salt = 0) => SweepRandom.SeedFor(salt, 0, key) / 2147483648.0;

    /// <summary>The index of the arm for <paramref name="key"/>; weights need not be normalized but must be ≥ 0 with a positive sum.</summary>
    public static int Pick(string key, IReadOnlyList<double> weights, long salt = 0)
    {
        double total = weights.Sum();
        if (weights.Count == 0 || !(total > 0))
            throw new ArgumentException("weights must have a positive sum", nameof(weights));
        double u = Point(key, salt) * total, cumulative = 0;
        for (int i = 0; i < weights.Count; i++)
        {
            cumulative += weights[i];
            if (u < cumulative)
                return i;
        }
        return weights.Count - 1; // rounding: the last arm absorbs it
    }
}
