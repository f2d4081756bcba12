using MlFunctions.Core.Datasets;

namespace MlFunctions.Core.Imaging;

/// <summary>
/// How (low-dose, full-dose) pairs are stored for the <c>denoise</c> task: one float sample per pair of shape
/// [2, H, W], channel 0 the low-dose input and channel 1 the full-dose target, both HU × huScale
/// (<see cref="CtPatches.DefaultHuScale"/>), in a float shard (<see cref="PreparedShard"/> version 2) with labels 0.
/// Keeping the pair in one sample keeps the shard format, the split hashes and the fold logic unchanged; the worker's
/// denoise objective splits the channels into the model's input [n, 1, H, W] and its target. Training splits hold
/// patches (<see cref="CtPatches.Sample"/>), held-out splits whole slices (the model is fully convolutional).
/// </summary>
public static class CtDenoiseSamples
{
    /// <summary>Interleaves low [n, 1, h, w] and full [n, 1, h, w] (scaled floats) into samples [n, 2, h, w].</summary>
    public static float[] Interleave(ReadOnlySpan<float> low, ReadOnlySpan<float> full, int count, int height, int width)
    {
        var size = height * width;
        if (low.Length != count * size || full.Length != count * size)
        {
            throw new ArgumentException($"{low.Length} low and {full.Length} full values for {count} samples of {width}×{height}");
        }

        var samples = new float[2 * count * size];
        for (var n = 0; n < count; n++)
        {
            low.Slice(n * size, size).CopyTo(samples.AsSpan(2 * n * size, size));
            full.Slice(n * size, size).CopyTo(samples.AsSpan(((2 * n) + 1) * size, size));
        }

        return samples;
    }

    /// <summary>A shard of <paramref name="count"/> k×k training patches from <paramref name="pairs"/>.</summary>
    public static PreparedShard Patches(IReadOnlyList<CtSlicePair> pairs, int patch, int count, int seed, double huScale = CtPatches.DefaultHuScale)
    {
        var (low, full) = CtPatches.Sample(pairs, patch, count, seed, huScale);
        return new PreparedShard([2, patch, patch], Interleave(low, full, count, patch, patch), new int[count]);
    }

    /// <summary>A shard of whole slices (all the same size), for validation, test and parity.</summary>
    public static PreparedShard Slices(IReadOnlyList<CtSlicePair> pairs, double huScale = CtPatches.DefaultHuScale)
    {
        if (pairs.Count == 0)
        {
            throw new ArgumentException("no slice pair", nameof(pairs));
        }

        var (w, h) = (pairs[0].Low.Width, pairs[0].Low.Height);
        var odd = pairs.FirstOrDefault(p => p.Low.Width != w || p.Low.Height != h || !p.Low.SameSize(p.Full));
        if (odd is not null)
        {
            throw new ArgumentException($"{odd.Key} is {odd.Low.Width}×{odd.Low.Height} (full {odd.Full.Width}×{odd.Full.Height}); the split's slices are {w}×{h}");
        }

        var low = pairs.SelectMany(p => CtPatches.ToTensor(p.Low, huScale)).ToArray();
        var full = pairs.SelectMany(p => CtPatches.ToTensor(p.Full, huScale)).ToArray();
        return new PreparedShard([2, h, w], Interleave(low, full, pairs.Count, h, w), new int[pairs.Count]);
    }

    /// <summary>Sample <paramref name="index"/> of [n, 2, h, w] floats back to its (low, full) pair in HU.</summary>
    public static (HuImage Low, HuImage Full) Pair(ReadOnlySpan<float> samples, int index, int height, int width, double huScale = CtPatches.DefaultHuScale)
    {
        var size = height * width;
        return (CtPatches.FromTensor(samples.Slice(2 * index * size, size), width, height, huScale),
            CtPatches.FromTensor(samples.Slice(((2 * index) + 1) * size, size), width, height, huScale));
    }
}
