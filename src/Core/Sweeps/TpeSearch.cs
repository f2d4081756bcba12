namespace MlFunctions.Core.Sweeps;

/// <summary>
/// Tree-structured Parzen Estimator (Bergstra et al., "Algorithms for Hyper-Parameter Optimization",
/// NeurIPS 2011), univariate as in Hyperopt and Optuna's default: after <c>nStartup</c> random trials the
/// finished trials are split at the <c>gamma</c> quantile of the loss into good and bad, each parameter gets
/// a Parzen density l(x) over the good and g(x) over the bad (truncated Gaussians in unit space plus a
/// wide prior; smoothed counts for categoricals), <c>nCandidates</c> points are drawn from l and the one
/// with the largest l(x)/g(x) is suggested.
/// </summary>
/// <remarks>
/// Running trials and the suggestions already made in this batch go into the bad group (Optuna's
/// constant liar), so parallel workers are not all sent to the same spot; failed trials go there too, so
/// the search moves away from configurations that crash instead of taking them for good.
/// </remarks>
public sealed class TpeSearch : ISuggestionAlgorithm
{
    public const int DefaultStartup = 10;
    public const double DefaultGamma = 0.25;
    public const int DefaultCandidates = 24;
    public const double DefaultPriorWeight = 1.0;
    public const bool DefaultMultivariate = true;

    /// <summary>Hyperopt's cap on the good group: beyond it, l(x) would blur towards the average trial.</summary>
    private const int MaxGood = 25;

    public string Name => "tpe";

    public IReadOnlyList<string> ValidateSettings(SearchSpace space, IReadOnlyDictionary<string, string>? settings)
    {
        var reader = new SettingsReader(settings, "nStartup", "gamma", "nCandidates", "priorWeight", "multivariate").RejectUnknown(Name);
        Read(reader);
        return reader.Problems;
    }

    public SuggestionResult Suggest(SuggestionRequest request)
    {
        var (startup, gamma, candidates, priorWeight, multivariate) = Read(new SettingsReader(request.Settings));
        var history = ObservedHistory.From(request);
        var random = SweepRandom.Create(request.Seed, request.History.Count, Name);
        var space = request.Space;

        var bad = new List<double[]>();
        var good = new List<double[]>();
        if (history.DonePoints.Count >= startup)
        {
            var order = Enumerable.Range(0, history.DonePoints.Count).OrderBy(i => history.DoneLosses[i]).ThenBy(i => i).ToArray();
            var goodCount = Math.Clamp((int)Math.Ceiling(gamma * order.Length), 1, MaxGood);
            good.AddRange(order.Take(goodCount).Select(i => history.DonePoints[i]));
            bad.AddRange(order.Skip(goodCount).Select(i => history.DonePoints[i]));
            bad.AddRange(history.RunningPoints);
            bad.AddRange(history.FailedPoints);
        }

        var suggestions = new List<Suggestion>(request.Count);
        for (var n = 0; n < request.Count; n++)
        {
            double[] unit;
            if (good.Count == 0)
            {
                unit = random.NextUnitVector(space.Parameters.Count);
            }
            else
            {
                unit = multivariate
                    ? SampleByJointRatio(space, good, bad, candidates, priorWeight, random)
                    : SampleByRatio(space, good, bad, candidates, priorWeight, random);
                bad.Add(unit);
            }

            suggestions.Add(new Suggestion(UnitSpace.ToParameterSet(space, unit)));
        }

        return new SuggestionResult(suggestions, false);
    }

