using System.Globalization;
using System.Text.Json.Serialization;
using MlFunctions.Core.Registry;

namespace MlFunctions.Core.OnlineValidation;

/// <summary>
/// The body of <c>POST /api/serving/{model}/rollouts</c>: move <see cref="Challenger"/> from a small share of the
/// model's traffic to all of it through canary policies, stage by stage (default 5 → 25 → 50 → 100 %), holding each
/// stage for a time and/or a request count and going on only while the challenger holds against the champion
/// (<see cref="RolloutDecision"/>). At 100 % the champion alias is moved to the challenger's version.
/// </summary>
public sealed record RolloutSpec
{
    public static readonly IReadOnlyList<double> DefaultStages = [5, 25, 50, 100];
    public const double DefaultHoldSeconds = 300;

    /// <summary>The alias to roll out (required).</summary>
    public string? Challenger { get; init; }

    /// <summary>The alias that serves the rest of the traffic, and the one moved at the end (default <c>champion</c>).</summary>
    public string? Champion { get; init; }

    /// <summary>The challenger's share of traffic per stage, in percent: strictly increasing, ending at 100.</summary>
    public IReadOnlyList<double>? Stages { get; init; }

    /// <summary>Each stage holds at least this long (default 300 s when neither hold is given).</summary>
    public double? HoldSeconds { get; init; }

    /// <summary>Each stage holds until the challenger has served at least this many requests in it.</summary>
    public long? HoldRequests { get; init; }

    /// <summary>A stage that has not met its holds and minimum samples by then rolls back (default max(4 × hold, 3,600 s)).</summary>
    public double? MaxStageSeconds { get; init; }

    /// <summary>How often a stage's statistics are read (default hold / 10, clamped to [1, 30] s).</summary>
    public double? PollSeconds { get; init; }

    public RolloutCriteria? Criteria { get; init; }

    /// <summary>Salt of the canary's sticky buckets (same key, same side, at every stage: the challenger's share only grows).</summary>
    public long Seed { get; init; }

    [JsonIgnore]
    public string ChampionAlias => Champion ?? RegistryNames.Champion;
    [JsonIgnore]
    public IReadOnlyList<double> StagesOrDefault => Stages ?? DefaultStages;
    [JsonIgnore]
    public TimeSpan? Hold => HoldSeconds is { } s ? TimeSpan.FromSeconds(s) : HoldRequests is null ? TimeSpan.FromSeconds(DefaultHoldSeconds) : null;
    [JsonIgnore]
    public TimeSpan MaxStage => TimeSpan.FromSeconds(MaxStageSeconds ?? Math.Max(4 * (Hold?.TotalSeconds ?? 0), 3600));
    [JsonIgnore]
    public TimeSpan Poll => TimeSpan.FromSeconds(PollSeconds ?? Math.Clamp((Hold?.TotalSeconds ?? 100) / 10, 1, 30));
    [JsonIgnore]
    public RolloutCriteria CriteriaOrDefault => Criteria ?? new RolloutCriteria();

