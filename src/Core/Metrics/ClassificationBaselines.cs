using System.Globalization;
using MlFunctions.Core.Training;

namespace MlFunctions.Core.Metrics;

/// <summary>One fold of the baselines: sizes and each baseline's held-out figures.</summary>
public sealed record BaselineFold(int Fold, int Train, int HeldOut, int HeldOutPositives, double MajorityAuc, double MajorityAccuracy, double LogRegAuc, double LogRegAccuracy);

/// <summary>
/// The two reference points a binary text or tabular classifier must beat, on cross-validation folds: the majority
/// class (a constant score: ROC AUC exactly 0.5, since every pair ties) and a plain L2 logistic regression
/// (scikit-learn's default objective, C = 1: Σ log-loss + ½‖w‖², bias not penalized) on a subset of the feature
/// columns, e.g. only the TF-IDF term slots. Pure and deterministic, so the pipeline's baseline step and its tests agree.
/// </summary>
public static class ClassificationBaselines
{
    /// <summary>
    /// Runs both baselines on every fold of <paramref name="folds"/> (a fold per sample, <see cref="CrossValidationFold.Assign"/>):
    /// fit on the other folds, score the held-out one. <paramref name="features"/> is [n, width] row-major;
    /// <paramref name="columns"/> are the feature indices the logistic regression sees.
    /// </summary>
    public static IReadOnlyList<BaselineFold> CrossValidate(float[] features, int width, int[] labels, int[] folds, IReadOnlyList<int> columns, double c = 1.0, int iterations = 300)
    {
        if (labels.Any(l => l is not (0 or 1)))
            throw new ArgumentException("the baselines are for two classes (labels 0 and 1)");
        if (features.Length != (long)labels.Length * width)
            throw new ArgumentException($"{features.Length} feature values for {labels.Length} rows of width {width}");
        var sparse = Sparse(features, width, labels.Length, columns);
        var result = new List<BaselineFold>();
        foreach (var fold in folds.Distinct().Order())
        {
            var train = Enumerable.Range(0, labels.Length).Where(i => folds[i] != fold).ToArray();
            var held = Enumerable.Range(0, labels.Length).Where(i => folds[i] == fold).ToArray();
            var positives = train.Count(i => labels[i] == 1);
            var majority = positives * 2 >= train.Length ? 1 : 0;
            var prior = (positives + 0.5) / (train.Length + 1.0);
            var majorityScores = held.Select(i => (prior, labels[i] == 1)).ToList();
            var model = LogisticRegression.Fit(sparse, labels, train, columns.Count, c, iterations);
            var scores = held.Select(i => (model.Probability(sparse[i]), labels[i] == 1)).ToList();
            result.Add(new BaselineFold(
                fold,
                train.Length,
                held.Length,
                held.Count(i => labels[i] == 1),
                ClassificationMetrics.RocAuc(majorityScores) ?? double.NaN,
                held.Count(i => labels[i] == majority) / (double)Math.Max(1, held.Length),
                ClassificationMetrics.RocAuc(scores) ?? double.NaN,
                scores.Count(s => (s.Item1 >= 0.5) == s.Item2) / (double)Math.Max(1, held.Length)));
        }

        return result;
    }

    /// <summary>Mean and sample standard deviation (n − 1, as <c>CrossValidationSummary</c>) of one figure over the folds.</summary>
    public static (double Mean, double Std) MeanStd(IEnumerable<double> values)
    {
        var v = values.Where(x => !double.IsNaN(x)).ToArray();
        if (v.Length == 0)
            return (double.NaN, double.NaN);
        var m = v.Average();
        return (m, v.Length > 1 ? Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / (v.Length - 1)) : 0);
    }

    /// <summary>The rows restricted to <paramref name="columns"/> as (index into columns, value) pairs of the non-zeros.</summary>
    private static (int Index, float Value)[][] Sparse(float[] features, int width, int rows, IReadOnlyList<int> columns)
    {
        var result = new (int, float)[rows][];
        var row = new List<(int, float)>();
        for (var r = 0; r < rows; r++)
        {
            row.Clear();
            for (var j = 0; j < columns.Count; j++)
            {
                var v = features[((long)r * width) + columns[j]];
                if (v != 0)
                    row.Add((j, v));
            }

            result[r] = row.ToArray();
        }

        return result;
    }

    /// <summary>
    /// Binary L2 logistic regression by full-batch gradient descent with Nesterov momentum at step 1/L, where
    /// L = C·¼·max‖x‖²·n + 1 bounds the objective's curvature (C·Σ log-loss + ½‖w‖²), so it descends without a line search.
    /// </summary>
    public sealed class LogisticRegression
    {
        private LogisticRegression(double[] weights, double bias)
        {
            Weights = weights;
            Bias = bias;
        }

        public double[] Weights { get; }

        public double Bias { get; }

        public double Probability((int Index, float Value)[] x)
        {
            var z = Bias;
            foreach (var (i, v) in x)
                z += Weights[i] * v;
            return 1 / (1 + Math.Exp(-z));
        }

        public static LogisticRegression Fit((int Index, float Value)[][] rows, int[] labels, int[] train, int width, double c, int iterations)
        {
            var maxNorm = train.Select(i => rows[i].Sum(e => (double)e.Value * e.Value)).DefaultIfEmpty(0).Max() + 1; // +1: the bias
            var lipschitz = (c * 0.25 * maxNorm * train.Length) + 1;
            var step = 1 / lipschitz;
            var w = new double[width];
            var previous = new double[width];
            var look = new double[width];
            var grad = new double[width];
            double b = 0, bPrevious = 0;
            for (var t = 1; t <= iterations; t++)
            {
                var momentum = (t - 1) / (t + 2.0);
                for (var j = 0; j < width; j++)
                    look[j] = w[j] + (momentum * (w[j] - previous[j]));
                var bLook = b + (momentum * (b - bPrevious));

                // Gradient of C·Σ log-loss + ½‖w‖² at the look-ahead point.
                for (var j = 0; j < width; j++)
                    grad[j] = look[j];
                double gradB = 0;
                foreach (var i in train)
                {
                    var z = bLook;
                    foreach (var (j, v) in rows[i])
                        z += look[j] * v;
                    var error = c * ((1 / (1 + Math.Exp(-z))) - labels[i]);
                    gradB += error;
                    foreach (var (j, v) in rows[i])
                        grad[j] += error * v;
                }

                Array.Copy(w, previous, width);
                bPrevious = b;
                for (var j = 0; j < width; j++)
                    w[j] = look[j] - (step * grad[j]);
                b = bLook - (step * gradB);
            }

            return new LogisticRegression(w, b);
        }
    }

    /// <summary>The fold figures as named metrics: <c>baseline_auc</c>, <c>logreg_auc</c> (means), their <c>_std</c>, and per fold.</summary>
    public static Dictionary<string, double> Metrics(IReadOnlyList<BaselineFold> folds)
    {
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
        void Add(string name, IEnumerable<double> values)
        {
            var (mean, std) = MeanStd(values);
            metrics[name] = mean;
            metrics[$"{name}_std"] = std;
        }

        Add("baseline_auc", folds.Select(f => f.MajorityAuc));
        Add("baseline_accuracy", folds.Select(f => f.MajorityAccuracy));
        Add("logreg_auc", folds.Select(f => f.LogRegAuc));
        Add("logreg_accuracy", folds.Select(f => f.LogRegAccuracy));
        foreach (var f in folds)
            metrics[string.Create(CultureInfo.InvariantCulture, $"logreg_auc_f{f.Fold}")] = f.LogRegAuc;
        return metrics;
    }
}