    /// <summary>
    /// Univariate TPE's choice for one categorical parameter (column <paramref name="column"/> of the unit
    /// vectors): uniform before <see cref="DefaultStartup"/> trials have finished, then the candidate from
    /// l (the best <see cref="DefaultGamma"/>) with the largest l/g, where g holds the rest, the failed and
    /// the <paramref name="pending"/> points. CMA-ES chooses its categoricals so.
    /// </summary>
    internal static double ChooseCategory(ParameterSpec p, int column, ObservedHistory history, IEnumerable<double[]> pending, Random random)
    {
        var k = p.Values!.Count;
        if (history.DonePoints.Count < DefaultStartup)
        {
            return (random.Next(k) + 0.5) / k;
        }

        var order = Enumerable.Range(0, history.DonePoints.Count).OrderBy(i => history.DoneLosses[i]).ThenBy(i => i).ToArray();
        var goodCount = Math.Clamp((int)Math.Ceiling(DefaultGamma * order.Length), 1, MaxGood);
        var l = new CategoricalParzen(p, order.Take(goodCount).Select(i => history.DonePoints[i][column]), DefaultPriorWeight);
        var g = new CategoricalParzen(p, order.Skip(goodCount).Select(i => history.DonePoints[i])
            .Concat(history.FailedPoints).Concat(pending).Select(x => x[column]), DefaultPriorWeight);
        var best = 0.5;
        var bestScore = double.NegativeInfinity;
        for (var c = 0; c < DefaultCandidates; c++)
        {
            var x = l.Sample(random);
            var score = l.LogDensity(x) - g.LogDensity(x);
            if (score > bestScore)
            {
                best = x;
                bestScore = score;
            }
        }

        return best;
    }

    private static (int Startup, double Gamma, int Candidates, double PriorWeight, bool Multivariate) Read(SettingsReader reader) =>
        (reader.Int("nStartup", DefaultStartup, 1),
         reader.Double("gamma", DefaultGamma, 0, 1),
         reader.Int("nCandidates", DefaultCandidates, 1, 100_000),
         reader.Double("priorWeight", DefaultPriorWeight, 0, 1000),
         reader.Bool("multivariate", DefaultMultivariate));

    private static double[] SampleByRatio(SearchSpace space, List<double[]> good, List<double[]> bad, int candidates, double priorWeight, Random random)
    {
        var d = space.Parameters.Count;
        var l = new IParzen[d];
        var g = new IParzen[d];
        for (var j = 0; j < d; j++)
        {
            var p = space.Parameters[j];
            if (p.Kind == ParameterKind.Categorical)
            {
                l[j] = new CategoricalParzen(p, good.Select(x => x[j]), priorWeight);
                g[j] = new CategoricalParzen(p, bad.Select(x => x[j]), priorWeight);
            }
            else
            {
                l[j] = new NumericParzen(good.Select(x => x[j]), priorWeight);
                g[j] = new NumericParzen(bad.Select(x => x[j]), priorWeight);
            }
        }

        double[]? best = null;
        var bestScore = double.NegativeInfinity;
        for (var c = 0; c < candidates; c++)
        {
            var x = new double[d];
            var score = 0.0;
            for (var j = 0; j < d; j++)
            {
                x[j] = l[j].Sample(random);
                score += l[j].LogDensity(x[j]) - g[j].LogDensity(x[j]);
            }

            if (best is null || score > bestScore)
            {
                best = x;
                bestScore = score;
            }
        }

        return best!;
    }

    private static double[] SampleByJointRatio(SearchSpace space, List<double[]> good, List<double[]> bad, int candidates, double priorWeight, Random random)
    {
        var l = new JointParzen(space, good, priorWeight);
        var g = new JointParzen(space, bad, priorWeight);
        double[]? best = null;
        var bestScore = double.NegativeInfinity;
        for (var c = 0; c < candidates; c++)
        {
            var x = l.Sample(random);
            var score = l.LogDensity(x) - g.LogDensity(x);
            if (best is null || score > bestScore)
            {
                best = x;
                bestScore = score;
            }
        }

        return best!;
    }

    /// <summary>
    /// Multivariate TPE (Falkner et al. 2018, BOHB; Optuna's multivariate=True): one product kernel per
    /// observation over all parameters, so l(x)/g(x) sees how parameters interact (Branin's curved valley)
    /// instead of judging each one alone. Bandwidth 0.2·n^(−1/(d+4)) per numeric dimension (Scott's rule
    /// with Optuna's constant), clipped below at 1/min(100, n+1); a categorical kernel puts weight 1 plus
    /// the prior's share on the observed category; the prior component is N(0.5, 1) and uniform.
    /// </summary>
    private sealed class JointParzen
    {
        private readonly SearchSpace _space;
        private readonly double[][] _mu;
        private readonly double[][] _sigma;
        private readonly double[][] _logMass;
        private readonly bool[] _prior;
        private readonly double[] _logWeight;
        private readonly double[] _weight;
        private readonly double _priorWeight;

