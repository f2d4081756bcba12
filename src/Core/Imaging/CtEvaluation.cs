using MlFunctions.Core.Metrics;

namespace MlFunctions.Core.Imaging;

/// <summary>PSNR (dB) and SSIM of a slice, or the means over slices.</summary>
public readonly record struct CtScore(double Psnr, double Ssim)
{
    public override string ToString() => $"PSNR {Psnr:F2} dB, SSIM {Ssim:F4}";
}

/// <summary>
/// How the CT case study scores a slice: against the full-dose reconstruction, over the body mask of the full-dose
/// slice (<see cref="ImageMetrics.BodyMask"/>), in <see cref="HuWindow.Default"/> ([−1000, 1000] HU, range 2000) unless
/// a window is given. Over several slices, PSNR and SSIM are the means of the per-slice values (as denoising papers
/// report). Training reports, evaluation, the gate and the baselines all score through here.
/// </summary>
public static class CtEvaluation
{
    public static CtScore Score(HuImage output, HuImage fullDose, HuWindow? window = null)
    {
        var w = window ?? HuWindow.Default;
        var mask = ImageMetrics.BodyMask(fullDose);
        return new CtScore(ImageMetrics.Psnr(output, fullDose, mask, w), ImageMetrics.Ssim(output, fullDose, mask, w));
    }

    public static CtScore Score(IEnumerable<(HuImage Output, HuImage FullDose)> slices, HuWindow? window = null) =>
        Mean(slices.Select(s => Score(s.Output, s.FullDose, window)));

    /// <summary>The low-dose input as it is, scored: the figure a denoiser must improve on.</summary>
    public static CtScore LowDose(IEnumerable<CtSlicePair> pairs, HuWindow? window = null) =>
        Score(pairs.Select(p => (p.Low, p.Full)), window);

    public static CtScore Mean(IEnumerable<CtScore> scores)
    {
        var list = scores.ToList();
        if (list.Count == 0)
        {
            throw new ArgumentException("no slice to score", nameof(scores));
        }

        return new CtScore(list.Average(s => s.Psnr), list.Average(s => s.Ssim));
    }
}
