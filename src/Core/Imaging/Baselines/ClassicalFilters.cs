namespace MlFunctions.Core.Imaging.Baselines;

/// <summary>
/// The classical denoisers the learned one must beat, on the same slices: a Gaussian blur and a median filter (edges
/// mirrored, so no border darkening). Both work in HU and return a new image.
/// </summary>
public static class ClassicalFilters
{
    /// <summary>Separable Gaussian blur of standard deviation <paramref name="sigma"/> pixels (kernel radius ⌈3σ⌉); σ ≤ 0 copies.</summary>
    public static HuImage Gaussian(HuImage image, double sigma)
    {
        if (sigma <= 0)
        {
            return image.Clone();
        }

        var radius = (int)Math.Ceiling(3 * sigma);
        var kernel = new double[(2 * radius) + 1];
        for (var k = -radius; k <= radius; k++)
        {
            kernel[k + radius] = Math.Exp(-(k * k) / (2 * sigma * sigma));
        }

        var total = kernel.Sum();
        for (var k = 0; k < kernel.Length; k++)
        {
            kernel[k] /= total;
        }

        var (w, h) = (image.Width, image.Height);
        var temp = new double[w * h];
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                double s = 0;
                for (var k = -radius; k <= radius; k++)
                {
                    s += kernel[k + radius] * image.Pixels[(y * w) + Mirror(x + k, w)];
                }

                temp[(y * w) + x] = s;
            }
        }

        var result = new HuImage(w, h);
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                double s = 0;
                for (var k = -radius; k <= radius; k++)
                {
                    s += kernel[k + radius] * temp[(Mirror(y + k, h) * w) + x];
                }

                result.Pixels[(y * w) + x] = (float)s;
            }
        }

        return result;
    }

    /// <summary>Median over the (2r+1)² square around each pixel; r = 0 copies.</summary>
    public static HuImage Median(HuImage image, int radius)
    {
        if (radius <= 0)
        {
            return image.Clone();
        }

        var (w, h) = (image.Width, image.Height);
        var side = (2 * radius) + 1;
        var window = new float[side * side];
        var result = new HuImage(w, h);
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                var n = 0;
                for (var dy = -radius; dy <= radius; dy++)
                {
                    var row = Mirror(y + dy, h) * w;
                    for (var dx = -radius; dx <= radius; dx++)
                    {
                        window[n++] = image.Pixels[row + Mirror(x + dx, w)];
                    }
                }

                Array.Sort(window);
                result.Pixels[(y * w) + x] = window[window.Length / 2];
            }
        }

        return result;
    }

    /// <summary>Reflects an index into [0, n): −1 → 1, n → n − 2 (the edge pixel is not repeated).</summary>
    public static int Mirror(int i, int n)
    {
        if (n == 1)
        {
            return 0;
        }

        while (i < 0 || i >= n)
        {
            i = i < 0 ? -i : (2 * (n - 1)) - i;
        }

        return i;
    }
}