        public JointParzen(SearchSpace space, List<double[]> observations, double priorWeight)
        {
            _space = space;
            _priorWeight = priorWeight;
            var d = space.Parameters.Count;
            var n = observations.Count;
            var bandwidth = Math.Max(0.2 * Math.Pow(Math.Max(n, 1), -1.0 / (d + 4)), 1.0 / Math.Min(100.0, n + 1));
            var total = n + priorWeight;
            _mu = observations.Append(Enumerable.Repeat(0.5, d).ToArray()).ToArray();
            _prior = Enumerable.Range(0, n + 1).Select(i => i == n).ToArray();
            _sigma = new double[n + 1][];
            _logMass = new double[n + 1][];
            _weight = new double[n + 1];
            _logWeight = new double[n + 1];
            for (var i = 0; i <= n; i++)
            {
                _weight[i] = (_prior[i] ? priorWeight : 1.0) / total;
                _logWeight[i] = Math.Log(Math.Max(_weight[i], 1e-300));
                _sigma[i] = new double[d];
                _logMass[i] = new double[d];
                for (var j = 0; j < d; j++)
                {
                    _sigma[i][j] = _prior[i] ? 1.0 : bandwidth;
                    var mass = Normal.Cdf((1 - _mu[i][j]) / _sigma[i][j]) - Normal.Cdf(-_mu[i][j] / _sigma[i][j]);
                    _logMass[i][j] = Math.Log(Math.Max(mass, 1e-300));
                }
            }
        }

        public double[] Sample(Random random)
        {
            var i = random.PickIndex(_weight);

            var x = new double[_space.Parameters.Count];
            for (var j = 0; j < x.Length; j++)
            {
                var p = _space.Parameters[j];
                if (p.Kind == ParameterKind.Categorical)
                {
                    var k = p.Values!.Count;
                    var own = UnitSpace.CategoryIndex(p, _mu[i][j]);
                    var keep = _prior[i] ? 0.0 : 1.0 / (1.0 + _priorWeight);
                    var index = random.NextDouble() < keep ? own : random.Next(k);
                    x[j] = (index + 0.5) / k;
                    continue;
                }

                x[j] = Math.Clamp(_mu[i][j], 0, 1);
                for (var attempt = 0; attempt < 64; attempt++)
                {
                    var candidate = _mu[i][j] + (_sigma[i][j] * random.NextGaussian());
                    if (candidate is >= 0 and <= 1)
                    {
                        x[j] = candidate;
                        break;
                    }
                }
            }

            return x;
        }

        public double LogDensity(double[] x)
        {
            var terms = new double[_mu.Length];
            var max = double.NegativeInfinity;
            for (var i = 0; i < terms.Length; i++)
            {
                var sum = _logWeight[i];
                for (var j = 0; j < x.Length; j++)
                {
                    var p = _space.Parameters[j];
                    if (p.Kind == ParameterKind.Categorical)
                    {
                        var k = p.Values!.Count;
                        var same = UnitSpace.CategoryIndex(p, x[j]) == UnitSpace.CategoryIndex(p, _mu[i][j]);
                        var probability = _prior[i] ? 1.0 / k : ((same ? 1.0 : 0.0) + (_priorWeight / k)) / (1.0 + _priorWeight);
                        sum += Math.Log(Math.Max(probability, 1e-300));
                    }
                    else
                    {
                        var z = (x[j] - _mu[i][j]) / _sigma[i][j];
                        sum += -(0.5 * z * z) - 0.9189385332046727 - Math.Log(_sigma[i][j]) - _logMass[i][j];
                    }
                }

                terms[i] = sum;
                max = Math.Max(max, sum);
            }

            var total = 0.0;
            foreach (var t in terms)
            {
                total += Math.Exp(t - max);
            }

            return max + Math.Log(total);
        }
    }

    private interface IParzen
    {
        double Sample(Random random);

        double LogDensity(double x);
    }

