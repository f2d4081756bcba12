using MlFunctions.Core.Imaging;

namespace MlFunctions.Core.Metrics;

/// <summary>
/// The HU window image metrics are computed in: both images are clipped to [Lo, Hi] and the data range L of PSNR and
/// SSIM is Hi − Lo. The default [−1000, 1000] (L = 2000) spans air to dense bone, the usual choice in low-dose CT
/// denoising papers; state the window beside every figure.
/// </summary>
public readonly record struct HuWindow(double Lo, double Hi)
{
    public static HuWindow Default => new(-1000, 1000);

    public double Range => Hi - Lo;

    public override string ToString() => $"[{Lo:0}, {Hi:0}] HU (range {Range:0})";
}

/// <summary>
/// PSNR and SSIM of CT slices, in one place for training reports, evaluation, the gate and the baselines. Both compare
/// a test slice (denoised or low dose) with a reference (the full-dose reconstruction) over a body mask, in a
/// <see cref="HuWindow"/>.
/// </summary>
public static class ImageMetrics
{
    /// <summary>Wang et al. 2004: K1 = 0.01, K2 = 0.03, an 11×11 Gaussian window of σ = 1.5 normalized to sum 1.</summary>
    public const double K1 = 0.01;

    public const double K2 = 0.03;

    public const int WindowRadius = 5;

    public const double WindowSigma = 1.5;

    private static readonly double[] Gaussian = BuildGaussian();

    /// <summary>
    /// The body: pixels above <paramref name="thresholdHu"/> (−500 HU: any tissue, not air) and every hole they enclose
    /// (lungs, bowel gas): all that cannot be reached from the image border through air. Computed on the reference.
    /// </summary>
    public static bool[] BodyMask(HuImage reference, double thresholdHu = -500)
    {
        var (w, h) = (reference.Width, reference.Height);
        var outside = new bool[w * h];
        var stack = new Stack<int>();
        void Seed(int p)
        {
            if (!outside[p] && reference.Pixels[p] <= thresholdHu)
            {
                outside[p] = true;
                stack.Push(p);
            }
        }

        for (var x = 0; x < w; x++)
        {
            Seed(x);
            Seed(((h - 1) * w) + x);
        }

        for (var y = 0; y < h; y++)
        {
            Seed(y * w);
            Seed((y * w) + w - 1);
        }

        while (stack.Count > 0)
        {
            var p = stack.Pop();
            var (x, y) = (p % w, p / w);
            if (x > 0)
            {
                Seed(p - 1);
            }

            if (x < w - 1)
            {
                Seed(p + 1);
            }

            if (y > 0)
            {
                Seed(p - w);
            }

            if (y < h - 1)
            {
                Seed(p + w);
            }
        }

        var mask = new bool[w * h];
        for (var p = 0; p < mask.Length; p++)
        {
            mask[p] = !outside[p];
        }

        return mask;
    }

    /// <summary>Root-mean-square difference in HU over the mask (all pixels when null), unclipped.</summary>
    public static double Rmse(HuImage test, HuImage reference, bool[]? mask = null)
    {
        Check(test, reference, mask);
        double sum = 0;
        long count = 0;
        for (var p = 0; p < test.Pixels.Length; p++)
        {
            if (mask is null || mask[p])
            {
                var d = (double)test.Pixels[p] - reference.Pixels[p];
                sum += d * d;
                count++;
            }
        }

        return count == 0 ? throw new ArgumentException("the mask selects no pixel", nameof(mask)) : Math.Sqrt(sum / count);
    }

    /// <summary>Mean squared difference of the window-clipped images over the mask.</summary>
    public static double Mse(HuImage test, HuImage reference, bool[]? mask, HuWindow window)
    {
        Check(test, reference, mask);
        double sum = 0;
        long count = 0;
        for (var p = 0; p < test.Pixels.Length; p++)
        {
            if (mask is null || mask[p])
            {
                var d = Math.Clamp(test.Pixels[p], window.Lo, window.Hi) - Math.Clamp(reference.Pixels[p], window.Lo, window.Hi);
                sum += d * d;
                count++;
            }
        }

        return count == 0 ? throw new ArgumentException("the mask selects no pixel", nameof(mask)) : sum / count;
    }

    /// <summary>PSNR = 10·log10(L² / MSE) in dB over the mask; +∞ when the clipped images are equal there.</summary>
    public static double Psnr(HuImage test, HuImage reference, bool[]? mask, HuWindow window)
    {
        var mse = Mse(test, reference, mask, window);
        return mse == 0 ? double.PositiveInfinity : 10.0 * Math.Log10(window.Range * window.Range / mse);
    }

