namespace MlFunctions.Core.Sweeps;

/// <summary>
/// CMA-ES (Hansen &amp; Ostermeier 2001; the update as in Hansen's tutorial "The CMA Evolution Strategy",
/// arXiv:1604.00772) with IPOP restarts (Auger &amp; Hansen 2005), in the unit cube of
/// <see cref="UnitSpace"/>. The numeric parameters (doubles and ints; an int or stepped value is the point
/// it snaps to) are the search distribution's dimensions.
/// </summary>
/// <remarks>
/// <para><b>A pure function of the history.</b> There is no stored optimizer state: each ask replays the
/// strategy over the finished trials in history order. They are cut into generations of λ; each full
/// generation updates mean, step size, paths and covariance from the points that actually ran (so a
/// point rounded by an int parameter is told as it ran). The finished trials past the last full generation
/// and the running ones are this generation's members already drawn; the next suggestion is member
/// <c>k</c>, drawn from a generator seeded by (seed, restart, generation, k). The same history and seed
/// always give the same suggestions, and a sweep resumed from its recorded history carries on as if it
/// had never stopped. Failed trials rank last in their generation.</para>
/// <para><b>Restarts (IPOP).</b> After a generation the run restarts with twice the population from a
/// seeded uniform point when the step size is spent (σ·√λmax below 1e-4 of the range: no hyperparameter
/// differs that finely), the losses are flat (the generation's range and the last 10 generations' bests
/// within 1e-12), the best has not improved for 10 + ⌈30n/λ⌉ generations (pycma's tolstagnation), or the
/// covariance's condition number passes 1e14.</para>
/// <para><b>Categoricals</b> are not CMA dimensions (a Gaussian over category shares has no meaning): each
/// one is chosen as univariate TPE chooses it (l/g of smoothed counts among the best and the rest), uniform
/// until TPE's startup count of trials has finished. A space with only categoricals is searched by TPE.</para>
/// </remarks>
public sealed class CmaEsSearch : ISuggestionAlgorithm
{
    /// <summary>Optuna's default: a sixth of the range, so ±3σ spans the space.</summary>
    public const double DefaultSigma0 = 1.0 / 6.0;

    private const double TolX = 1e-4;
    private const double TolFun = 1e-12;
    private const double MaxCondition = 1e14;

    public string Name => "cmaes";

    public IReadOnlyList<string> ValidateSettings(SearchSpace space, IReadOnlyDictionary<string, string>? settings)
    {
        var reader = new SettingsReader(settings, "sigma0", "popSize", "nStartup").RejectUnknown(Name);
        Read(reader);
        return reader.Problems;
    }

    public SuggestionResult Suggest(SuggestionRequest request)
    {
        var space = request.Space;
        var numeric = Enumerable.Range(0, space.Parameters.Count).Where(j => space.Parameters[j].Kind != ParameterKind.Categorical).ToArray();
        if (numeric.Length == 0)
        {
            return SuggestionAlgorithms.Get("tpe").Suggest(request with { Settings = null });
        }

        var settings = Read(new SettingsReader(request.Settings));
        var history = ObservedHistory.From(request);
        var replay = Replay(request, numeric, settings);
        var categorical = Enumerable.Range(0, space.Parameters.Count).Where(j => space.Parameters[j].Kind == ParameterKind.Categorical).ToArray();
        var categoryRandom = SweepRandom.Create(request.Seed, request.History.Count, Name + "/categorical");
        var startupRandom = SweepRandom.Create(request.Seed, request.History.Count, Name + "/startup");

        var suggestions = new List<Suggestion>(request.Count);
        var pending = history.RunningPoints.ToList();
        for (var n = 0; n < request.Count; n++)
        {
            double[] unit;
            if (replay.State is not { } state)
            {
                unit = startupRandom.NextUnitVector(space.Parameters.Count);
            }
            else
            {
                unit = new double[space.Parameters.Count];
                var x = state.Sample(request.Seed, replay.Drawn + n);
                for (var i = 0; i < numeric.Length; i++)
                {
                    unit[numeric[i]] = x[i];
                }

                foreach (var j in categorical)
                {
                    unit[j] = TpeSearch.ChooseCategory(space.Parameters[j], j, history, pending, categoryRandom);
                }
            }

            pending.Add(unit);
            suggestions.Add(new Suggestion(UnitSpace.ToParameterSet(space, unit)));
        }

        return new SuggestionResult(suggestions, false);
    }

