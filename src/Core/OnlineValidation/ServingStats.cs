using System.Text.Json.Serialization;

namespace MlFunctions.Core.OnlineValidation;

/// <summary>
/// What serving saw of one alias under one policy generation: requests routed to it, how many failed on the server
/// side, and a log-bucketed latency histogram. Like <see cref="ArmStats"/> every field is a sum, so per-host deltas
/// merge by addition in any order, and a percentile is read from the merged histogram (not averaged across hosts).
/// </summary>
/// <remarks>
/// Bucket i holds latencies in (<see cref="MinMs"/>·g^(i−1), <see cref="MinMs"/>·g^i] with g = <see cref="Growth"/>
/// (1.1), so a percentile is reported as its bucket's upper bound: at most 10% above the true value, from 0.05 ms to
/// ~2.4 hours in <see cref="BucketCount"/> buckets; bucket 0 takes everything at or below 0.05 ms.
/// </remarks>
public sealed record ServingStats
{
    public const double MinMs = 0.05, Growth = 1.1;
    public const int BucketCount = 200;

    public long Requests { get; init; }

    /// <summary>Requests that failed on the server side (the model failed, could not load, timed out); client errors (400, 413) do not count.</summary>
    public long Errors { get; init; }

    /// <summary>Request counts per latency bucket (see remarks); may be shorter than <see cref="BucketCount"/> (trailing zeros trimmed).</summary>
    public long[] LatencyBuckets { get; init; } = [];

    [JsonIgnore]
    public double ErrorRate => Requests > 0 ? (double)Errors / Requests : 0;

    public static ServingStats Empty { get; } = new();

    public static int BucketOf(double latencyMs)
    {
        if (!(latencyMs > MinMs))
            return 0;
        int i = (int)Math.Ceiling(Math.Log(latencyMs / MinMs) / Math.Log(Growth));
        return Math.Clamp(i, 0, BucketCount - 1);
    }

    public static double UpperBoundMs(int bucket) => MinMs * Math.Pow(Growth, bucket);

    /// <summary>One request: its latency and whether it failed on the server side.</summary>
    public static ServingStats One(double latencyMs, bool error)
    {
        var buckets = new long[BucketOf(latencyMs) + 1];
        buckets[^1] = 1;
        return new ServingStats { Requests = 1, Errors = error ? 1 : 0, LatencyBuckets = buckets };
    }

    public ServingStats Add(ServingStats other)
    {
        var buckets = new long[Math.Max(LatencyBuckets.Length, other.LatencyBuckets.Length)];
        for (int i = 0; i < buckets.Length; i++)
            buckets[i] = (i < LatencyBuckets.Length ? LatencyBuckets[i] : 0) + (i < other.LatencyBuckets.Length ? other.LatencyBuckets[i] : 0);
        return new ServingStats { Requests = Requests + other.Requests, Errors = Errors + other.Errors, LatencyBuckets = buckets };
    }

    /// <summary>The q-quantile (q in (0, 1]) of the latencies as its bucket's upper bound, in ms; null with no requests.</summary>
    public double? PercentileMs(double q)
    {
        long total = LatencyBuckets.Sum();
        if (total == 0)
            return null;
        double rank = Math.Ceiling(Math.Clamp(q, 0, 1) * total);
        long cumulative = 0;
        for (int i = 0; i < LatencyBuckets.Length; i++)
        {
            cumulative += LatencyBuckets[i];
            if (cumulative >= rank)
                return UpperBoundMs(i);
        }
        return UpperBoundMs(LatencyBuckets.Length - 1);
    }
}

/// <summary>Per-alias <see cref="ServingStats"/> of one policy generation (the blob <c>serving/{model}/stats/{generation}.json</c>).</summary>
public sealed record ServingStatsDocument
{
    public string Generation { get; init; } = "";
    public Dictionary<string, ServingStats> Aliases { get; init; } = new(StringComparer.Ordinal);

    public ServingStats Alias(string alias) => Aliases.TryGetValue(alias, out var s) ? s : ServingStats.Empty;

    public ServingStatsDocument Merge(IReadOnlyDictionary<string, ServingStats> deltas)
    {
        var aliases = new Dictionary<string, ServingStats>(Aliases, StringComparer.Ordinal);
        foreach (var (alias, delta) in deltas)
            aliases[alias] = (aliases.TryGetValue(alias, out var s) ? s : ServingStats.Empty).Add(delta);
        return this with { Aliases = aliases };
    }
}
