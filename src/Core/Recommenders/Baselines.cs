using MlFunctions.Core.Datasets;
using MlFunctions.Core.Metrics;

namespace MlFunctions.Core.Recommenders;

/// <summary>Interactions as indices: the training pairs, each user's seen items, and the held-out items to find.</summary>
public sealed class RankingProblem
{
    public RankingProblem(int users, int items, IReadOnlyList<(int User, int Item, float Weight)> train, IReadOnlyList<(int User, int Item)> heldOut)
    {
        Users = users;
        Items = items;
        Train = train;
        var seen = new Dictionary<int, HashSet<int>>();
        foreach (var (u, i, _) in train)
        {
            if (!seen.TryGetValue(u, out var set))
            {
                seen[u] = set = [];
            }

            set.Add(i);
        }

        Seen = seen.ToDictionary(kv => kv.Key, kv => (IReadOnlySet<int>)kv.Value);
        HeldOut = heldOut.GroupBy(h => h.User).ToDictionary(g => g.Key, g => g.Select(h => h.Item).Distinct().ToArray());
    }

    public int Users { get; }

    public int Items { get; }

    public IReadOnlyList<(int User, int Item, float Weight)> Train { get; }

    public IReadOnlyDictionary<int, IReadOnlySet<int>> Seen { get; }

    public IReadOnlyDictionary<int, int[]> HeldOut { get; }

    /// <summary>Maps raw splits with the id maps fitted on all pairs (every held-out item is in the catalogue).</summary>
    public static RankingProblem From(IdMap users, IdMap items, IEnumerable<Interaction> train, IEnumerable<Interaction> heldOut) =>
        new(users.Count, items.Count, train.Select(p => (users[p.User], items[p.Item], (float)p.Weight)).ToList(), heldOut.Select(p => (users[p.User], items[p.Item])).ToList());

    public RankingMetrics Evaluate(int k, Func<int, float[]> scorer) => RankingMetrics.Evaluate(k, Items, Seen, HeldOut, scorer);
}

/// <summary>The baselines an engineer tries first, scored on the same split as the model: most-popular, item-kNN (cosine), implicit ALS.</summary>
public static class Baselines
{
    /// <summary>Item popularity: the number of distinct training users per item.</summary>
    public static float[] Popularity(RankingProblem p)
    {
        var counts = new float[p.Items];
        foreach (var (_, i, _) in p.Train)
        {
            counts[i]++;
        }

        return counts;
    }

    /// <summary>
    /// Item-kNN with cosine similarity on the binary user×item matrix: score(u, j) = Σ over u's items i of
    /// cos(i, j). (All neighbours: at this size a neighbourhood cut changes little and adds a knob.)
    /// </summary>
    public static Func<int, float[]> ItemKnn(RankingProblem p)
    {
        var usersOf = new List<int>[p.Items];
        for (var i = 0; i < p.Items; i++)
        {
            usersOf[i] = [];
        }

        var itemsOf = new Dictionary<int, List<int>>();
        foreach (var (u, i, _) in p.Train.DistinctBy(t => (t.User, t.Item)))
        {
            usersOf[i].Add(u);
            if (!itemsOf.TryGetValue(u, out var list))
            {
                itemsOf[u] = list = [];
            }

            list.Add(i);
        }

        var similarity = new float[p.Items][];
        var co = new float[p.Items];
        for (var i = 0; i < p.Items; i++)
        {
            Array.Clear(co);
            foreach (var u in usersOf[i])
            {
                foreach (var j in itemsOf[u])
                {
                    co[j]++;
                }
            }

            var row = new float[p.Items];
            for (var j = 0; j < p.Items; j++)
            {
                if (co[j] > 0 && j != i)
                {
                    row[j] = (float)(co[j] / Math.Sqrt((double)usersOf[i].Count * usersOf[j].Count));
                }
            }

            similarity[i] = row;
        }

        return user =>
        {
            var scores = new float[p.Items];
            if (itemsOf.TryGetValue(user, out var items))
            {
                foreach (var i in items)
                {
                    var row = similarity[i];
                    for (var j = 0; j < scores.Length; j++)
                    {
                        scores[j] += row[j];
                    }
                }
            }

            return scores;
        };
    }