    /// <summary>Where the strategy stands after the history: restarts so far, population, generation and step size (for tests and diagnostics).</summary>
    public CmaEsProgress Inspect(SuggestionRequest request)
    {
        var numeric = Enumerable.Range(0, request.Space.Parameters.Count).Where(j => request.Space.Parameters[j].Kind != ParameterKind.Categorical).ToArray();
        var replay = Replay(request, numeric, Read(new SettingsReader(request.Settings)));
        return replay.State is { } s
            ? new CmaEsProgress(s.Restart, s.Lambda, s.Generation, s.Sigma, s.Mean.ToArray(), replay.Drawn)
            : new CmaEsProgress(0, 0, 0, 0, [], replay.Drawn);
    }

    private static Settings Read(SettingsReader reader) =>
        new(reader.Double("sigma0", DefaultSigma0, 0, 1),
            reader.Int("popSize", 0, 0, 10_000),
            reader.Int("nStartup", 0, 0));

    private sealed record Settings(double Sigma0, int PopSize, int Startup);

    private sealed record ReplayResult(Strategy? State, int Drawn);

    /// <summary>Runs the strategy over the finished trials; <see cref="ReplayResult.Drawn"/> is how many members of the current generation exist already.</summary>
    private static ReplayResult Replay(SuggestionRequest request, int[] numeric, Settings settings)
    {
        var space = request.Space;
        var finished = new List<(double[] X, double Loss)>();
        var running = 0;
        foreach (var trial in request.History)
        {
            if (UnitSpace.TryToUnitVector(space, trial.Parameters) is not { } unit)
            {
                continue;
            }

            if (trial.State == TrialState.Running)
            {
                running++;
                continue;
            }

            var x = numeric.Select(j => unit[j]).ToArray();
            var ok = trial.State is TrialState.Succeeded or TrialState.EarlyStopped && trial.Objective is { } o && double.IsFinite(o);
            finished.Add((x, ok ? ObservedHistory.Loss(trial.Objective!.Value, request.Direction) : double.PositiveInfinity));
        }

        // nStartup trials come first (random draws, or another algorithm's trials when auto hands over): the
        // first generation is centred on the best of them; with none, on the centre of the space.
        if (finished.Count < settings.Startup)
        {
            return new ReplayResult(null, finished.Count + running);
        }

        var startup = finished.Take(settings.Startup).Where(f => double.IsFinite(f.Loss)).OrderBy(f => f.Loss).FirstOrDefault();
        var mean = startup.X ?? Enumerable.Repeat(0.5, numeric.Length).ToArray();
        var lambda0 = settings.PopSize > 0 ? settings.PopSize : 4 + (int)Math.Floor(3 * Math.Log(numeric.Length));
        var state = new Strategy(numeric.Length, lambda0, mean, settings.Sigma0, restart: 0);

        var generation = new List<(double[] X, double Loss)>(state.Lambda);
        foreach (var f in finished.Skip(settings.Startup))
        {
            generation.Add(f);
            if (generation.Count < state.Lambda)
            {
                continue;
            }

            state.Tell(generation);
            generation.Clear();
            if (state.ShouldRestart())
            {
                var restart = state.Restart + 1;
                var random = new Random(SweepRandom.SeedFor(request.Seed, restart, "cmaes/restart"));
                state = new Strategy(numeric.Length, lambda0 << Math.Min(restart, 16), random.NextUnitVector(numeric.Length), settings.Sigma0, restart);
            }
        }

        return new ReplayResult(state, generation.Count + running);
    }

