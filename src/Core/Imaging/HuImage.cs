namespace MlFunctions.Core.Imaging;

/// <summary>
/// One CT slice in Hounsfield units, row-major (index = y·Width + x; y grows downwards as in a PNG). Float storage:
/// a 512² slice is 1 MiB, and HU needs no more than float's 7 digits.
/// </summary>
public sealed class HuImage
{
    public HuImage(int width, int height, float[]? pixels = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        pixels ??= new float[width * height];
        if (pixels.Length != width * height)
        {
            throw new ArgumentException($"{pixels.Length} pixels for a {width}×{height} image", nameof(pixels));
        }

        Width = width;
        Height = height;
        Pixels = pixels;
    }

    public int Width { get; }

    public int Height { get; }

    public float[] Pixels { get; }

    public float this[int x, int y]
    {
        get => Pixels[(y * Width) + x];
        set => Pixels[(y * Width) + x] = value;
    }

    public HuImage Clone() => new(Width, Height, (float[])Pixels.Clone());

    public bool SameSize(HuImage other) => Width == other.Width && Height == other.Height;
}

/// <summary>
/// Hounsfield units ↔ linear attenuation. HU = 1000·(μ − μ_water)/μ_water (air ≈ −1000, water 0, cortical bone ≈ +1000
/// and up). μ_water = 0.0195 /mm is water at an effective energy near 70 keV, about what a 120 kVp spectrum gives.
/// </summary>
public static class Hounsfield
{
    /// <summary>Linear attenuation of water, per millimetre.</summary>
    public const double MuWaterPerMm = 0.0195;

    /// <summary>The offset of the 16-bit PNG slices: stored = HU + 1024, so −1024 HU (air, below) is 0.</summary>
    public const int PngOffset = 1024;

    public static double ToMuPerMm(double hu) => MuWaterPerMm * (1.0 + (hu / 1000.0));

    public static double FromMuPerMm(double mu) => 1000.0 * ((mu / MuWaterPerMm) - 1.0);
}
