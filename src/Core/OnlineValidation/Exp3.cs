using MlFunctions.Core.Sweeps;

namespace MlFunctions.Core.OnlineValidation;

/// <summary>
/// Exp3 (Auer, Cesa-Bianchi, Freund and Schapire 2002), the bandit Clipper's model selection uses for
/// bounded rewards in [0, 1]: arm i is played with probability p_i = (1 - γ) w_i / Σw + γ / K, and a reward x on
/// the played arm multiplies its weight by exp(γ x / (p_i K)) (the importance-weighted estimate x / p_i keeps
/// the update unbiased for arms that are rarely played).
/// </summary>
/// <remarks>
/// Regret bound (their Theorem 3.1): for any reward sequence and horizon gain g ≥ G_max,
/// G_max − E[G_Exp3] ≤ (e − 1) γ g + K ln K / γ; with γ = min(1, √(K ln K / ((e − 1) g))) that is
/// 2 √(e − 1) √(g K ln K) ≈ 2.63 √(g K ln K). For K = 2 and g = 5,000: γ ≈ 0.0127, bound ≈ 218.
/// Weights are kept as log-weights: after 10⁶ rewards a weight would be e^(10⁶ γ / K), far past a double.
/// </remarks>
public static class Exp3
{
    /// <summary>γ when nothing is configured: the optimal γ for K arms and a horizon of 10,000 rewards.</summary>
    public const double DefaultHorizon = 10_000;

    public static double OptimalGamma(int arms, double horizonGain) =>
        Math.Min(1, Math.Sqrt(arms * Math.Log(arms) / ((Math.E - 1) * horizonGain)));

    /// <summary>(e − 1) γ g + K ln K / γ: the bound on expected regret against the best arm in hindsight.</summary>
    public static double RegretBound(int arms, double gamma, double horizonGain) =>
        ((Math.E - 1) * gamma * horizonGain) + (arms * Math.Log(arms) / gamma);

    public static double[] Probabilities(IReadOnlyList<ArmStats> arms, double gamma)
    {
        ArgumentOutOfRangeException.ThrowIfZero(arms.Count);
        int k = arms.Count;
        double max = arms.Max(a => a.LogWeight);
        var p = new double[k];
        double sum = 0;
        for (int i = 0; i < k; i++)
            sum += p[i] = Math.Exp(arms[i].LogWeight - max);
        for (int i = 0; i < k; i++)
            p[i] = ((1 - gamma) * p[i] / sum) + (gamma / k);
        return p;
    }

    /// <summary>The arm to play and the probability it had (the feedback needs it for the importance weight).</summary>
    public static (int Arm, double Probability) Choose(IReadOnlyList<ArmStats> arms, double gamma, Random random)
    {
        var p = Probabilities(arms, gamma);
        int arm = random.PickIndex(p);
        return (arm, p[arm]);
    }

    /// <summary>The log-weight change of the played arm for reward <paramref name="reward"/> in [0, 1].</summary>
    public static double LogWeightDelta(double reward, double probability, double gamma, int arms) =>
        gamma * (reward / probability) / arms;
}
