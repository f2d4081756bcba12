using MlFunctions.Core.Sweeps;

namespace MlFunctions.Core.OnlineValidation;

/// <summary>
/// Thompson sampling for Bernoulli rewards (Beta-Bernoulli): each arm's success rate has a Beta(1 + s, 1 + f)
/// posterior; a choice draws one sample per arm and takes the largest. Rewards in (0, 1) update the posterior
/// fractionally (r successes, 1 - r failures), which is exact for 0/1 rewards and the usual extension for
/// bounded ones. Deterministic given the arms' counts and the <see cref="Random"/> passed in.
/// </summary>
public static class ThompsonSampling
{
    public static int Choose(IReadOnlyList<ArmStats> arms, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfZero(arms.Count);
        int best = 0;
        double bestDraw = double.NegativeInfinity;
        for (int i = 0; i < arms.Count; i++)
        {
            double draw = SampleBeta(1 + Math.Max(0, arms[i].Successes), 1 + Math.Max(0, arms[i].Failures), random);
            if (draw > bestDraw)
            {
                bestDraw = draw;
                best = i;
            }
        }
        return best;
    }

    /// <summary>Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).</summary>
    public static double SampleBeta(double a, double b, Random random)
    {
        double x = SampleGamma(a, random), y = SampleGamma(b, random);
        return x / (x + y);
    }

    /// <summary>
    /// Gamma(shape, 1) by Marsaglia and Tsang (2000): about 1.03 normal draws per sample for shape ≥ 1; shapes
    /// below 1 use Gamma(shape + 1) · U^(1/shape).
    /// </summary>
    public static double SampleGamma(double shape, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(shape);
        if (shape < 1)
            return SampleGamma(shape + 1, random) * Math.Pow(1.0 - random.NextDouble(), 1.0 / shape);
        double d = shape - (1.0 / 3.0), c = 1.0 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                x = random.NextGaussian();
                v = 1 + (c * x);
            }
            while (v <= 0);
            v = v * v * v;
            double u = 1.0 - random.NextDouble();
            if (u < 1 - (0.0331 * x * x * x * x) || Math.Log(u) < (0.5 * x * x) + (d * (1 - v + Math.Log(v))))
                return d * v;
        }
    }
}
