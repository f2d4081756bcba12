namespace MlFunctions.Core.Sweeps;

/// <summary>
/// Bayesian optimization with a Gaussian process and expected improvement (Jones et al. 1998; Snoek et al.
/// 2012). After <c>nStartup</c> random trials the losses are standardized, a Matérn 5/2 kernel with one
/// length-scale per unit-space feature is fitted by maximizing the marginal likelihood (a grid of shared
/// length-scales and noise levels, then a coordinate search per feature), and the point with the largest
/// expected improvement among seeded random candidates and local perturbations of the best points is
/// suggested. Categoricals are one-hot features.
/// </summary>
/// <remarks>
/// Running trials and this batch's earlier suggestions are conditioned on as if they had returned the best
/// loss so far (the constant liar "CL-min" of Ginsbourger et al.), which collapses the variance and so the
/// expected improvement around them: parallel workers are spread out rather than sent to one point.
/// Failed trials are conditioned on as the worst loss so far: the model learns to avoid them and never
/// counts them as good.
/// </remarks>
public sealed class GaussianProcessSearch : ISuggestionAlgorithm
{
    public const int DefaultStartup = 5;
    public const int DefaultCandidates = 2000;
    public const double DefaultXi = 0.01;

    private static readonly double[] LengthScaleGrid = [0.05, 0.1, 0.2, 0.35, 0.6, 1.0, 1.7];
    private static readonly double[] NoiseGrid = [1e-6, 1e-4, 1e-2, 1e-1];

    public string Name => "gp";

    public IReadOnlyList<string> ValidateSettings(SearchSpace space, IReadOnlyDictionary<string, string>? settings)
    {
        var reader = new SettingsReader(settings, "nStartup", "nCandidates", "xi").RejectUnknown(Name);
        Read(reader);
        return reader.Problems;
    }

    public SuggestionResult Suggest(SuggestionRequest request)
    {
        var (startup, candidates, xi) = Read(new SettingsReader(request.Settings));
        var history = ObservedHistory.From(request);
        var random = SweepRandom.Create(request.Seed, request.History.Count, Name);
        var space = request.Space;
        var suggestions = new List<Suggestion>(request.Count);

        if (history.DonePoints.Count < Math.Max(startup, 2))
        {
            for (var n = 0; n < request.Count; n++)
            {
                suggestions.Add(new Suggestion(UnitSpace.ToParameterSet(space, random.NextUnitVector(space.Parameters.Count))));
            }

            return new SuggestionResult(suggestions, false);
        }

        var encoder = new FeatureEncoder(space);
        var x = history.DonePoints.Select(encoder.Encode).ToList();
        var y = Standardize(history.DoneLosses);
        var hyper = FitHyperparameters(x, y);

        var best = y.Min();
        var worst = y.Max();
        var pendingX = history.RunningPoints.Select(encoder.Encode).ToList();
        var pendingY = Enumerable.Repeat(best, pendingX.Count).ToList();
        pendingX.AddRange(history.FailedPoints.Select(encoder.Encode));
        pendingY.AddRange(Enumerable.Repeat(worst, history.FailedPoints.Count));

        var topPoints = Enumerable.Range(0, y.Length).OrderBy(i => y[i]).ThenBy(i => i).Take(5).Select(i => history.DonePoints[i]).ToArray();
        for (var n = 0; n < request.Count; n++)
        {
            var model = Posterior.Fit(x.Concat(pendingX).ToList(), y.Concat(pendingY).ToArray(), hyper)
                ?? throw new InvalidOperationException("The Gaussian process could not be fitted (kernel matrix not positive definite).");
            var unit = MaximizeExpectedImprovement(space, encoder, model, best, xi, candidates, topPoints, random);
            suggestions.Add(new Suggestion(UnitSpace.ToParameterSet(space, unit)));
            pendingX.Add(encoder.Encode(unit));
            pendingY.Add(best);
        }

        return new SuggestionResult(suggestions, false);
    }