    /// <summary>
    /// Every problem, for one 400 that lists them all. <paramref name="aliasVersion"/> gives the version an alias of
    /// the model points at, or null when it is not set.
    /// </summary>
    public IReadOnlyList<string> Validate(Func<string, int?> aliasVersion)
    {
        var problems = new List<string>();
        static string F(double d) => d.ToString("G", CultureInfo.InvariantCulture);
        int? Resolve(string role, string? alias)
        {
            if (string.IsNullOrEmpty(alias))
            {
                problems.Add($"'{role}' (the alias to roll out) is required.");
                return null;
            }
            if (!RegistryNames.IsValid(alias))
            {
                problems.Add($"{role} '{alias}' is not a valid alias name.");
                return null;
            }
            var v = aliasVersion(alias);
            if (v is null)
                problems.Add($"{role} alias '{alias}' is not set on this model.");
            return v;
        }
        var challenger = Resolve("challenger", Challenger);
        var champion = Resolve("champion", ChampionAlias);
        if (Challenger is not null && Challenger == ChampionAlias)
            problems.Add($"challenger and champion are both '{Challenger}'; roll out another alias.");
        else if (challenger is not null && challenger == champion)
            problems.Add($"challenger '{Challenger}' and champion '{ChampionAlias}' both point at version {challenger}; there is nothing to roll out.");

        var stages = StagesOrDefault;
        if (stages.Count == 0)
            problems.Add("'stages' is empty; give the challenger's share per stage, e.g. [5, 25, 50, 100].");
        for (int i = 0; i < stages.Count; i++)
        {
            if (!(stages[i] > 0 && stages[i] <= 100))
                problems.Add($"stage {i + 1} is {F(stages[i])}%; a stage's share must be in (0, 100].");
            else if (i > 0 && !(stages[i] > stages[i - 1]))
                problems.Add($"stage {i + 1} ({F(stages[i])}%) does not exceed stage {i} ({F(stages[i - 1])}%); stages must strictly increase.");
        }
        if (stages.Count > 0 && stages[^1] != 100)
            problems.Add($"the last stage is {F(stages[^1])}%; it must be 100 (the promotion).");
        if (stages.Count > 20)
            problems.Add($"{stages.Count} stages; at most 20.");

        if (HoldSeconds is { } h && !(h > 0 && h <= 7 * 86400))
            problems.Add($"holdSeconds is {F(h)}; it must be in (0, 604800].");
        if (HoldRequests is { } r && r <= 0)
            problems.Add($"holdRequests is {r}; it must be positive.");
        if (MaxStageSeconds is { } m && (!(m > 0 && m <= 30 * 86400) || (HoldSeconds is { } hold && m < hold)))
            problems.Add($"maxStageSeconds is {F(m)}; it must be positive, at most 30 days, and at least holdSeconds.");
        if (PollSeconds is { } p && !(p >= 0.1 && p <= 3600))
            problems.Add($"pollSeconds is {F(p)}; it must be in [0.1, 3600].");
        problems.AddRange(CriteriaOrDefault.Problems());
        return problems;
    }
}

/// <summary>
/// When a challenger holds against the champion. A check compares the two over the stage's own traffic and fails only
/// when the data show, at one-sided confidence <see cref="Z"/> (1.645: 95 %), that the challenger is worse than the
/// champion by more than the tolerance; it is evaluated once both sides have the minimum samples. Defaults: error
/// rate + 1 point, p99 latency × 1.5 + 5 ms, online accuracy − 2 points; 100 requests and 50 feedbacks per side.
/// </summary>
/// <remarks>
/// Why a margin rather than point estimates: with 50 feedbacks per side accuracy's standard error is ~0.05, so a
/// challenger exactly as good as the champion would fail a bare "2 points worse" comparison about a third of the time.
/// Latency: the limit is the champion's p99 (merged histogram, ≤10 % bucket error) × ratio + an absolute slack, so
/// sub-millisecond noise cannot fail it; the challenger fails when the share of its requests above the limit is
/// clearly (at <see cref="Z"/>) over 1 %, i.e. its p99 is over the limit beyond sampling noise. A minimum of 0 means "do not wait": the check is skipped
/// while a side has no data and evaluated once it has some.
/// </remarks>
public sealed record RolloutCriteria
{
    public double MaxErrorRateIncrease { get; init; } = 0.01;
    public double MaxLatencyRatio { get; init; } = 1.5;
    public double LatencySlackMs { get; init; } = 5;
    public double MaxAccuracyDrop { get; init; } = 0.02;
    public double Z { get; init; } = 1.645;
    public long MinRequests { get; init; } = 100;
    public long MinFeedback { get; init; } = 50;

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        static string F(double d) => d.ToString("G", CultureInfo.InvariantCulture);
        if (!(MaxErrorRateIncrease >= 0 && MaxErrorRateIncrease <= 1))
            problems.Add($"criteria.maxErrorRateIncrease is {F(MaxErrorRateIncrease)}; it must be in [0, 1].");
        if (!(MaxLatencyRatio >= 1 && MaxLatencyRatio <= 1000))
            problems.Add($"criteria.maxLatencyRatio is {F(MaxLatencyRatio)}; it must be in [1, 1000].");
        if (!(LatencySlackMs >= 0 && LatencySlackMs <= 600_000))
            problems.Add($"criteria.latencySlackMs is {F(LatencySlackMs)}; it must be in [0, 600000].");
        if (!(MaxAccuracyDrop >= 0 && MaxAccuracyDrop <= 1))
            problems.Add($"criteria.maxAccuracyDrop is {F(MaxAccuracyDrop)}; it must be in [0, 1].");
        if (!(Z >= 0 && Z <= 10))
            problems.Add($"criteria.z is {F(Z)}; it must be in [0, 10].");
        if (MinRequests < 0)
            problems.Add($"criteria.minRequests is {MinRequests}; it must be ≥ 0.");
        if (MinFeedback < 0)
            problems.Add($"criteria.minFeedback is {MinFeedback}; it must be ≥ 0.");
        return problems;
    }
}

