namespace MlFunctions.Core.Imaging;

/// <summary>
/// How a slice is scanned and reconstructed. <see cref="FullDoseI0"/> is the photon count per detector ray with no
/// object (full dose); a low-dose scan has <see cref="LowDoseFraction"/> of it. The defaults are a 128² slice over a
/// 256 mm field (2 mm pixels), 180 views, 10⁵ photons per ray at full dose and ¼ of that at low dose, Hann filter.
/// </summary>
public sealed record CtProtocol
{
    public int Size { get; init; } = 128;

    public double PixelSpacingMm { get; init; } = 2.0;

    public int Angles { get; init; } = 180;

    public double FullDoseI0 { get; init; } = 1e5;

    public double LowDoseFraction { get; init; } = 0.25;

    public ReconstructionFilter Filter { get; init; } = ReconstructionFilter.Hann;

    /// <summary>Every problem with the protocol, empty when it is usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Size is < 16 or > 2048)
        {
            problems.Add($"size {Size} is outside 16..2048");
        }

        if (!(PixelSpacingMm is > 0 and <= 10))
        {
            problems.Add($"pixel spacing {PixelSpacingMm} mm is outside (0, 10]");
        }

        if (Angles is < 8 or > 4096)
        {
            problems.Add($"{Angles} views is outside 8..4096");
        }

        if (!(FullDoseI0 is >= 10 and <= 1e9))
        {
            problems.Add($"full-dose I0 {FullDoseI0} is outside [10, 1e9] photons per ray");
        }

        if (!(LowDoseFraction is > 0 and < 1))
        {
            problems.Add($"low-dose fraction {LowDoseFraction} is outside (0, 1)");
        }

        return problems;
    }
}

/// <summary>One simulated slice: the phantom, and its reconstructions at full dose, at low dose and without noise.</summary>
public sealed record CtSimulatedSlice(HuImage Phantom, HuImage FullDose, HuImage LowDose, HuImage Noiseless, int ClampedRays);

/// <summary>
/// The acquisition physics: HU → μ per pixel (μ_water·(1 + HU/1000)·spacing), a parallel-beam sinogram of line
/// integrals p, Poisson counts I ~ Poisson(I0·e^(−p)) per ray (zero counts clamped to one photon: log 0 is −∞), the
/// measured p̂ = ln(I0/I), filtered back projection, and μ → HU. Full and low dose are independent acquisitions of the
/// same slice, as two real scans would be. One instance per protocol; it holds the projector's tables and is safe to
/// share across threads (each call uses its own seed).
/// </summary>
public sealed class CtAcquisition
{
    public CtAcquisition(CtProtocol protocol)
    {
        var problems = protocol.Problems();
        if (problems.Count > 0)
        {
            throw new ArgumentException("invalid CT protocol: " + string.Join("; ", problems), nameof(protocol));
        }

        Protocol = protocol;
        Scanner = new ParallelBeam(protocol.Size, protocol.Angles);
    }

    public CtProtocol Protocol { get; }

    public ParallelBeam Scanner { get; }

    /// <summary>The noiseless sinogram (line integrals ∫μ dl, dimensionless) of a slice in HU.</summary>
    public float[] Sinogram(HuImage slice)
    {
        RequireSize(slice);
        var perPixel = new float[slice.Pixels.Length];
        var spacing = Protocol.PixelSpacingMm;
        for (var p = 0; p < perPixel.Length; p++)
        {
            // Air is μ ≈ 0: below −1000 HU (reconstruction undershoot in a real scan) is no negative attenuation.
            perPixel[p] = (float)(Math.Max(0.0, Hounsfield.ToMuPerMm(slice.Pixels[p])) * spacing);
        }

        return Scanner.Project(perPixel);
    }

    /// <summary>A measured sinogram at <paramref name="i0"/> photons per ray; returns how many rays counted zero photons.</summary>
    public float[] Measure(ReadOnlySpan<float> sinogram, double i0, int seed, out int clampedRays)
    {
        var sampler = new PoissonSampler(seed);
        var measured = new float[sinogram.Length];
        var logI0 = Math.Log(i0);
        clampedRays = 0;
        for (var r = 0; r < sinogram.Length; r++)
        {
            var counts = sampler.Next(i0 * Math.Exp(-sinogram[r]));
            if (counts < 1)
            {
                counts = 1;
                clampedRays++;
            }

            measured[r] = (float)(logI0 - Math.Log(counts));
        }

        return measured;
    }

    /// <summary>FBP of a sinogram of line integrals, back to HU.</summary>
    public HuImage Reconstruct(ReadOnlySpan<float> sinogram)
    {
        var perPixel = Scanner.Reconstruct(sinogram, Protocol.Filter);
        var image = new HuImage(Protocol.Size, Protocol.Size);
        var inverseSpacing = 1.0 / Protocol.PixelSpacingMm;
        for (var p = 0; p < perPixel.Length; p++)
        {
            image.Pixels[p] = (float)Hounsfield.FromMuPerMm(perPixel[p] * inverseSpacing);
        }

        return image;
    }

    /// <summary>
    /// Scans <paramref name="phantom"/> twice from independent seeds derived from <paramref name="seed"/>: at full dose
    /// and at low dose; also the noiseless reconstruction (the limit of infinite dose, for diagnostics only: real scans
    /// have no such image, so nothing written to disk or scored by the pipeline uses it).
    /// </summary>
    /// <param name="noiseless">Also reconstruct the noiseless sinogram (a quarter of the time per slice); when false,
    /// <see cref="CtSimulatedSlice.Noiseless"/> is the phantom itself.</param>
    public CtSimulatedSlice Scan(HuImage phantom, int seed, bool noiseless = true)
    {
        var sinogram = Sinogram(phantom);
        var full = Measure(sinogram, Protocol.FullDoseI0, Mix(seed, 1), out var clampedFull);
        var low = Measure(sinogram, Protocol.FullDoseI0 * Protocol.LowDoseFraction, Mix(seed, 2), out var clampedLow);
        return new CtSimulatedSlice(phantom, Reconstruct(full), Reconstruct(low), noiseless ? Reconstruct(sinogram) : phantom, clampedFull + clampedLow);
    }

    /// <summary>A seed for stream <paramref name="stream"/> of <paramref name="seed"/> (SplitMix64's finalizer): distinct streams never share draws.</summary>
    public static int Mix(int seed, int stream)
    {
        var z = ((ulong)(uint)seed << 32) ^ (uint)stream;
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }

    private void RequireSize(HuImage slice)
    {
        if (slice.Width != Protocol.Size || slice.Height != Protocol.Size)
        {
            throw new ArgumentException($"the protocol scans {Protocol.Size}² slices, got {slice.Width}×{slice.Height}", nameof(slice));
        }
    }
}