    /// <summary>The (μ/μ_w, λ)-CMA-ES state and its update; default strategy parameters from Hansen's tutorial, Table 1.</summary>
    private sealed class Strategy
    {
        private readonly int _n;
        private readonly int _mu;
        private readonly double[] _weights;
        private readonly double _muEff;
        private readonly double _cc;
        private readonly double _cs;
        private readonly double _c1;
        private readonly double _cmu;
        private readonly double _damps;
        private readonly double _chiN;
        private readonly double[] _pc;
        private readonly double[] _ps;
        private readonly double[,] _c;
        private readonly List<double> _generationBests = new();
        private double[,] _b;
        private double[] _d;
        private double _best = double.PositiveInfinity;
        private int _sinceImprovement;
        private double _lastRange = double.PositiveInfinity;

        public Strategy(int n, int lambda, double[] mean, double sigma, int restart)
        {
            _n = n;
            Lambda = lambda;
            Restart = restart;
            Mean = (double[])mean.Clone();
            Sigma = sigma;
            _mu = lambda / 2;
            var raw = Enumerable.Range(1, _mu).Select(i => Math.Log((lambda + 1) / 2.0) - Math.Log(i)).ToArray();
            var sum = raw.Sum();
            _weights = raw.Select(w => w / sum).ToArray();
            _muEff = 1.0 / _weights.Sum(w => w * w);
            _cc = (4 + (_muEff / n)) / (n + 4 + (2 * _muEff / n));
            _cs = (_muEff + 2) / (n + _muEff + 5);
            _c1 = 2 / (((n + 1.3) * (n + 1.3)) + _muEff);
            _cmu = Math.Min(1 - _c1, 2 * (_muEff - 2 + (1 / _muEff)) / (((n + 2) * (n + 2)) + _muEff));
            _damps = 1 + (2 * Math.Max(0, Math.Sqrt((_muEff - 1) / (n + 1)) - 1)) + _cs;
            _chiN = Math.Sqrt(n) * (1 - (1.0 / (4 * n)) + (1.0 / (21.0 * n * n)));
            _pc = new double[n];
            _ps = new double[n];
            _c = new double[n, n];
            _b = new double[n, n];
            _d = Enumerable.Repeat(1.0, n).ToArray();
            for (var i = 0; i < n; i++)
            {
                _c[i, i] = 1;
                _b[i, i] = 1;
            }
        }

        public int Lambda { get; }

        public int Restart { get; }

        public int Generation { get; private set; }

        public double[] Mean { get; private set; }

        public double Sigma { get; private set; }

        /// <summary>Member <paramref name="k"/> of the current generation: m + σ·B·D·z, redrawn until inside the cube (then clipped).</summary>
        public double[] Sample(long seed, int k)
        {
            var index = ((long)Restart << 48) | ((long)Generation << 24) | (uint)k;
            var random = new Random(SweepRandom.SeedFor(seed, index, "cmaes"));
            var x = new double[_n];
            for (var attempt = 0; attempt < 100; attempt++)
            {
                var z = new double[_n];
                for (var i = 0; i < _n; i++)
                {
                    z[i] = _d[i] * random.NextGaussian();
                }

                var inside = true;
                for (var i = 0; i < _n; i++)
                {
                    var v = 0.0;
                    for (var j = 0; j < _n; j++)
                    {
                        v += _b[i, j] * z[j];
                    }

                    x[i] = Mean[i] + (Sigma * v);
                    inside &= x[i] is >= 0 and <= 1;
                }

                if (inside)
                {
                    return x;
                }
            }

            return x.Select(v => Math.Clamp(v, 0, 1)).ToArray();
        }

