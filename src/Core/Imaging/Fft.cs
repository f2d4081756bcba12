namespace MlFunctions.Core.Imaging;

/// <summary>
/// In-place iterative radix-2 complex FFT of one fixed power-of-two length, with its twiddles and bit-reversal
/// permutation computed once. The filtered back projection filters a few hundred detector rows per slice with it, so a
/// plan that allocates nothing per call beats a general library call (and keeps Core free of a second math package).
/// Not thread-safe only in the sense that callers own the arrays; the plan itself is immutable.
/// </summary>
public sealed class Fft
{
    private readonly int[] _reverse;
    private readonly double[] _cos;
    private readonly double[] _sin;

    public Fft(int length)
    {
        if (length < 2 || (length & (length - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, "the FFT length must be a power of two ≥ 2");
        }

        Length = length;
        var bits = System.Numerics.BitOperations.Log2((uint)length);
        _reverse = new int[length];
        for (var i = 0; i < length; i++)
        {
            var r = 0;
            for (var b = 0; b < bits; b++)
            {
                r |= ((i >> b) & 1) << (bits - 1 - b);
            }

            _reverse[i] = r;
        }

        _cos = new double[length / 2];
        _sin = new double[length / 2];
        for (var k = 0; k < length / 2; k++)
        {
            var angle = -2.0 * Math.PI * k / length;
            _cos[k] = Math.Cos(angle);
            _sin[k] = Math.Sin(angle);
        }
    }

    public int Length { get; }

    public static int NextPowerOfTwo(int n) => (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(n, 2));

    /// <summary>Forward transform X[k] = Σ x[n]·e^(−2πi·kn/L) (inverse = false), or the inverse with the 1/L factor.</summary>
    public void Transform(Span<double> re, Span<double> im, bool inverse = false)
    {
        var n = Length;
        if (re.Length != n || im.Length != n)
        {
            throw new ArgumentException($"the FFT plan is for length {n}");
        }

        for (var i = 0; i < n; i++)
        {
            var j = _reverse[i];
            if (j > i)
            {
                (re[i], re[j]) = (re[j], re[i]);
                (im[i], im[j]) = (im[j], im[i]);
            }
        }

        var sign = inverse ? -1.0 : 1.0;
        for (var size = 2; size <= n; size <<= 1)
        {
            var half = size >> 1;
            var step = n / size;
            for (var start = 0; start < n; start += size)
            {
                for (var k = 0; k < half; k++)
                {
                    var wr = _cos[k * step];
                    var wi = sign * _sin[k * step];
                    var a = start + k;
                    var b = a + half;
                    var tr = (re[b] * wr) - (im[b] * wi);
                    var ti = (re[b] * wi) + (im[b] * wr);
                    re[b] = re[a] - tr;
                    im[b] = im[a] - ti;
                    re[a] += tr;
                    im[a] += ti;
                }
            }
        }

        if (inverse)
        {
            var scale = 1.0 / n;
            for (var i = 0; i < n; i++)
            {
                re[i] *= scale;
                im[i] *= scale;
            }
        }
    }
}