/// <summary>One side of a stage: what serving recorded for the alias under the stage's policy generation.</summary>
/// <remarks><see cref="LatencyBuckets"/> is the side's <see cref="ServingStats"/> histogram (null: compare p99s as points).</remarks>
public sealed record ArmObservation(string Alias, int Version, long Requests, long Errors, double? P99Ms, double Feedback, double RewardSum, long[]? LatencyBuckets = null)
{
    [JsonIgnore]
    public double ErrorRate => Requests > 0 ? (double)Errors / Requests : 0;
    [JsonIgnore]
    public double? Accuracy => Feedback > 0 ? RewardSum / Feedback : null;
}

public sealed record RolloutObservation(ArmObservation Champion, ArmObservation Challenger);

/// <summary>A check's state: pass, fail, waiting (a side is below the minimum) or skipped (minimum 0 and no data yet).</summary>
public sealed record RolloutCheck(string Name, string State, double? Champion, double? Challenger, string Detail)
{
    public const string Pass = "pass", Fail = "fail", Waiting = "waiting", Skipped = "skipped";
}

/// <summary>hold (keep the stage), advance (to the next stage) or rollback, why, and each check.</summary>
public sealed record RolloutVerdict(string Action, string Reason, IReadOnlyList<RolloutCheck> Checks)
{
    public const string Hold = "hold", Advance = "advance", Rollback = "rollback";
}

/// <summary>The rollout's decision after each look at a stage, as a pure function of the spec, the observation and the time held.</summary>
public static class RolloutDecision
{
    public static RolloutVerdict Evaluate(RolloutSpec spec, RolloutObservation o, TimeSpan elapsed)
    {
        var c = spec.CriteriaOrDefault;
        var checks = new List<RolloutCheck> { ErrorRate(c, o), Latency(c, o), Accuracy(c, o) };
        var failed = checks.Where(x => x.State == RolloutCheck.Fail).ToList();
        if (failed.Count > 0)
            return new(RolloutVerdict.Rollback, $"challenger '{o.Challenger.Alias}' (v{o.Challenger.Version}) is worse than champion '{o.Champion.Alias}' (v{o.Champion.Version}): "
                + string.Join("; ", failed.Select(f => f.Detail)), checks);

        var waits = new List<string>();
        if (spec.Hold is { } hold && elapsed < hold)
            waits.Add($"held {Secs(elapsed)} of {Secs(hold)}");
        if (spec.HoldRequests is { } n && o.Challenger.Requests < n)
            waits.Add($"challenger served {o.Challenger.Requests} of {n} requests");
        waits.AddRange(checks.Where(x => x.State == RolloutCheck.Waiting).Select(x => x.Detail));
        if (waits.Count == 0)
            return new(RolloutVerdict.Advance, $"held {Secs(elapsed)}; challenger served {o.Challenger.Requests} requests and "
                + string.Join(", ", checks.Select(x => $"{x.Name} {x.State}")), checks);
        if (elapsed >= spec.MaxStage)
            return new(RolloutVerdict.Rollback, $"the stage reached its limit of {Secs(spec.MaxStage)} without enough evidence: " + string.Join("; ", waits), checks);
        return new(RolloutVerdict.Hold, string.Join("; ", waits), checks);
    }