        public void Tell(List<(double[] X, double Loss)> members)
        {
            // Rank by loss; failed members (+∞) last, ties by position so the order is total.
            var ranked = members.Select((m, i) => (m.X, m.Loss, i)).OrderBy(m => m.Loss).ThenBy(m => m.i).ToArray();
            var old = Mean;
            var y = ranked.Take(_mu).Select(m => m.X.Select((v, i) => (v - old[i]) / Sigma).ToArray()).ToArray();
            var yw = new double[_n];
            for (var k = 0; k < _mu; k++)
            {
                for (var i = 0; i < _n; i++)
                {
                    yw[i] += _weights[k] * y[k][i];
                }
            }

            Mean = old.Select((v, i) => v + (Sigma * yw[i])).ToArray();

            // C^(-1/2)·y_w = B·D⁻¹·Bᵀ·y_w.
            var bty = new double[_n];
            for (var j = 0; j < _n; j++)
            {
                for (var i = 0; i < _n; i++)
                {
                    bty[j] += _b[i, j] * yw[i];
                }

                bty[j] /= _d[j];
            }

            var csFactor = Math.Sqrt(_cs * (2 - _cs) * _muEff);
            for (var i = 0; i < _n; i++)
            {
                var v = 0.0;
                for (var j = 0; j < _n; j++)
                {
                    v += _b[i, j] * bty[j];
                }

                _ps[i] = ((1 - _cs) * _ps[i]) + (csFactor * v);
            }

            var psNorm = Math.Sqrt(_ps.Sum(v => v * v));
            var hsig = psNorm / Math.Sqrt(1 - Math.Pow(1 - _cs, 2 * (Generation + 1))) / _chiN < 1.4 + (2.0 / (_n + 1)) ? 1.0 : 0.0;
            var ccFactor = Math.Sqrt(_cc * (2 - _cc) * _muEff);
            for (var i = 0; i < _n; i++)
            {
                _pc[i] = ((1 - _cc) * _pc[i]) + (hsig * ccFactor * yw[i]);
            }

            var keep = 1 - _c1 - _cmu + ((1 - hsig) * _c1 * _cc * (2 - _cc));
            for (var i = 0; i < _n; i++)
            {
                for (var j = 0; j <= i; j++)
                {
                    var rankMu = 0.0;
                    for (var k = 0; k < _mu; k++)
                    {
                        rankMu += _weights[k] * y[k][i] * y[k][j];
                    }

                    var value = (keep * _c[i, j]) + (_c1 * _pc[i] * _pc[j]) + (_cmu * rankMu);
                    _c[i, j] = value;
                    _c[j, i] = value;
                }
            }

            // σ is capped at 1: the cube's side. A wider distribution draws nearly every member outside it,
            // and clipping those to the faces would tell the strategy about corners it never meant to try.
            Sigma = Math.Min(1.0, Sigma * Math.Exp(_cs / _damps * ((psNorm / _chiN) - 1)));
            var (values, vectors) = SymmetricEigen.Decompose(_c);
            _b = vectors;
            _d = values.Select(v => Math.Sqrt(Math.Max(v, 1e-20))).ToArray();
            Generation++;

            var finite = ranked.Where(m => double.IsFinite(m.Loss)).Select(m => m.Loss).ToArray();
            if (finite.Length > 0)
            {
                _generationBests.Add(finite[0]);
                _lastRange = finite[^1] - finite[0];
                if (finite[0] < _best)
                {
                    _best = finite[0];
                    _sinceImprovement = 0;
                    return;
                }
            }

            _sinceImprovement++;
        }

        public bool ShouldRestart()
        {
            var maxD = _d.Max();
            var minD = _d.Min();
            if (Sigma * maxD < TolX)
            {
                return true;
            }

            if (maxD * maxD > MaxCondition * minD * minD)
            {
                return true;
            }

            var stagnation = 10 + (int)Math.Ceiling(30.0 * _n / Lambda);
            if (_sinceImprovement >= stagnation)
            {
                return true;
            }

            if (_generationBests.Count >= 10)
            {
                var recent = _generationBests.Skip(_generationBests.Count - 10).ToArray();
                var tolerance = TolFun * Math.Max(1, Math.Abs(_best));
                return _lastRange <= tolerance && recent.Max() - recent.Min() <= tolerance;
            }

            return false;
        }
    }
}

/// <summary>CMA-ES after a history: its restart count, population λ, generation within the restart, step size σ and mean (unit space), and members of the generation already drawn.</summary>
public sealed record CmaEsProgress(int Restarts, int PopulationSize, int Generation, double Sigma, IReadOnlyList<double> Mean, int Drawn);
