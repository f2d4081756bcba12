using MlFunctions.Core.OnlineValidation;
using MlFunctions.Core.Sweeps;
using Xunit.Abstractions;

namespace MlFunctions.Serving.Tests.OnlineValidation;

/// <summary>The online policies' math, by seeded simulation: every figure is printed, none depends on a clock.</summary>
public sealed class PolicyMathTests(ITestOutputHelper output)
{
    private static double Bernoulli(Random random, double p) => random.NextDouble() < p ? 1 : 0;

    [Fact]
    public void Thompson_sampling_converges_to_the_better_arm()
    {
        double[] means = [0.55, 0.70];
        const int rounds = 2000, seeds = 20;
        double shareSum = 0;
        for (int seed = 0; seed < seeds; seed++)
        {
            var random = new Random(seed);
            var arms = new[] { ArmStats.Empty, ArmStats.Empty };
            int bestInLastHalf = 0;
            for (int t = 0; t < rounds; t++)
            {
                int arm = ThompsonSampling.Choose(arms, random);
                arms[arm] = arms[arm].Add(ArmStats.Delta(Bernoulli(random, means[arm])));
                if (t >= rounds / 2 && arm == 1)
                    bestInLastHalf++;
            }
            shareSum += bestInLastHalf / (rounds / 2.0);
        }
        double share = shareSum / seeds;
        output.WriteLine($"Thompson, arms {means[0]} vs {means[1]}, {rounds} rounds, {seeds} seeds: better arm's share of the last half = {share:F3}");
        Assert.True(share >= 0.9, $"share {share:F3}");
    }

    [Fact]
    public void Thompson_choice_is_deterministic_given_state_and_seed()
    {
        var arms = new[] { ArmStats.Empty.Add(ArmStats.Delta(1)), ArmStats.Empty.Add(ArmStats.Delta(0)), ArmStats.Empty };
        var first = Enumerable.Range(0, 50).Select(i => ThompsonSampling.Choose(arms, new Random(SweepRandom.SeedFor(7, i, "req")))).ToList();
        var again = Enumerable.Range(0, 50).Select(i => ThompsonSampling.Choose(arms, new Random(SweepRandom.SeedFor(7, i, "req")))).ToList();
        Assert.Equal(first, again);
        Assert.True(first.Distinct().Count() > 1, "different seeds should explore different arms");
    }

    [Fact]
    public void Exp3_cumulative_regret_stays_within_its_bound()
    {
        // Oblivious stochastic rewards: every round draws all arms' rewards, so the best arm in hindsight is known.
        double[] means = [0.40, 0.70];
        const int rounds = 5000, seeds = 30, k = 2;
        double gamma = Exp3.OptimalGamma(k, rounds);
        double bound = Exp3.RegretBound(k, gamma, rounds); // g = T ≥ G_max since rewards are ≤ 1
        double regretSum = 0, worst = 0;
        for (int seed = 0; seed < seeds; seed++)
        {
            var random = new Random(seed);
            var arms = new[] { ArmStats.Empty, ArmStats.Empty };
            var totals = new double[k];
            double gained = 0;
            for (int t = 0; t < rounds; t++)
            {
                var rewards = means.Select(m => Bernoulli(random, m)).ToArray();
                for (int i = 0; i < k; i++)
                    totals[i] += rewards[i];
                var (arm, p) = Exp3.Choose(arms, gamma, random);
                gained += rewards[arm];
                arms[arm] = arms[arm].Add(ArmStats.Delta(rewards[arm], Exp3.LogWeightDelta(rewards[arm], p, gamma, k)));
            }
            double regret = totals.Max() - gained;
            regretSum += regret;
            worst = Math.Max(worst, regret);
        }
        double mean = regretSum / seeds;
        output.WriteLine($"Exp3, arms {means[0]} vs {means[1]}, T={rounds}, γ={gamma:F4}: mean regret {mean:F1}, worst {worst:F1}, " +
            $"bound (e-1)γg + K ln K/γ = {bound:F1}; uniform play would lose {(means[1] - means[0]) / 2 * rounds:F0}");
        Assert.True(mean <= bound, $"mean regret {mean:F1} > bound {bound:F1}");
    }