    private static string Secs(TimeSpan t) => t.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture) + " s";

    private static string P(double d) => d.ToString("0.####", CultureInfo.InvariantCulture);

    /// <summary>Waiting or skipped when a side is below <paramref name="min"/>; null when both have enough.</summary>
    private static string? Short(string name, long min, double champion, double challenger, string unit) =>
        champion >= Math.Max(1, min) && challenger >= Math.Max(1, min) ? null
        : min > 0 ? $"{name} needs {min} {unit} per side (champion {champion:0}, challenger {challenger:0})"
        : "";

    /// <summary>True when (worse − better − tolerance) exceeds z standard errors: the challenger is worse beyond tolerance.</summary>
    private static bool ClearlyWorse(double excess, double se, double z) => excess > z * se;

    private static RolloutCheck ErrorRate(RolloutCriteria c, RolloutObservation o)
    {
        const string name = "error_rate";
        var (b, x) = (o.Champion, o.Challenger);
        if (Short(name, c.MinRequests, b.Requests, x.Requests, "requests") is { } wait)
            return new(name, wait.Length > 0 ? RolloutCheck.Waiting : RolloutCheck.Skipped, null, null, wait.Length > 0 ? wait : $"{name}: no requests yet");
        double eb = b.ErrorRate, ex = x.ErrorRate;
        double se = Math.Sqrt((eb * (1 - eb) / b.Requests) + (ex * (1 - ex) / x.Requests));
        bool fail = ClearlyWorse(ex - eb - c.MaxErrorRateIncrease, se, c.Z);
        return new(name, fail ? RolloutCheck.Fail : RolloutCheck.Pass, eb, ex,
            $"error rate {P(ex)} ({x.Errors}/{x.Requests}) vs champion {P(eb)} ({b.Errors}/{b.Requests}), tolerance +{P(c.MaxErrorRateIncrease)}");
    }

    private static RolloutCheck Latency(RolloutCriteria c, RolloutObservation o)
    {
        const string name = "p99_latency";
        var (b, x) = (o.Champion, o.Challenger);
        if (Short(name, c.MinRequests, b.Requests, x.Requests, "requests") is { } wait || b.P99Ms is null || x.P99Ms is null)
        {
            wait = Short(name, c.MinRequests, b.Requests, x.Requests, "requests") ?? "";
            return new(name, wait.Length > 0 ? RolloutCheck.Waiting : RolloutCheck.Skipped, null, null, wait.Length > 0 ? wait : $"{name}: no latencies yet");
        }
        double limit = (b.P99Ms.Value * c.MaxLatencyRatio) + c.LatencySlackMs;
        if (x.LatencyBuckets is { } buckets && buckets.Sum() is var n and > 0)
        {
            // The challenger's p99 is over the limit exactly when more than 1 % of its requests are, so test that share
            // rather than compare a p99 read from a few dozen requests (at a 5 % stage with 30 requests the "p99" is the
            // slowest one: one cold load or GC pause failed a challenger as fast as the champion, 24.5 vs 11.4 ms in
            // bench/online). Counted are requests in buckets wholly above the limit; a one-sided test at z, as the others.
            long over = 0;
            for (int i = 1; i < buckets.Length; i++)
                if (ServingStats.UpperBoundMs(i - 1) >= limit)
                    over += buckets[i];
            double share = (double)over / n;
            bool slow = ClearlyWorse(share - 0.01, Math.Sqrt(0.01 * 0.99 / n), c.Z);
            return new(name, slow ? RolloutCheck.Fail : RolloutCheck.Pass, b.P99Ms, x.P99Ms,
                $"p99 latency {P(x.P99Ms.Value)} ms vs champion {P(b.P99Ms.Value)} ms, limit {P(limit)} ms: {over} of {n} challenger requests over the limit ({P(share)}; more than 0.01 beyond z {P(c.Z)} fails)");
        }

        bool fail = x.P99Ms.Value > limit;
        return new(name, fail ? RolloutCheck.Fail : RolloutCheck.Pass, b.P99Ms, x.P99Ms,
            $"p99 latency {P(x.P99Ms.Value)} ms vs champion {P(b.P99Ms.Value)} ms, limit {P(limit)} ms");
    }

    private static RolloutCheck Accuracy(RolloutCriteria c, RolloutObservation o)
    {
        const string name = "accuracy";
        var (b, x) = (o.Champion, o.Challenger);
        if (Short(name, c.MinFeedback, b.Feedback, x.Feedback, "feedbacks") is { } wait)
            return new(name, wait.Length > 0 ? RolloutCheck.Waiting : RolloutCheck.Skipped, b.Accuracy, x.Accuracy, wait.Length > 0 ? wait : $"{name}: no feedback yet");
        double ab = b.Accuracy!.Value, ax = x.Accuracy!.Value;
        // Rewards are in [0, 1], so p(1 − p) bounds their variance: a conservative standard error.
        double se = Math.Sqrt((ab * (1 - ab) / b.Feedback) + (ax * (1 - ax) / x.Feedback));
        bool fail = ClearlyWorse(ab - ax - c.MaxAccuracyDrop, se, c.Z);
        return new(name, fail ? RolloutCheck.Fail : RolloutCheck.Pass, ab, ax,
            $"online accuracy {P(ax)} ({x.Feedback:0} feedbacks) vs champion {P(ab)} ({b.Feedback:0}), tolerance −{P(c.MaxAccuracyDrop)} at z {P(c.Z)}");
    }
}