    private static (int Startup, int Candidates, double Xi) Read(SettingsReader reader) =>
        (reader.Int("nStartup", DefaultStartup, 1),
         reader.Int("nCandidates", DefaultCandidates, 10, 1_000_000),
         reader.Double("xi", DefaultXi, -1e-12, 10));

    private static double[] Standardize(IReadOnlyList<double> losses)
    {
        var mean = losses.Average();
        var variance = losses.Sum(v => (v - mean) * (v - mean)) / losses.Count;
        var std = variance > 1e-24 ? Math.Sqrt(variance) : 1.0;
        return losses.Select(v => (v - mean) / std).ToArray();
    }

    private static Hyperparameters FitHyperparameters(List<double[]> x, double[] y)
    {
        var features = x[0].Length;
        Hyperparameters? best = null;
        var bestScore = double.NegativeInfinity;
        foreach (var ls in LengthScaleGrid)
        {
            foreach (var noise in NoiseGrid)
            {
                var candidate = new Hyperparameters(Enumerable.Repeat(ls, features).ToArray(), noise);
                var score = Posterior.LogMarginalLikelihood(x, y, candidate);
                if (score > bestScore)
                {
                    bestScore = score;
                    best = candidate;
                }
            }
        }

        // Coordinate search per feature: a parameter that barely matters gets a long length-scale, one
        // that matters a lot a short one (automatic relevance determination).
        var current = best!;
        for (var pass = 0; pass < 2; pass++)
        {
            for (var j = 0; j < features; j++)
            {
                foreach (var factor in new[] { 0.5, 2.0 })
                {
                    var scales = (double[])current.LengthScales.Clone();
                    scales[j] = Math.Clamp(scales[j] * factor, 0.02, 10.0);
                    var candidate = current with { LengthScales = scales };
                    var score = Posterior.LogMarginalLikelihood(x, y, candidate);
                    if (score > bestScore + 1e-9)
                    {
                        bestScore = score;
                        current = candidate;
                    }
                }
            }
        }

        return current;
    }

    private static double[] MaximizeExpectedImprovement(
        SearchSpace space, FeatureEncoder encoder, Posterior model, double best, double xi, int candidates, double[][] topPoints, Random random)
    {
        var d = space.Parameters.Count;
        double[]? bestUnit = null;
        var bestEi = double.NegativeInfinity;

        void Consider(double[] unit)
        {
            for (var j = 0; j < d; j++)
            {
                unit[j] = UnitSpace.Snap(space.Parameters[j], unit[j]);
            }

            var (mean, sd) = model.Predict(encoder.Encode(unit));
            var ei = ExpectedImprovement(mean, sd, best, xi);
            if (bestUnit is null || ei > bestEi)
            {
                bestEi = ei;
                bestUnit = unit;
            }
        }

        for (var c = 0; c < candidates; c++)
        {
            Consider(random.NextUnitVector(d));
        }

        // Local perturbations of the best trials: EI's optimum is often close to the incumbent, and a
        // global random set of a few thousand points is thin in six or more dimensions.
        var local = Math.Max(20, candidates / 20);
        foreach (var centre in topPoints)
        {
            for (var c = 0; c < local; c++)
            {
                Consider(Perturb(space, centre, c % 2 == 0 ? 0.05 : 0.15, random));
            }
        }

        // Then refine around the best candidate with shrinking steps.
        foreach (var scale in new[] { 0.05, 0.02, 0.005 })
        {
            var centre = (double[])bestUnit!.Clone();
            for (var c = 0; c < local; c++)
            {
                Consider(Perturb(space, centre, scale, random));
            }
        }

        return bestUnit!;
    }

    private static double[] Perturb(SearchSpace space, double[] centre, double scale, Random random)
    {
        var unit = new double[centre.Length];
        for (var j = 0; j < unit.Length; j++)
        {
            if (space.Parameters[j].Kind == ParameterKind.Categorical)
            {
                unit[j] = random.NextDouble() < 0.2 ? random.NextDouble() : centre[j];
            }
            else
            {
                unit[j] = Math.Clamp(centre[j] + (scale * random.NextGaussian()), 0, 1);
            }
        }

        return unit;
    }

