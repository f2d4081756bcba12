using MlFunctions.Core.Metrics;

namespace MlFunctions.Core.Imaging.Baselines;

/// <summary>A classical baseline's tuned setting and its scores on the validation and test slices.</summary>
public sealed record BaselineResult(string Name, string Setting, CtScore Validation, CtScore Test);

/// <summary>The settings each baseline is tuned over on validation (by mean PSNR, the gate's metric).</summary>
public sealed record BaselineGrid
{
    public IReadOnlyList<double> GaussianSigmas { get; init; } = [0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.5, 2.0];

    public IReadOnlyList<int> MedianRadii { get; init; } = [1, 2, 3];

    public int SvdPatch { get; init; } = 8;

    public int SvdStride { get; init; } = 2;

    public IReadOnlyList<int> SvdRanks { get; init; } = [4, 8, 12, 16, 20, 24, 32, 40];
}

/// <summary>
/// The classical baselines of the case study on the same slices as the learned denoiser: the low-dose FBP itself, a
/// Gaussian filter and a median filter with their width tuned on validation, and truncated-SVD patch denoising with its
/// rank tuned on validation. Each is then scored once on test.
/// </summary>
public static class CtBaselines
{
    public const string LowDose = "low-dose FBP";

    public const string Gaussian = "gaussian";

    public const string Median = "median";

    public const string TruncatedSvd = "truncated SVD";

    public static IReadOnlyList<BaselineResult> Run(
        IReadOnlyList<CtSlicePair> validation, IReadOnlyList<CtSlicePair> test, HuWindow? window = null, BaselineGrid? grid = null)
    {
        grid ??= new BaselineGrid();
        var results = new List<BaselineResult>
        {
            new(LowDose, "-", CtEvaluation.LowDose(validation, window), CtEvaluation.LowDose(test, window)),
            Tune(Gaussian, grid.GaussianSigmas, s => $"σ={s:0.##} px", (image, s) => ClassicalFilters.Gaussian(image, s), validation, test, window),
            Tune(Median, grid.MedianRadii, r => $"{(2 * r) + 1}×{(2 * r) + 1}", ClassicalFilters.Median, validation, test, window),
            Tune(TruncatedSvd, grid.SvdRanks, r => $"{grid.SvdPatch}×{grid.SvdPatch} patches, rank {r}",
                (image, r) => TruncatedSvdDenoiser.Denoise(image, grid.SvdPatch, r, grid.SvdStride), validation, test, window),
        };
        return results;
    }

    /// <summary>Picks the setting with the best mean validation PSNR (ties: the first), then scores it on test.</summary>
    public static BaselineResult Tune<T>(
        string name, IReadOnlyList<T> settings, Func<T, string> describe, Func<HuImage, T, HuImage> method,
        IReadOnlyList<CtSlicePair> validation, IReadOnlyList<CtSlicePair> test, HuWindow? window = null)
    {
        if (settings.Count == 0)
        {
            throw new ArgumentException($"{name}: no setting to tune over", nameof(settings));
        }

        var best = settings[0];
        CtScore? bestScore = null;
        foreach (var setting in settings)
        {
            var score = CtEvaluation.Score(validation.Select(p => (method(p.Low, setting), p.Full)), window);
            if (bestScore is null || score.Psnr > bestScore.Value.Psnr)
            {
                (best, bestScore) = (setting, score);
            }
        }

        var testScore = CtEvaluation.Score(test.Select(p => (method(p.Low, best), p.Full)), window);
        return new BaselineResult(name, describe(best), bestScore!.Value, testScore);
    }

    /// <summary>The results as a small Markdown table, for logs and the run report.</summary>
    public static string Table(IEnumerable<BaselineResult> results)
    {
        var lines = new List<string>
        {
            "| method | tuned setting | val PSNR (dB) | val SSIM | test PSNR (dB) | test SSIM |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        };
        lines.AddRange(results.Select(r =>
            $"| {r.Name} | {r.Setting} | {r.Validation.Psnr:F2} | {r.Validation.Ssim:F4} | {r.Test.Psnr:F2} | {r.Test.Ssim:F4} |"));
        return string.Join('\n', lines);
    }
}
