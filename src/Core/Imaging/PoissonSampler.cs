namespace MlFunctions.Core.Imaging;

/// <summary>
/// Exact Poisson variates from a seeded <see cref="Random"/>: Knuth's product of uniforms below λ = 10, Hörmann's PTRS
/// transformed rejection (1993, the algorithm numpy uses) above, which needs about 1.1 pairs of uniforms per draw at any
/// λ. Photon counts per detector ray reach 10⁵–10⁶ at full dose, so a normal approximation would be close; exact draws
/// keep the low-count tail (rays through bone at 1/10 dose) honest.
/// </summary>
public sealed class PoissonSampler
{
    private static readonly double[] LogFactorialTable = BuildLogFactorials(256);

    private readonly Random _random;

    public PoissonSampler(int seed) => _random = new Random(seed);

    public long Next(double lambda)
    {
        if (!(lambda >= 0.0) || double.IsInfinity(lambda))
        {
            throw new ArgumentOutOfRangeException(nameof(lambda), lambda, "the Poisson mean must be finite and ≥ 0");
        }

        return lambda < 10.0 ? Knuth(lambda) : Ptrs(lambda);
    }

    private long Knuth(double lambda)
    {
        var limit = Math.Exp(-lambda);
        var product = _random.NextDouble();
        long k = 0;
        while (product > limit)
        {
            k++;
            product *= _random.NextDouble();
        }

        return k;
    }

    private long Ptrs(double lambda)
    {
        var slam = Math.Sqrt(lambda);
        var loglam = Math.Log(lambda);
        var b = 0.931 + (2.53 * slam);
        var a = -0.059 + (0.02483 * b);
        var invalpha = 1.1239 + (1.1328 / (b - 3.4));
        var vr = 0.9277 - (3.6224 / (b - 2.0));
        while (true)
        {
            var u = _random.NextDouble() - 0.5;
            var v = _random.NextDouble();
            var us = 0.5 - Math.Abs(u);
            var k = Math.Floor((((2.0 * a / us) + b) * u) + lambda + 0.43);
            if (us >= 0.07 && v <= vr)
            {
                return (long)k;
            }

            if (k < 0 || (us < 0.013 && v > us))
            {
                continue;
            }

            if (Math.Log(v) + Math.Log(invalpha) - Math.Log((a / (us * us)) + b) <= -lambda + (k * loglam) - LogFactorial((long)k))
            {
                return (long)k;
            }
        }
    }

    /// <summary>ln k!: a table below 256, Stirling's series above (error below 1e-15 there).</summary>
    internal static double LogFactorial(long k)
    {
        if (k < LogFactorialTable.Length)
        {
            return LogFactorialTable[k];
        }

        double x = k;
        var inv = 1.0 / x;
        var inv2 = inv * inv;
        return (x * Math.Log(x)) - x + (0.5 * Math.Log(2.0 * Math.PI * x)) + (inv * ((1.0 / 12.0) - (inv2 * ((1.0 / 360.0) - (inv2 / 1260.0)))));
    }

    private static double[] BuildLogFactorials(int n)
    {
        var table = new double[n];
        for (var k = 2; k < n; k++)
        {
            table[k] = table[k - 1] + Math.Log(k);
        }

        return table;
    }
}
