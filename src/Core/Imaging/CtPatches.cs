using MlFunctions.Core.Metrics;

namespace MlFunctions.Core.Imaging;

/// <summary>
/// Slices and patches as the denoiser's tensors: float NCHW with one channel, values HU × <c>huScale</c> (1/1000 by
/// default, so air is −1, water 0, bone ≈ +1: a range a conv net trains on without further standardization). The same
/// scale must be stored with the model and applied by serving; <see cref="FromTensor"/> undoes it.
/// </summary>
public static class CtPatches
{
    public const double DefaultHuScale = 1e-3;

    /// <summary>A slice as [1, 1, H, W].</summary>
    public static float[] ToTensor(HuImage image, double huScale = DefaultHuScale)
    {
        var data = new float[image.Pixels.Length];
        for (var p = 0; p < data.Length; p++)
        {
            data[p] = (float)(image.Pixels[p] * huScale);
        }

        return data;
    }

    /// <summary>A [1, 1, H, W] (or [H, W]) tensor back to HU.</summary>
    public static HuImage FromTensor(ReadOnlySpan<float> data, int width, int height, double huScale = DefaultHuScale)
    {
        if (data.Length != width * height)
        {
            throw new ArgumentException($"{data.Length} values for a {width}×{height} slice", nameof(data));
        }

        var image = new HuImage(width, height);
        for (var p = 0; p < data.Length; p++)
        {
            image.Pixels[p] = (float)(data[p] / huScale);
        }

        return image;
    }

    /// <summary>
    /// <paramref name="count"/> random k×k training patches: a slice uniformly at random, then a position whose patch
    /// centre lies in the full-dose body mask (air-only patches teach nothing). Returns the low-dose inputs and
    /// full-dose targets as [count, 1, k, k], scaled; deterministic for a seed.
    /// </summary>
    public static (float[] Low, float[] Full) Sample(IReadOnlyList<CtSlicePair> pairs, int patch, int count, int seed, double huScale = DefaultHuScale)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(patch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        if (pairs.Count == 0)
        {
            throw new ArgumentException("no slice pair to cut patches from", nameof(pairs));
        }

        var eligible = new List<(CtSlicePair Pair, int[] Positions)>();
        foreach (var pair in pairs)
        {
            if (pair.Low.Width < patch || pair.Low.Height < patch)
            {
                throw new ArgumentException($"{pair.Key} is {pair.Low.Width}×{pair.Low.Height}, smaller than the {patch}×{patch} patch");
            }

            var mask = ImageMetrics.BodyMask(pair.Full);
            var positions = new List<int>();
            var half = patch / 2;
            for (var y = 0; y + patch <= pair.Low.Height; y++)
            {
                for (var x = 0; x + patch <= pair.Low.Width; x++)
                {
                    if (mask[((y + half) * pair.Low.Width) + x + half])
                    {
                        positions.Add((y * pair.Low.Width) + x);
                    }
                }
            }

            if (positions.Count > 0)
            {
                eligible.Add((pair, [.. positions]));
            }
        }

        if (eligible.Count == 0)
        {
            throw new ArgumentException("no slice has body pixels to centre a patch on");
        }

        var random = new Random(seed);
        var size = patch * patch;
        var low = new float[count * size];
        var full = new float[count * size];
        for (var n = 0; n < count; n++)
        {
            var (pair, positions) = eligible[random.Next(eligible.Count)];
            var origin = positions[random.Next(positions.Length)];
            var w = pair.Low.Width;
            var (x0, y0) = (origin % w, origin / w);
            for (var py = 0; py < patch; py++)
            {
                for (var px = 0; px < patch; px++)
                {
                    var source = ((y0 + py) * w) + x0 + px;
                    var target = (n * size) + (py * patch) + px;
                    low[target] = (float)(pair.Low.Pixels[source] * huScale);
                    full[target] = (float)(pair.Full.Pixels[source] * huScale);
                }
            }
        }

        return (low, full);
    }
}
