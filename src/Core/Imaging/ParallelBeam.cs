namespace MlFunctions.Core.Imaging;

/// <summary>The reconstruction filter of the filtered back projection.</summary>
public enum ReconstructionFilter
{
    /// <summary>The ramp |ω| (Ram-Lak), from the band-limited spatial kernel of Kak &amp; Slaney eq. 3.61: sharpest, noisiest.</summary>
    Ramp,

    /// <summary>The ramp times a Hann window reaching 0 at Nyquist: the usual clinical trade of resolution for noise.</summary>
    Hann,
}

/// <summary>
/// A parallel-beam scanner for N×N slices: <see cref="Angles"/> views evenly over [0, π), a detector of
/// <see cref="Detectors"/> bins one pixel wide, centred on the rotation axis, wide enough for the slice's diagonal.
/// Everything works in pixel units: an image holds attenuation per pixel length (μ·spacing), so a projection is a
/// dimensionless line integral ∫μ dl and <see cref="CtAcquisition"/> handles HU and millimetres.
/// Forward projection is Joseph's method (1982: a linear interpolation in the image per row or column crossed, weighted
/// by the path length per step); back projection is pixel-driven with linear interpolation on the detector. Tables
/// (angles, filter, FFT plan) are built once; <see cref="Project"/> and <see cref="Reconstruct"/> allocate only their
/// results and two row buffers. An instance is immutable and safe to share across threads.
/// </summary>
public sealed class ParallelBeam
{
    private readonly double[] _cos;
    private readonly double[] _sin;
    private readonly Fft _fft;
    private readonly double[] _rampResponse;
    private readonly double[] _hannResponse;

    public ParallelBeam(int size, int angles, int? detectors = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 8);
        ArgumentOutOfRangeException.ThrowIfLessThan(angles, 2);
        Size = size;
        Angles = angles;

        // Odd, so one bin sits on the axis; +3 so the diagonal's rays and the back projector's interpolation stay inside.
        var minimum = (int)Math.Ceiling(size * Math.Sqrt(2.0)) + 3;
        var d = detectors ?? minimum;
        if (d < minimum)
        {
            throw new ArgumentOutOfRangeException(nameof(detectors), d, $"a {size}² slice needs at least {minimum} detector bins");
        }

        Detectors = d | 1;
        _cos = new double[angles];
        _sin = new double[angles];
        for (var k = 0; k < angles; k++)
        {
            var theta = Math.PI * k / angles;
            _cos[k] = Math.Cos(theta);
            _sin[k] = Math.Sin(theta);
        }

