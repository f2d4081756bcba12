using MlFunctions.Core.Imaging;
using MlFunctions.Core.Metrics;

namespace MlFunctions.Imaging.Tests;

/// <summary>PSNR and SSIM against values computed by hand and against a direct, unoptimized SSIM.</summary>
public sealed class ImageMetricsTests
{
    private static readonly HuWindow Window = HuWindow.Default;

    /// <summary>Whole HU values, so offsets by whole HU are exact in float and hand-computed MSEs hold to the last digit.</summary>
    private static HuImage Random(int size, int seed, double lo = -500, double hi = 500)
    {
        var random = new Random(seed);
        return new HuImage(size, size, Enumerable.Range(0, size * size).Select(_ => (float)Math.Round(lo + ((hi - lo) * random.NextDouble()))).ToArray());
    }

    private static HuImage Constant(int size, float hu) => new(size, size, Enumerable.Repeat(hu, size * size).ToArray());

    [Fact]
    public void Identical_images_have_ssim_one_and_infinite_psnr()
    {
        var image = Random(32, 1);
        Assert.Equal(double.PositiveInfinity, ImageMetrics.Psnr(image, image.Clone(), null, Window));
        Assert.Equal(1.0, ImageMetrics.Ssim(image, image.Clone(), null, Window), 12);
        Assert.Equal(0.0, ImageMetrics.Rmse(image, image.Clone()));
    }

    [Fact]
    public void A_known_mse_gives_the_known_psnr()
    {
        // Offset by 20 HU everywhere (inside the window): MSE = 400, PSNR = 10·log10(2000² / 400) = 40 dB exactly.
        var reference = Random(32, 2);
        var test = new HuImage(32, 32, reference.Pixels.Select(v => v + 20f).ToArray());
        Assert.Equal(400.0, ImageMetrics.Mse(test, reference, null, Window), 6);
        Assert.Equal(40.0, ImageMetrics.Psnr(test, reference, null, Window), 6);

        // In the window [−160, 240] (range 400): 10·log10(400² / 400) = 26.02 dB, as long as nothing is clipped.
        var narrow = new HuWindow(-160, 240);
        var soft = Random(32, 3, -100, 100);
        var shifted = new HuImage(32, 32, soft.Pixels.Select(v => v + 20f).ToArray());
        Assert.Equal(10 * Math.Log10(400), ImageMetrics.Psnr(shifted, soft, null, narrow), 6);
    }

    [Fact]
    public void Values_outside_the_window_are_clipped_and_the_mask_selects_pixels()
    {
        var reference = Constant(16, 1500);
        var test = Constant(16, 1200);
        Assert.Equal(double.PositiveInfinity, ImageMetrics.Psnr(test, reference, null, Window));

        // Error only where the mask is false: the masked PSNR is infinite, the unmasked one finite.
        var a = Random(16, 4);
        var b = a.Clone();
        var mask = new bool[256];
        for (var p = 0; p < 128; p++)
        {
            mask[p] = true;
            b.Pixels[p + 128] += 50;
        }

        Assert.Equal(double.PositiveInfinity, ImageMetrics.Psnr(b, a, mask, Window));
        Assert.Equal(10 * Math.Log10(2000.0 * 2000.0 / 1250.0), ImageMetrics.Psnr(b, a, null, Window), 6);
    }

    [Fact]
    public void Ssim_of_two_flat_images_is_the_luminance_term()
    {
        // Shifted to [0, 2000]: 0 HU → 1000, 100 HU → 1100; σ = 0, so SSIM = (2·1000·1100 + C1)/(1000² + 1100² + C1),
        // C1 = (0.01·2000)² = 400: 2 200 400 / 2 210 400 = 0.995476.
        var ssim = ImageMetrics.Ssim(Constant(20, 100), Constant(20, 0), null, Window);
        Assert.Equal(2_200_400.0 / 2_210_400.0, ssim, 12);
    }

    [Fact]
    public void Ssim_matches_a_direct_window_by_window_computation()
    {
        var reference = Random(24, 5);
        var test = Random(24, 6);
        for (var p = 0; p < test.Pixels.Length; p++)
        {
            test.Pixels[p] = (0.6f * reference.Pixels[p]) + (0.4f * test.Pixels[p]);
        }

        var mask = new bool[24 * 24];
        for (var p = 0; p < mask.Length; p++)
        {
            mask[p] = (p % 24) > 8;
        }

        Assert.Equal(DirectSsim(test, reference, mask), ImageMetrics.Ssim(test, reference, mask, Window), 10);
        Assert.Equal(DirectSsim(test, reference, null), ImageMetrics.Ssim(test, reference, null, Window), 10);
    }

