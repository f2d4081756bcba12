namespace MlFunctions.Core.Metrics;

/// <summary>
/// Top-k ranking metrics over the full item catalogue, computed in one place for the worker's per-epoch
/// evaluation, the pipeline's evaluation and baselines, and the gate. Each user contributes one ranking: the
/// scores of every item, with the items the user already interacted with in training excluded (they can never be
/// recommended, so they are not competitors), and the held-out items as the relevant set.
/// HR@k: 1 when any held-out item is in the top k. NDCG@k: DCG of the held-out items' ranks (1/log2(rank+1))
/// over the ideal DCG for min(k, |held-out|) relevant items. Ties rank the relevant item after every item with an
/// equal score (a pessimistic, deterministic rule: a constant scorer scores 0, not a lucky figure).
/// </summary>
public sealed class RankingMetrics(int k)
{
    private double _hits;
    private double _ndcg;
    private long _users;

    public int K => k;

    public long Users => _users;

    public double HitRate => _users == 0 ? 0 : _hits / _users;

    public double Ndcg => _users == 0 ? 0 : _ndcg / _users;

    /// <summary>Adds one user's ranking; a user with no held-out item is skipped (nothing to find).</summary>
    /// <param name="scores">One score per catalogue item (item index = position).</param>
    /// <param name="seen">Items excluded from the ranking (already interacted with in training).</param>
    /// <param name="relevant">The held-out items.</param>
    public void Add(ReadOnlySpan<float> scores, IReadOnlySet<int> seen, IReadOnlyCollection<int> relevant)
    {
        if (relevant.Count == 0)
        {
            return;
        }

        double dcg = 0;
        var hit = false;
        foreach (var item in relevant)
        {
            if ((uint)item >= (uint)scores.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(relevant), $"held-out item {item} is outside the catalogue of {scores.Length}");
            }

            var rank = RankOf(scores, seen, relevant, item);
            if (rank <= k)
            {
                hit = true;
                dcg += 1.0 / Math.Log2(rank + 1);
            }
        }

        double ideal = 0;
        for (var r = 1; r <= Math.Min(k, relevant.Count); r++)
        {
            ideal += 1.0 / Math.Log2(r + 1);
        }

        _hits += hit ? 1 : 0;
        _ndcg += dcg / ideal;
        _users++;
    }

    /// <summary>
    /// Adds one user's served list (best first, seen items already excluded by the server): the same HR@k and NDCG@k
    /// as <see cref="Add"/> on the scores the list was cut from (positions of the held-out items in the list).
    /// </summary>
    public void AddRanked(IReadOnlyList<int> ranked, IReadOnlyCollection<int> relevant)
    {
        if (relevant.Count == 0)
        {
            return;
        }

        double dcg = 0;
        var hit = false;
        for (var position = 0; position < Math.Min(k, ranked.Count); position++)
        {
            if (relevant.Contains(ranked[position]))
            {
                hit = true;
                dcg += 1.0 / Math.Log2(position + 2);
            }
        }

        double ideal = 0;
        for (var r = 1; r <= Math.Min(k, relevant.Count); r++)
        {
            ideal += 1.0 / Math.Log2(r + 1);
        }

        _hits += hit ? 1 : 0;
        _ndcg += dcg / ideal;
        _users++;
    }

    /// <summary>1-based position of <paramref name="item"/> in the ranked list of unseen items: 1 + the other unseen items scoring at least as high (other held-out items included, as in a served list).</summary>
    public static int RankOf(ReadOnlySpan<float> scores, IReadOnlySet<int> seen, IReadOnlyCollection<int> relevant, int item)
    {
        var s = scores[item];
        var above = 0;
        for (var j = 0; j < scores.Length; j++)
        {
            if (j != item && scores[j] >= s && !seen.Contains(j))
            {
                above++;
            }
        }

        return above + 1;
    }

    /// <summary>The top <paramref name="count"/> unseen items by score, best first (ties by lower index), as served.</summary>
    public static IReadOnlyList<(int Item, float Score)> TopK(ReadOnlySpan<float> scores, IReadOnlySet<int> seen, int count)
    {
        var candidates = new List<(int Item, float Score)>(scores.Length);
        for (var j = 0; j < scores.Length; j++)
        {
            if (!seen.Contains(j))
            {
                candidates.Add((j, scores[j]));
            }
        }

        candidates.Sort((a, b) => b.Score != a.Score ? b.Score.CompareTo(a.Score) : a.Item.CompareTo(b.Item));
        return candidates.Take(count).ToList();
    }

    /// <summary>The metrics by their <see cref="MetricNames"/> names ("hr@10", "ndcg@10").</summary>
    public IReadOnlyDictionary<string, double> ToDictionary() => new Dictionary<string, double>(StringComparer.Ordinal)
    {
        [MetricNames.HitRateAt(k)] = HitRate,
        [MetricNames.NdcgAt(k)] = Ndcg,
    };

    /// <summary>Scores every user's ranking with <paramref name="scorer"/> (user → one score per item).</summary>
    public static RankingMetrics Evaluate(int k, int items, IReadOnlyDictionary<int, IReadOnlySet<int>> seen, IReadOnlyDictionary<int, int[]> heldOut, Func<int, float[]> scorer)
    {
        var metrics = new RankingMetrics(k);
        var none = new HashSet<int>();
        foreach (var (user, relevant) in heldOut.OrderBy(kv => kv.Key))
        {
            var scores = scorer(user);
            if (scores.Length != items)
            {
                throw new ArgumentException($"scorer returned {scores.Length} scores for a catalogue of {items}");
            }

            metrics.Add(scores, seen.TryGetValue(user, out var s) ? s : none, relevant);
        }

        return metrics;
    }
}

/// <summary>
/// The regression metrics, in one place for the worker's per-epoch validation, evaluation and the gate: RMSE, MAE,
/// R² (against the mean of the scored targets, so 0 is the mean predictor and 1 is exact) and the MSE as "loss", all
/// in the units of the values added (the label's, when the caller un-standardizes first).
/// </summary>
public sealed class RegressionMetrics
{
    private double _squares;
    private double _absolute;
    private double _sum;
    private double _sumSquares;
    private long _count;

    public void Add(double predicted, double actual)
    {
        var d = predicted - actual;
        _squares += d * d;
        _absolute += Math.Abs(d);
        _sum += actual;
        _sumSquares += actual * actual;
        _count++;
    }

    public long Count => _count;

    public double Mse => _count == 0 ? 0 : _squares / _count;

    public double Rmse => Math.Sqrt(Mse);

    public double Mae => _count == 0 ? 0 : _absolute / _count;

    /// <summary>1 − SSres / SStot; 0 when the targets are constant (no variance to explain).</summary>
    public double R2
    {
        get
        {
            if (_count == 0)
                return 0;
            var total = _sumSquares - (_sum * _sum / _count);
            return total > 1e-12 * Math.Max(1, _sumSquares) ? 1 - (_squares / total) : 0;
        }
    }

    public IReadOnlyDictionary<string, double> ToDictionary() => new Dictionary<string, double>(StringComparer.Ordinal)
    {
        [MetricNames.Rmse] = Rmse,
        [MetricNames.Mae] = Mae,
        [MetricNames.R2] = R2,
        [MetricNames.Loss] = Mse,
    };
}