/// <summary>The input of the <c>Rollout</c> orchestration: the checked spec, with both aliases' versions pinned at the start.</summary>
public sealed record RolloutInput(string Model, RolloutSpec Spec, int ChampionVersion, int ChallengerVersion);

public static class RolloutOutcomes
{
    public const string Running = "running", Promoted = "promoted", RolledBack = "rolled-back", Cancelled = "cancelled", Failed = "failed";
}

public static class RolloutEvents
{
    /// <summary>Raised by <c>POST .../rollouts/{id}/cancel</c>: the rollout rolls back and ends as cancelled.</summary>
    public const string Cancel = "cancel";
}

/// <summary>One stage: its share, its policy generation, when it ran, and the last verdict on it.</summary>
public sealed record RolloutStageRecord(double Percent, string? Generation, DateTime StartedAt, DateTime? EndedAt, RolloutVerdict? Verdict, RolloutObservation? Observation);

/// <summary>The rollout's custom status while it runs and its output when it ends.</summary>
public sealed record RolloutReport
{
    public string Model { get; init; } = "";
    public string Champion { get; init; } = "";
    public string Challenger { get; init; } = "";
    public int ChampionVersion { get; init; }
    public int ChallengerVersion { get; init; }
    public string Outcome { get; init; } = RolloutOutcomes.Running;
    public string Reason { get; init; } = "";
    public double Percent { get; init; }
    public List<RolloutStageRecord> Stages { get; init; } = [];
}

/// <summary>Input of <c>SetRoutingPolicy</c>: the policy a rollout stage (or its end) puts on the model.</summary>
public sealed record SetRoutingPolicyInput(string Model, RoutingPolicy Policy);

public sealed record SetRoutingPolicyResult(string Generation);

/// <summary>Input of <c>ReadRolloutStats</c>: the stage's generation and the two sides.</summary>
public sealed record ReadRolloutStatsInput(string Model, string Generation, string Champion, int ChampionVersion, string Challenger, int ChallengerVersion);