        // Linear convolution of a D-sample row with the kernel needs ≥ 2D−1 points: zero padding, no wrap-around.
        var padded = Fft.NextPowerOfTwo(2 * Detectors);
        _fft = new Fft(padded);
        _rampResponse = RampResponse(_fft);
        _hannResponse = new double[padded];
        for (var k = 0; k < padded; k++)
        {
            var f = (double)Math.Min(k, padded - k) / padded;
            _hannResponse[k] = _rampResponse[k] * 0.5 * (1.0 + Math.Cos(2.0 * Math.PI * f));
        }
    }

    public int Size { get; }

    public int Angles { get; }

    public int Detectors { get; }

    /// <summary>The view angle of row <paramref name="k"/> of a sinogram, in radians.</summary>
    public double Angle(int k) => Math.PI * k / Angles;

    /// <summary>Detector coordinate of bin <paramref name="bin"/>, in pixels from the rotation axis.</summary>
    public double DetectorPosition(int bin) => bin - ((Detectors - 1) / 2.0);

    /// <summary>
    /// Line integrals of <paramref name="image"/> (Size², row-major, values per pixel length) for every view and bin:
    /// a sinogram [Angles × Detectors], row-major. Pixel (i, j) has its centre at x = i − (N−1)/2, y = j − (N−1)/2, and
    /// the ray of bin u at angle θ is {x·cos θ + y·sin θ = u}.
    /// </summary>
    public float[] Project(ReadOnlySpan<float> image)
    {
        var n = Size;
        if (image.Length != n * n)
        {
            throw new ArgumentException($"the projector is for {n}×{n} images, got {image.Length} pixels", nameof(image));
        }

        // One pixel of zeros on every side: the interpolation may read x ∈ [−1, N] without a bounds test per sample.
        var stride = n + 2;
        var padded = new float[stride * stride];
        for (var j = 0; j < n; j++)
        {
            image.Slice(j * n, n).CopyTo(padded.AsSpan(((j + 1) * stride) + 1, n));
        }

        var sinogram = new float[Angles * Detectors];
        var centre = (n - 1) / 2.0;
        for (var k = 0; k < Angles; k++)
        {
            var c = _cos[k];
            var s = _sin[k];
            var row = sinogram.AsSpan(k * Detectors, Detectors);
            var alongRows = Math.Abs(c) >= Math.Abs(s);
            for (var bin = 0; bin < Detectors; bin++)
            {
                var u = DetectorPosition(bin);
                row[bin] = alongRows
                    ? (float)Sweep(padded, stride, n, u / c, -s / c, centre, 1.0 / Math.Abs(c), rowsMajor: true)
                    : (float)Sweep(padded, stride, n, u / s, -c / s, centre, 1.0 / Math.Abs(s), rowsMajor: false);
            }
        }

        return sinogram;
    }

    /// <summary>
    /// One ray, stepping the major axis m = 0..N−1: the minor coordinate (centred) is a + b·(m − centre); the sample is a
    /// linear interpolation between the two pixels it falls between, times the path length per step.
    /// </summary>
    private static double Sweep(float[] padded, int stride, int n, double a, double b, double centre, double weight, bool rowsMajor)
    {
        // Index of the minor axis in padded coordinates: q(m) = a + b·(m − centre) + centre + 1 must stay in [0, N+1).
        var q0 = a - (b * centre) + centre + 1.0;
        int first, last;
        if (Math.Abs(b) < 1e-12)
        {
            if (q0 < 0.0 || q0 >= n + 1)
            {
                return 0.0;
            }

            first = 0;
            last = n - 1;
        }
        else
        {
            var m1 = (0.0 - q0) / b;
            var m2 = (n + 1 - 1e-9 - q0) / b;
            first = Math.Max(0, (int)Math.Ceiling(Math.Min(m1, m2)));
            last = Math.Min(n - 1, (int)Math.Floor(Math.Max(m1, m2)));
        }

        var sum = 0.0;
        for (var m = first; m <= last; m++)
        {
            var q = q0 + (b * m);
            var i = (int)q;
            var f = q - i;
            float v0, v1;
            if (rowsMajor)
            {
                var at = ((m + 1) * stride) + i;
                v0 = padded[at];
                v1 = padded[at + 1];
            }
            else
            {
                var at = (i * stride) + m + 1;
                v0 = padded[at];
                v1 = padded[at + stride];
            }

            sum += v0 + (f * (v1 - v0));
        }

        return sum * weight;
    }

    /// <summary>
    /// Filtered back projection of a sinogram [Angles × Detectors] onto the Size² grid (values per pixel length, like
    /// the projector's input): each view is filtered through a zero-padded FFT, then smeared back along its rays.
    /// </summary>
    public float[] Reconstruct(ReadOnlySpan<float> sinogram, ReconstructionFilter filter = ReconstructionFilter.Ramp)
    {
        if (sinogram.Length != Angles * Detectors)
        {
            throw new ArgumentException($"the sinogram must be {Angles}×{Detectors}, got {sinogram.Length} values", nameof(sinogram));
        }

        var response = filter == ReconstructionFilter.Hann ? _hannResponse : _rampResponse;
        var length = _fft.Length;
        var re = new double[length];
        var im = new double[length];
        var filtered = new double[Angles * Detectors];

        // Two real views per complex FFT (one in the real part, one in the imaginary part): the response is real and
        // even, so the filtered views come back separately in the real and imaginary parts.
        for (var k = 0; k < Angles; k += 2)
        {
            Array.Clear(re);
            Array.Clear(im);
            for (var bin = 0; bin < Detectors; bin++)
            {
                re[bin] = sinogram[(k * Detectors) + bin];
            }

            var pair = k + 1 < Angles;
            if (pair)
            {
                for (var bin = 0; bin < Detectors; bin++)
                {
                    im[bin] = sinogram[((k + 1) * Detectors) + bin];
                }
            }

            _fft.Transform(re, im);
            for (var f = 0; f < length; f++)
            {
                re[f] *= response[f];
                im[f] *= response[f];
            }

            _fft.Transform(re, im, inverse: true);
            Array.Copy(re, 0, filtered, k * Detectors, Detectors);
            if (pair)
            {
                Array.Copy(im, 0, filtered, (k + 1) * Detectors, Detectors);
            }
        }

        var n = Size;
        var image = new double[n * n];
        var centre = (n - 1) / 2.0;
        var detectorCentre = (Detectors - 1) / 2.0;
        for (var k = 0; k < Angles; k++)
        {
            var c = _cos[k];
            var s = _sin[k];
            var view = filtered.AsSpan(k * Detectors, Detectors);
            for (var j = 0; j < n; j++)
            {
                // Detector index of pixel (i, j) = (i − centre)·c + (j − centre)·s + detectorCentre, linear in i.
                var t = (-centre * c) + ((j - centre) * s) + detectorCentre;
                var rowStart = j * n;
                for (var i = 0; i < n; i++, t += c)
                {
                    var b = (int)t;
                    var f = t - b;
                    image[rowStart + i] += view[b] + (f * (view[b + 1] - view[b]));
                }
            }
        }

        var result = new float[n * n];
        var scale = Math.PI / Angles;
        for (var p = 0; p < result.Length; p++)
        {
            result[p] = (float)(image[p] * scale);
        }

        return result;
    }

    /// <summary>
    /// The frequency response of the band-limited ramp for unit detector spacing: the DFT of h[0] = 1/4,
    /// h[±n odd] = −1/(π²n²), h[even ≠ 0] = 0 (Kak &amp; Slaney 3.61), laid out circularly. Sampling |ω| directly would
    /// zero the DC term and leave a cupping offset; this kernel keeps the mean right.
    /// </summary>
    private static double[] RampResponse(Fft fft)
    {
        var length = fft.Length;
        var re = new double[length];
        var im = new double[length];
        re[0] = 0.25;
        for (var n = 1; n < length / 2; n += 2)
        {
            var h = -1.0 / (Math.PI * Math.PI * n * n);
            re[n] = h;
            re[length - n] = h;
        }

        fft.Transform(re, im);
        return re;
    }
}
