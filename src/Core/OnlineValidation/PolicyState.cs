using System.Text.Json.Serialization;

namespace MlFunctions.Core.OnlineValidation;

/// <summary>
/// The learned state of one model's policy: feedback statistics per arm and, for an A/B test, the
/// always-valid p-value so far. It belongs to one policy <see cref="Generation"/>: a replaced policy starts
/// from nothing.
/// </summary>
public sealed record PolicyState
{
    public string Generation { get; init; } = "";
    public Dictionary<string, ArmStats> Arms { get; init; } = new(StringComparer.Ordinal);

    /// <summary>abtest: the smallest 1/Λ over every look (1 = no evidence yet).</summary>
    public double PValue { get; init; } = 1;

    /// <summary>abtest: total feedbacks when the test first became significant.</summary>
    public double? SignificantAtFeedback { get; init; }

    [JsonIgnore]
    public double TotalFeedback => Arms.Values.Sum(a => a.Feedback);

    public static PolicyState Fresh(string generation) => new() { Generation = generation };

    public ArmStats Arm(string alias) => Arms.TryGetValue(alias, out var a) ? a : ArmStats.Empty;
}

/// <summary>Which alias serves a request, and with what probability (Exp3's importance weight needs it).</summary>
public sealed record RoutingDecision(string Alias, double Probability);

/// <summary>The policies' decisions and updates as pure functions of (policy, state, request key).</summary>
public static class PolicyEngine
{
    /// <summary>
    /// The alias for a request. Canary and A/B are sticky per key (same key, same alias, in every host); bandit
    /// draws come from a generator seeded by the policy seed, the feedback count and the key, so a decision is
    /// reproducible from the state it was made on.
    /// </summary>
    public static RoutingDecision Decide(RoutingPolicy policy, PolicyState state, string requestKey)
    {
        var names = policy.ArmNames();
        switch (policy.Kind)
        {
            case RoutingPolicy.Fixed:
                return new RoutingDecision(names[0], 1);
            case RoutingPolicy.Canary or RoutingPolicy.AbTest:
            {
                var weights = names.Select(n => policy.Weights![n]).ToList();
                int i = StickyBuckets.Pick(requestKey, weights, policy.Seed);
                return new RoutingDecision(names[i], weights[i] / weights.Sum());
            }
            case RoutingPolicy.Bandit:
            {
                var arms = names.Select(state.Arm).ToList();
                var random = new Random(Sweeps.SweepRandom.SeedFor(policy.Seed, (long)state.TotalFeedback, requestKey));
                if (policy.Algorithm == RoutingPolicy.Exp3Algorithm)
                {
                    var (arm, p) = Exp3.Choose(arms, policy.ExplorationRate, random);
                    return new RoutingDecision(names[arm], p);
                }
                return new RoutingDecision(names[ThompsonSampling.Choose(arms, random)], 1);
            }
            default:
                throw new ArgumentException($"policy kind '{policy.Kind}' is unknown", nameof(policy));
        }
    }

    /// <summary>The state after one feedback of <paramref name="reward"/> in [0, 1] on <paramref name="alias"/>.</summary>
    public static PolicyState Apply(RoutingPolicy policy, PolicyState state, string alias, double reward, double probability)
    {
        double logWeight = policy is { Kind: RoutingPolicy.Bandit, Algorithm: RoutingPolicy.Exp3Algorithm }
            ? Exp3.LogWeightDelta(reward, Math.Max(probability, 1e-9), policy.ExplorationRate, policy.ArmNames().Count)
            : 0;
        var arms = new Dictionary<string, ArmStats>(state.Arms, StringComparer.Ordinal) { [alias] = state.Arm(alias).Add(ArmStats.Delta(reward, logWeight)) };
        var next = state with { Arms = arms };
        if (policy.Kind != RoutingPolicy.AbTest)
            return next;
        var (control, treatment) = policy.Variants();
        var verdict = SequentialTest.Evaluate(next.Arm(control), next.Arm(treatment), policy.AlphaOrDefault, state.PValue);
        return next with
        {
            PValue = verdict.PValue,
            SignificantAtFeedback = state.SignificantAtFeedback ?? (verdict.Significant ? next.TotalFeedback : null),
        };
    }

    /// <summary>abtest: the verdict on the state (null for other kinds).</summary>
    public static SequentialTestResult? Verdict(RoutingPolicy policy, PolicyState state)
    {
        if (policy.Kind != RoutingPolicy.AbTest)
            return null;
        var (control, treatment) = policy.Variants();
        var (a, b) = (state.Arm(control), state.Arm(treatment));
        return new SequentialTestResult(b.Mean - a.Mean, state.PValue, state.PValue <= policy.AlphaOrDefault, policy.AlphaOrDefault, a.Feedback, b.Feedback);
    }
}