    /// <summary>
    /// Mean SSIM (Wang, Bovik, Sheikh &amp; Simoncelli 2004) over the mask. Local means, variances and covariance are
    /// Gaussian-weighted (11×11, σ 1.5; population, not sample, moments, as the paper's reference code), on the clipped
    /// images shifted to [0, L]; C1 = (K1·L)², C2 = (K2·L)². Only window centres whose window lies inside the image count
    /// (the reference code's 'valid' filtering), and of those only centres inside the mask.
    /// </summary>
    public static double Ssim(HuImage test, HuImage reference, bool[]? mask, HuWindow window)
    {
        var map = SsimMap(test, reference, window, out var validW, out var validH);
        Check(test, reference, mask);
        double sum = 0;
        long count = 0;
        var r = WindowRadius;
        for (var y = 0; y < validH; y++)
        {
            for (var x = 0; x < validW; x++)
            {
                if (mask is null || mask[((y + r) * test.Width) + x + r])
                {
                    sum += map[(y * validW) + x];
                    count++;
                }
            }
        }

        return count == 0 ? throw new ArgumentException("no SSIM window centre lies inside the mask", nameof(mask)) : sum / count;
    }

    /// <summary>The SSIM map over the valid window centres, (W − 10) × (H − 10), row-major.</summary>
    public static double[] SsimMap(HuImage test, HuImage reference, HuWindow window, out int validW, out int validH)
    {
        Check(test, reference, null);
        var (w, h) = (test.Width, test.Height);
        var r = WindowRadius;
        validW = w - (2 * r);
        validH = h - (2 * r);
        if (validW < 1 || validH < 1)
        {
            throw new ArgumentException($"SSIM's 11×11 window needs an image of at least 11×11, got {w}×{h}");
        }

        var n = w * h;
        var x = new double[n];
        var y = new double[n];
        for (var p = 0; p < n; p++)
        {
            x[p] = Math.Clamp(test.Pixels[p], window.Lo, window.Hi) - window.Lo;
            y[p] = Math.Clamp(reference.Pixels[p], window.Lo, window.Hi) - window.Lo;
        }

        var xx = new double[n];
        var yy = new double[n];
        var xy = new double[n];
        for (var p = 0; p < n; p++)
        {
            xx[p] = x[p] * x[p];
            yy[p] = y[p] * y[p];
            xy[p] = x[p] * y[p];
        }

        var (vw, vh) = (validW, validH);
        var scratch = new double[vw * h];
        var mx = Filter(x, w, h, scratch);
        var my = Filter(y, w, h, scratch);
        var sxx = Filter(xx, w, h, scratch);
        var syy = Filter(yy, w, h, scratch);
        var sxy = Filter(xy, w, h, scratch);
        var c1 = K1 * window.Range * (K1 * window.Range);
        var c2 = K2 * window.Range * (K2 * window.Range);
        var map = new double[vw * vh];
        for (var p = 0; p < map.Length; p++)
        {
            var (ux, uy) = (mx[p], my[p]);
            var vx = sxx[p] - (ux * ux);
            var vy = syy[p] - (uy * uy);
            var cov = sxy[p] - (ux * uy);
            map[p] = (((2 * ux * uy) + c1) * ((2 * cov) + c2)) / (((ux * ux) + (uy * uy) + c1) * (vx + vy + c2));
        }

        return map;
    }

    /// <summary>Separable 'valid' Gaussian filtering of a W×H image to (W − 10)×(H − 10).</summary>
    private static double[] Filter(double[] image, int w, int h, double[] scratch)
    {
        var r = WindowRadius;
        var vw = w - (2 * r);
        var vh = h - (2 * r);
        for (var y = 0; y < h; y++)
        {
            var row = y * w;
            for (var x = 0; x < vw; x++)
            {
                double s = 0;
                for (var k = 0; k <= 2 * r; k++)
                {
                    s += Gaussian[k] * image[row + x + k];
                }

                scratch[(y * vw) + x] = s;
            }
        }

        var result = new double[vw * vh];
        for (var y = 0; y < vh; y++)
        {
            for (var x = 0; x < vw; x++)
            {
                double s = 0;
                for (var k = 0; k <= 2 * r; k++)
                {
                    s += Gaussian[k] * scratch[((y + k) * vw) + x];
                }

                result[(y * vw) + x] = s;
            }
        }

        return result;
    }

    private static double[] BuildGaussian()
    {
        var g = new double[(2 * WindowRadius) + 1];
        for (var k = 0; k < g.Length; k++)
        {
            var d = k - WindowRadius;
            g[k] = Math.Exp(-(d * d) / (2 * WindowSigma * WindowSigma));
        }

        var sum = g.Sum();
        for (var k = 0; k < g.Length; k++)
        {
            g[k] /= sum;
        }

        return g;
    }

    private static void Check(HuImage test, HuImage reference, bool[]? mask)
    {
        if (!test.SameSize(reference))
        {
            throw new ArgumentException($"the images differ in size: {test.Width}×{test.Height} against {reference.Width}×{reference.Height}");
        }

        if (mask is not null && mask.Length != test.Pixels.Length)
        {
            throw new ArgumentException($"the mask has {mask.Length} pixels, the images {test.Pixels.Length}", nameof(mask));
        }
    }
}