    /// <summary>
    /// Implicit ALS (Hu, Koren, Volinsky 2008): preference 1 for observed pairs, confidence 1 + alpha·weight, L2
    /// <paramref name="regularization"/>; alternating exact least-squares solves per user and per item with
    /// the YᵀY + Yᵀ(Cu − I)Y trick. Seeded, so the figure reproduces.
    /// </summary>
    public static Func<int, float[]> ImplicitAls(RankingProblem p, int factors = 32, int iterations = 15, double regularization = 0.1, double alpha = 10, long seed = 1)
    {
        var rng = new Random((int)seed);
        var x = RandomMatrix(p.Users, factors, rng);
        var y = RandomMatrix(p.Items, factors, rng);
        var byUser = p.Train.GroupBy(t => t.User).ToDictionary(g => g.Key, g => g.Select(t => (t.Item, (double)t.Weight)).ToArray());
        var byItem = p.Train.GroupBy(t => t.Item).ToDictionary(g => g.Key, g => g.Select(t => (t.User, (double)t.Weight)).ToArray());
        for (var it = 0; it < iterations; it++)
        {
            Solve(x, y, byUser, factors, regularization, alpha);
            Solve(y, x, byItem, factors, regularization, alpha);
        }

        return user =>
        {
            var scores = new float[p.Items];
            var xu = x[user];
            for (var j = 0; j < p.Items; j++)
            {
                double s = 0;
                var yj = y[j];
                for (var f = 0; f < factors; f++)
                {
                    s += xu[f] * yj[f];
                }

                scores[j] = (float)s;
            }

            return scores;
        };
    }

    private static double[][] RandomMatrix(int rows, int cols, Random rng) =>
        Enumerable.Range(0, rows).Select(_ => Enumerable.Range(0, cols).Select(_ => (rng.NextDouble() - 0.5) * 0.02).ToArray()).ToArray();

    /// <summary>One half-step: each row of <paramref name="target"/> from the fixed <paramref name="fixedFactors"/>.</summary>
    private static void Solve(double[][] target, double[][] fixedFactors, Dictionary<int, (int Other, double Weight)[]> observed, int f, double lambda, double alpha)
    {
        var gram = new double[f, f];
        foreach (var row in fixedFactors)
        {
            for (var a = 0; a < f; a++)
            {
                for (var b = 0; b < f; b++)
                {
                    gram[a, b] += row[a] * row[b];
                }
            }
        }

        var matrix = new double[f, f];
        var rhs = new double[f];
        for (var r = 0; r < target.Length; r++)
        {
            if (!observed.TryGetValue(r, out var obs))
            {
                Array.Clear(target[r]);
                continue;
            }

            Array.Copy(gram, matrix, gram.Length);
            Array.Clear(rhs);
            for (var a = 0; a < f; a++)
            {
                matrix[a, a] += lambda;
            }

            foreach (var (other, weight) in obs)
            {
                var c = 1 + (alpha * weight);
                var v = fixedFactors[other];
                for (var a = 0; a < f; a++)
                {
                    rhs[a] += c * v[a];
                    for (var b = 0; b < f; b++)
                    {
                        matrix[a, b] += (c - 1) * v[a] * v[b];
                    }
                }
            }

            CholeskySolve(matrix, rhs, target[r]);
        }
    }

    /// <summary>Solves A x = b for symmetric positive definite A (overwrites A).</summary>
    private static void CholeskySolve(double[,] a, double[] b, double[] x)
    {
        var n = b.Length;
        for (var j = 0; j < n; j++)
        {
            var d = a[j, j];
            for (var k = 0; k < j; k++)
            {
                d -= a[j, k] * a[j, k];
            }

            a[j, j] = Math.Sqrt(Math.Max(d, 1e-12));
            for (var i = j + 1; i < n; i++)
            {
                var s = a[i, j];
                for (var k = 0; k < j; k++)
                {
                    s -= a[i, k] * a[j, k];
                }

                a[i, j] = s / a[j, j];
            }
        }

        for (var i = 0; i < n; i++)
        {
            var s = b[i];
            for (var k = 0; k < i; k++)
            {
                s -= a[i, k] * x[k];
            }

            x[i] = s / a[i, i];
        }

        for (var i = n - 1; i >= 0; i--)
        {
            var s = x[i];
            for (var k = i + 1; k < n; k++)
            {
                s -= a[k, i] * x[k];
            }

            x[i] = s / a[i, i];
        }
    }
}