    [Fact]
    public void Exp3_probabilities_mix_exploration_and_survive_huge_log_weights()
    {
        var arms = new[] { new ArmStats { LogWeight = 1e6 }, new ArmStats { LogWeight = 0 } };
        var p = Exp3.Probabilities(arms, 0.1);
        Assert.Equal(1.0, p.Sum(), 9);
        Assert.Equal(0.05, p[1], 9); // only the γ/K floor is left for the losing arm
        Assert.Equal(0.95, p[0], 9);
    }

    [Fact]
    public void Sticky_buckets_are_stable_per_key_and_follow_the_weights()
    {
        double[] weights = [90, 10];
        var keys = Enumerable.Range(0, 20_000).Select(i => $"req-{i}").ToList();
        var picks = keys.Select(k => StickyBuckets.Pick(k, weights)).ToList();
        Assert.Equal(picks, keys.Select(k => StickyBuckets.Pick(k, weights)));
        double share = picks.Count(p => p == 1) / (double)picks.Count;
        output.WriteLine($"canary 90/10 over {keys.Count} keys: challenger share {share:F4}");
        Assert.InRange(share, 0.1 - (3 * Math.Sqrt(0.09 / keys.Count)), 0.1 + (3 * Math.Sqrt(0.09 / keys.Count)));

        // Growing the challenger from 10% to 25% keeps every key that was already on it.
        var wider = keys.Select(k => StickyBuckets.Pick(k, [75, 25])).ToList();
        Assert.All(Enumerable.Range(0, keys.Count).Where(i => picks[i] == 1), i => Assert.Equal(1, wider[i]));
    }

    [Fact]
    public void Sequential_test_false_positive_rate_on_equal_arms_holds_at_alpha()
    {
        const double alpha = 0.05, rate = 0.8;
        const int runs = 2000, perArm = 1000;
        int falsePositives = 0;
        for (int run = 0; run < runs; run++)
        {
            var random = new Random(run);
            ArmStats a = ArmStats.Empty, b = ArmStats.Empty;
            double p = 1;
            for (int n = 0; n < perArm; n++)
            {
                a = a.Add(ArmStats.Delta(Bernoulli(random, rate)));
                b = b.Add(ArmStats.Delta(Bernoulli(random, rate)));
                var verdict = SequentialTest.Evaluate(a, b, alpha, p); // a look after every pair of feedbacks
                p = verdict.PValue;
                if (verdict.Significant)
                {
                    falsePositives++;
                    break;
                }
            }
        }
        double fpr = falsePositives / (double)runs, limit = alpha + (3 * Math.Sqrt(alpha * (1 - alpha) / runs));
        output.WriteLine($"mSPRT A/A: {runs} runs of {perArm} feedbacks per arm at rate {rate}, a look after each: false-positive rate {fpr:F4} (limit {limit:F4})");
        Assert.True(fpr <= limit, $"false-positive rate {fpr:F4} > {limit:F4}");
    }

    [Fact]
    public void Sequential_test_detects_a_real_difference()
    {
        const double alpha = 0.05;
        const int runs = 200, maxPerArm = 5000;
        var needed = new List<int>();
        int wrongSign = 0;
        for (int run = 0; run < runs; run++)
        {
            var random = new Random(10_000 + run);
            ArmStats a = ArmStats.Empty, b = ArmStats.Empty;
            double p = 1;
            for (int n = 1; n <= maxPerArm; n++)
            {
                a = a.Add(ArmStats.Delta(Bernoulli(random, 0.90)));
                b = b.Add(ArmStats.Delta(Bernoulli(random, 0.95)));
                var verdict = SequentialTest.Evaluate(a, b, alpha, p);
                p = verdict.PValue;
                if (verdict.Significant)
                {
                    needed.Add(n);
                    if (verdict.Difference < 0)
                        wrongSign++;
                    break;
                }
            }
        }
        needed.Sort();
        double power = needed.Count / (double)runs;
        output.WriteLine($"mSPRT 0.90 vs 0.95: detected in {power:P1} of {runs} runs within {maxPerArm} per arm; " +
            $"median {(needed.Count > 0 ? needed[needed.Count / 2] : -1)} feedbacks per arm; wrong sign {wrongSign}");
        Assert.True(power >= 0.9, $"power {power:F3}");
        Assert.Equal(0, wrongSign);
    }
}