    [Fact]
    public void Ssim_and_psnr_fall_as_noise_grows()
    {
        var reference = Phantoms.SheppLogan().Rasterize(64);
        var mask = ImageMetrics.BodyMask(reference);
        var random = new Random(8);
        var noise = Enumerable.Range(0, 64 * 64).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var (lastSsim, lastPsnr) = (1.0, double.PositiveInfinity);
        foreach (var amplitude in new[] { 10f, 30f, 100f, 300f })
        {
            var noisy = new HuImage(64, 64, reference.Pixels.Select((v, p) => v + (amplitude * noise[p])).ToArray());
            var (ssim, psnr) = (ImageMetrics.Ssim(noisy, reference, mask, Window), ImageMetrics.Psnr(noisy, reference, mask, Window));
            Assert.True(ssim < lastSsim && psnr < lastPsnr, $"amplitude {amplitude}: SSIM {ssim}, PSNR {psnr}");
            (lastSsim, lastPsnr) = (ssim, psnr);
        }
    }

    [Fact]
    public void Body_mask_covers_the_body_and_the_air_it_encloses()
    {
        // A ring of tissue with air inside: the hole is body (a lung), the corners are not.
        var ring = new Phantom([new(0, 0, 0.8, 0.8, 0, 1040), new(0, 0, 0.4, 0.4, 0, -1040)], Additive: true).Rasterize(64);
        var mask = ImageMetrics.BodyMask(ring);
        Assert.True(mask[(32 * 64) + 32]);
        Assert.False(mask[0]);
        Assert.False(mask[(64 * 64) - 1]);
        Assert.InRange(mask.Count(m => m), 0.9 * Math.PI * 0.64 * 1024, 1.1 * Math.PI * 0.64 * 1024);
    }

    [Fact]
    public void Metrics_refuse_images_of_different_sizes()
    {
        var error = Assert.Throws<ArgumentException>(() => ImageMetrics.Psnr(Constant(16, 0), Constant(32, 0), null, Window));
        Assert.Contains("16×16 against 32×32", error.Message);
    }

    /// <summary>SSIM straight from the definition: every valid 11×11 window, Gaussian weights, population moments.</summary>
    private static double DirectSsim(HuImage test, HuImage reference, bool[]? mask)
    {
        var n = test.Width;
        var g = new double[11, 11];
        double total = 0;
        for (var i = 0; i < 11; i++)
        {
            for (var j = 0; j < 11; j++)
            {
                g[i, j] = Math.Exp(-(((i - 5) * (i - 5)) + ((j - 5) * (j - 5))) / (2 * 1.5 * 1.5));
                total += g[i, j];
            }
        }

        double X(HuImage im, int x, int y) => Math.Clamp(im[x, y], -1000, 1000) + 1000.0;
        var (c1, c2) = (Math.Pow(0.01 * 2000, 2), Math.Pow(0.03 * 2000, 2));
        double sum = 0;
        var count = 0;
        for (var cy = 5; cy < n - 5; cy++)
        {
            for (var cx = 5; cx < n - 5; cx++)
            {
                if (mask is not null && !mask[(cy * n) + cx])
                {
                    continue;
                }

                double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
                for (var i = 0; i < 11; i++)
                {
                    for (var j = 0; j < 11; j++)
                    {
                        var w = g[i, j] / total;
                        var (a, b) = (X(test, cx + j - 5, cy + i - 5), X(reference, cx + j - 5, cy + i - 5));
                        mx += w * a;
                        my += w * b;
                        sxx += w * a * a;
                        syy += w * b * b;
                        sxy += w * a * b;
                    }
                }

                var (vx, vy, cov) = (sxx - (mx * mx), syy - (my * my), sxy - (mx * my));
                sum += ((2 * mx * my) + c1) * ((2 * cov) + c2) / (((mx * mx) + (my * my) + c1) * (vx + vy + c2));
                count++;
            }
        }

        return sum / count;
    }
}