    internal static double ExpectedImprovement(double mean, double sd, double best, double xi)
    {
        var improvement = best - mean - xi;
        if (sd < 1e-12)
        {
            return Math.Max(improvement, 0);
        }

        var z = improvement / sd;
        return (improvement * Normal.Cdf(z)) + (sd * Normal.Pdf(z));
    }

    /// <summary>Unit vector → GP features: numeric parameters as is, categoricals one-hot scaled so two categories are 1 apart.</summary>
    private sealed class FeatureEncoder
    {
        private readonly SearchSpace _space;
        private readonly int _features;

        public FeatureEncoder(SearchSpace space)
        {
            _space = space;
            _features = space.Parameters.Sum(p => p.Kind == ParameterKind.Categorical ? p.Values!.Count : 1);
        }

        public double[] Encode(double[] unit)
        {
            var features = new double[_features];
            var f = 0;
            for (var j = 0; j < unit.Length; j++)
            {
                var p = _space.Parameters[j];
                if (p.Kind == ParameterKind.Categorical)
                {
                    features[f + UnitSpace.CategoryIndex(p, unit[j])] = Math.Sqrt(0.5);
                    f += p.Values!.Count;
                }
                else
                {
                    features[f++] = unit[j];
                }
            }

            return features;
        }
    }

    private sealed record Hyperparameters(double[] LengthScales, double NoiseRatio);

    /// <summary>
    /// The GP posterior under K = s²(C + λI), with C the Matérn 5/2 correlation. The signal variance s² is
    /// profiled out (its maximum-likelihood value yᵀ(C + λI)⁻¹y / n), so only length-scales and λ are searched.
    /// </summary>
    private sealed class Posterior
    {
        private readonly List<double[]> _x;
        private readonly double[][] _chol;
        private readonly double[] _k;
        private readonly double[] _v;
        private readonly double[] _alpha;
        private readonly double _signalVariance;
        private readonly Hyperparameters _hyper;

        private Posterior(List<double[]> x, double[][] chol, double[] alpha, double signalVariance, Hyperparameters hyper)
        {
            _x = x;
            _chol = chol;
            _k = new double[x.Count];
            _v = new double[x.Count];
            _alpha = alpha;
            _signalVariance = signalVariance;
            _hyper = hyper;
        }

        public static Posterior? Fit(List<double[]> x, double[] y, Hyperparameters hyper)
        {
            var chol = Factor(x, hyper);
            if (chol is null)
            {
                return null;
            }

            var n = y.Length;
            var z = Cholesky.SolveLower(chol, y);
            var signalVariance = Math.Max(z.Sum(v => v * v) / n, 1e-12);
            var alpha = Cholesky.SolveUpper(chol, z);
            return new Posterior(x, chol, alpha, signalVariance, hyper);
        }

        public static double LogMarginalLikelihood(List<double[]> x, double[] y, Hyperparameters hyper)
        {
            var chol = Factor(x, hyper);
            if (chol is null)
            {
                return double.NegativeInfinity;
            }

            var n = y.Length;
            var z = Cholesky.SolveLower(chol, y);
            var signalVariance = Math.Max(z.Sum(v => v * v) / n, 1e-12);
            var logDet = 0.0;
            for (var i = 0; i < n; i++)
            {
                logDet += Math.Log(chol[i][i]);
            }

            return (-0.5 * n * Math.Log(signalVariance)) - logDet - (0.5 * n * (1 + Math.Log(2 * Math.PI)));
        }

        public (double Mean, double Sd) Predict(double[] features)
        {
            // Buffers are reused: one posterior scores thousands of candidates within one ask.
            var n = _x.Count;
            var mean = 0.0;
            for (var i = 0; i < n; i++)
            {
                _k[i] = Matern52(features, _x[i], _hyper.LengthScales);
                mean += _k[i] * _alpha[i];
            }

            Cholesky.SolveLower(_chol, _k, _v);
            var explained = 0.0;
            for (var i = 0; i < n; i++)
            {
                explained += _v[i] * _v[i];
            }

            var variance = _signalVariance * Math.Max(1.0 - explained, 1e-12);
            return (mean, Math.Sqrt(variance));
        }