    /// <summary>
    /// A mixture of Gaussians truncated to [0, 1], one per observation plus a prior N(0.5, 1); each
    /// bandwidth is the larger gap to its sorted neighbours, clipped to [1/min(100, n+1), 1] (Hyperopt's
    /// adaptive Parzen estimator with its "magic clip").
    /// </summary>
    private sealed class NumericParzen : IParzen
    {
        private readonly double[] _mu;
        private readonly double[] _sigma;
        private readonly double[] _weight;
        private readonly double[] _logNorm;

        public NumericParzen(IEnumerable<double> observations, double priorWeight)
        {
            var points = observations.Select(x => (Mu: x, Prior: false)).Append((Mu: 0.5, Prior: true))
                .OrderBy(p => p.Mu).ThenBy(p => p.Prior).ToArray();
            var n = points.Length;
            _mu = new double[n];
            _sigma = new double[n];
            _weight = new double[n];
            _logNorm = new double[n];
            var minSigma = 1.0 / Math.Min(100.0, n);
            var observationCount = n - 1;
            var totalWeight = observationCount + priorWeight;
            for (var i = 0; i < n; i++)
            {
                _mu[i] = points[i].Mu;
                var left = i > 0 ? points[i].Mu - points[i - 1].Mu : double.NaN;
                var right = i < n - 1 ? points[i + 1].Mu - points[i].Mu : double.NaN;
                var gap = double.IsNaN(left) ? right : double.IsNaN(right) ? left : Math.Max(left, right);
                _sigma[i] = points[i].Prior || double.IsNaN(gap) ? 1.0 : Math.Clamp(gap, minSigma, 1.0);
                _weight[i] = (points[i].Prior ? priorWeight : 1.0) / totalWeight;
                var mass = Normal.Cdf((1 - _mu[i]) / _sigma[i]) - Normal.Cdf(-_mu[i] / _sigma[i]);
                _logNorm[i] = Math.Log(_weight[i]) - Math.Log(_sigma[i]) - Math.Log(Math.Max(mass, 1e-300));
            }
        }

        public double Sample(Random random)
        {
            var i = random.PickIndex(_weight);

            // Rejection keeps the draw inside [0, 1]; a component's mass there is never small (its centre is inside).
            for (var attempt = 0; attempt < 64; attempt++)
            {
                var x = _mu[i] + (_sigma[i] * random.NextGaussian());
                if (x is >= 0 and <= 1)
                {
                    return x;
                }
            }

            return Math.Clamp(_mu[i], 0, 1);
        }

        public double LogDensity(double x)
        {
            // log-sum-exp over the components.
            var terms = new double[_mu.Length];
            var max = double.NegativeInfinity;
            for (var i = 0; i < terms.Length; i++)
            {
                var z = (x - _mu[i]) / _sigma[i];
                terms[i] = _logNorm[i] - (0.5 * z * z) - 0.9189385332046727;
                max = Math.Max(max, terms[i]);
            }

            var sum = 0.0;
            foreach (var t in terms)
            {
                sum += Math.Exp(t - max);
            }

            return max + Math.Log(sum);
        }
    }

    /// <summary>Category frequencies smoothed by a uniform prior of total weight <c>priorWeight</c>.</summary>
    private sealed class CategoricalParzen : IParzen
    {
        private readonly ParameterSpec _parameter;
        private readonly double[] _probability;

        public CategoricalParzen(ParameterSpec parameter, IEnumerable<double> observations, double priorWeight)
        {
            _parameter = parameter;
            var k = parameter.Values!.Count;
            var counts = Enumerable.Repeat(priorWeight / k, k).ToArray();
            foreach (var u in observations)
            {
                counts[UnitSpace.CategoryIndex(parameter, u)] += 1.0;
            }

            var total = counts.Sum();
            _probability = counts.Select(c => c / total).ToArray();
        }

        public double Sample(Random random)
        {
            var i = random.PickIndex(_probability);

            return (i + 0.5) / _probability.Length;
        }

        public double LogDensity(double x) => Math.Log(Math.Max(_probability[UnitSpace.CategoryIndex(_parameter, x)], 1e-300));
    }
}
