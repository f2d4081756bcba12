namespace MlFunctions.Core.Metrics;

/// <summary>The metric names a pipeline spec, the evaluation, the gate and the report share.</summary>
public static class MetricNames
{
    public const string Accuracy = "accuracy";
    public const string Loss = "loss";
    public const string Auc = "auc";
    public const string F1 = "f1";
    public const string Rmse = "rmse";

    /// <summary>Mean absolute error, in the label's units (regression).</summary>
    public const string Mae = "mae";

    /// <summary>Coefficient of determination, 1 − SSres / SStot (regression; 0 is the mean predictor).</summary>
    public const string R2 = "r2";

    /// <summary>What a regression pipeline can report and gate on; rmse first, the default.</summary>
    public static IReadOnlyList<string> Regression { get; } = [Rmse, Mae, R2, Loss];

    /// <summary>Hit rate in the top <paramref name="k"/> ("hr@10").</summary>
    public static string HitRateAt(int k) => $"hr@{k}";

    /// <summary>NDCG of the top <paramref name="k"/> ("ndcg@10").</summary>
    public static string NdcgAt(int k) => $"ndcg@{k}";

    public static IReadOnlyList<string> Classification { get; } = [Accuracy, Auc, F1, Loss];

    /// <summary>What a recommender pipeline can report and gate on (full-catalogue, seen items excluded).</summary>
    public static IReadOnlyList<string> Ranking { get; } = ["hr@10", "ndcg@10", "hr@5", "ndcg@5", "hr@20", "ndcg@20"];

    /// <summary>PSNR (dB) and SSIM of a denoised CT slice against full dose (#14, <see cref="Imaging.CtEvaluation"/>).</summary>
    public const string Psnr = "psnr";

    public const string Ssim = "ssim";

    /// <summary>What an image-to-image (CT denoising) pipeline can report and gate on.</summary>
    public static IReadOnlyList<string> Image { get; } = [Psnr, Ssim];

    /// <summary>Whether larger is better for <paramref name="metric"/>.</summary>
    public static bool HigherIsBetter(string metric) => metric is not (Loss or Rmse or Mae);
}

/// <summary>
/// Classification metrics from logits, computed in one place for evaluation, the gate and the report: accuracy,
/// mean cross-entropy, macro F1 and, for two classes, ROC AUC of P(class 1) (Mann–Whitney, ties counted half).
/// </summary>
public sealed class ClassificationMetrics(int classes)
{
    private readonly long[,] _confusion = new long[classes, classes];
    private readonly List<(double Score, bool Positive)> _binary = [];
    private double _lossSum;
    private long _count;

    /// <summary>Arg-max, its softmax probability and log-sum-exp of one row of logits (max-shifted, so large logits do not overflow).</summary>
    public static (int ArgMax, double Probability, double LogSumExp) Softmax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var c = 1; c < logits.Length; c++)
        {
            if (logits[c] > logits[best])
            {
                best = c;
            }
        }

        double max = logits[best], sum = 0;
        foreach (var l in logits)
        {
            sum += Math.Exp(l - max);
        }

        return (best, 1.0 / sum, max + Math.Log(sum));
    }

    public int Classes => classes;

    public long Count => _count;

    /// <summary>Adds one sample: its logits (one per class) and its true class.</summary>
    public void Add(ReadOnlySpan<float> logits, int label)
    {
        if (logits.Length != classes)
        {
            throw new ArgumentException($"{logits.Length} logits for {classes} classes");
        }

        if (label < 0 || label >= classes)
        {
            throw new ArgumentOutOfRangeException(nameof(label), $"label {label} is outside 0..{classes - 1}");
        }

        var (predicted, _, logSumExp) = Softmax(logits);
        _lossSum += logSumExp - logits[label];
        _confusion[label, predicted]++;
        _count++;
        if (classes == 2)
        {
            _binary.Add((Math.Exp(logits[1] - logSumExp), label == 1));
        }
    }

    public double Accuracy => _count == 0 ? 0 : Enumerable.Range(0, classes).Sum(c => _confusion[c, c]) / (double)_count;

    public double Loss => _count == 0 ? 0 : _lossSum / _count;

    /// <summary>Samples of each true class.</summary>
    public IReadOnlyList<int> PerClassSamples => Enumerable.Range(0, classes).Select(c => (int)Enumerable.Range(0, classes).Sum(p => _confusion[c, p])).ToList();

    /// <summary>Recall per class; a class with no samples has 0, which means "not measured".</summary>
    public IReadOnlyList<double> PerClassAccuracy => Enumerable.Range(0, classes).Select(c => PerClassSamples[c] == 0 ? 0.0 : _confusion[c, c] / (double)PerClassSamples[c]).ToList();

    /// <summary>Unweighted mean of per-class F1 over the classes that occur (as true or predicted).</summary>
    public double MacroF1
    {
        get
        {
            var f1 = new List<double>();
            for (var c = 0; c < classes; c++)
            {
                long tp = _confusion[c, c], actual = 0, predicted = 0;
                for (var k = 0; k < classes; k++)
                {
                    actual += _confusion[c, k];
                    predicted += _confusion[k, c];
                }

                if (actual + predicted > 0)
                {
                    f1.Add(2.0 * tp / (actual + predicted));
                }
            }

            return f1.Count == 0 ? 0 : f1.Average();
        }
    }

    /// <summary>ROC AUC for two classes; null otherwise, or when one class is absent (AUC is undefined then).</summary>
    public double? Auc => classes == 2 ? RocAuc(_binary) : null;

    /// <summary>ROC AUC by ranks: the probability a random positive scores above a random negative, ties half.</summary>
    public static double? RocAuc(IReadOnlyList<(double Score, bool Positive)> samples)
    {
        long positives = samples.Count(s => s.Positive), negatives = samples.Count - positives;
        if (positives == 0 || negatives == 0)
        {
            return null;
        }

        var sorted = samples.OrderBy(s => s.Score).ToList();
        double rankSum = 0;
        for (var i = 0; i < sorted.Count;)
        {
            var j = i;
            while (j + 1 < sorted.Count && sorted[j + 1].Score == sorted[i].Score)
            {
                j++;
            }

            var averageRank = ((i + j) / 2.0) + 1;
            for (var k = i; k <= j; k++)
            {
                if (sorted[k].Positive)
                {
                    rankSum += averageRank;
                }
            }

            i = j + 1;
        }

        return (rankSum - (positives * (positives + 1) / 2.0)) / ((double)positives * negatives);
    }

    /// <summary>Every metric by its <see cref="MetricNames"/> name (AUC only where defined).</summary>
    public IReadOnlyDictionary<string, double> ToDictionary()
    {
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            [MetricNames.Accuracy] = Accuracy,
            [MetricNames.Loss] = Loss,
            [MetricNames.F1] = MacroF1,
        };
        if (Auc is { } auc)
        {
            metrics[MetricNames.Auc] = auc;
        }

        return metrics;
    }
}