        private static double[][]? Factor(List<double[]> x, Hyperparameters hyper)
        {
            var n = x.Count;
            var matrix = new double[n][];
            for (var i = 0; i < n; i++)
            {
                matrix[i] = new double[i + 1];
                matrix[i][i] = 1.0 + hyper.NoiseRatio;
                for (var j = 0; j < i; j++)
                {
                    matrix[i][j] = Matern52(x[i], x[j], hyper.LengthScales);
                }
            }

            // Duplicate points (a liar on a trial's spot) make C singular at tiny λ: add jitter until it factors.
            for (var jitter = 0.0; jitter <= 1e-2; jitter = jitter == 0 ? 1e-8 : jitter * 100)
            {
                var copy = matrix.Select(row => (double[])row.Clone()).ToArray();
                for (var i = 0; i < n; i++)
                {
                    copy[i][i] += jitter;
                }

                if (Cholesky.FactorInPlace(copy))
                {
                    return copy;
                }
            }

            return null;
        }

        private static double Matern52(double[] a, double[] b, double[] lengthScales)
        {
            var r2 = 0.0;
            for (var i = 0; i < a.Length; i++)
            {
                var t = (a[i] - b[i]) / lengthScales[i];
                r2 += t * t;
            }

            var r = Math.Sqrt(5.0 * r2);
            return (1.0 + r + (r * r / 3.0)) * Math.Exp(-r);
        }
    }
}

/// <summary>
/// A small dense Cholesky factorization on a lower-triangular jagged array (row i holds columns 0 … i):
/// the GP's matrices are a few hundred rows at most, so no BLAS is needed.
/// </summary>
internal static class Cholesky
{
    /// <summary>Overwrites <paramref name="a"/> with L (A = LLᵀ); false when A is not positive definite.</summary>
    public static bool FactorInPlace(double[][] a)
    {
        var n = a.Length;
        for (var i = 0; i < n; i++)
        {
            var rowI = a[i];
            for (var j = 0; j <= i; j++)
            {
                var rowJ = a[j];
                var sum = rowI[j];
                for (var k = 0; k < j; k++)
                {
                    sum -= rowI[k] * rowJ[k];
                }

                if (i == j)
                {
                    if (!(sum > 0))
                    {
                        return false;
                    }

                    rowI[i] = Math.Sqrt(sum);
                }
                else
                {
                    rowI[j] = sum / rowJ[j];
                }
            }
        }

        return true;
    }

    /// <summary>Solves L z = b.</summary>
    public static double[] SolveLower(double[][] l, IReadOnlyList<double> b)
    {
        var z = new double[b.Count];
        for (var i = 0; i < z.Length; i++)
        {
            z[i] = b[i];
        }

        SolveLower(l, z, z);
        return z;
    }

    /// <summary>Solves L z = b into <paramref name="z"/> (which may be <paramref name="b"/> itself).</summary>
    public static void SolveLower(double[][] l, double[] b, double[] z)
    {
        for (var i = 0; i < b.Length; i++)
        {
            var row = l[i];
            var sum = b[i];
            for (var k = 0; k < i; k++)
            {
                sum -= row[k] * z[k];
            }

            z[i] = sum / row[i];
        }
    }

    /// <summary>Solves Lᵀ x = z.</summary>
    public static double[] SolveUpper(double[][] l, double[] z)
    {
        var n = z.Length;
        var x = new double[n];
        for (var i = n - 1; i >= 0; i--)
        {
            var sum = z[i];
            for (var k = i + 1; k < n; k++)
            {
                sum -= l[k][i] * x[k];
            }

            x[i] = sum / l[i][i];
        }

        return x;
    }
}
