using MlFunctions.Core.Sweeps;

namespace MlFunctions.Core.Imaging.Baselines;

/// <summary>
/// Low-rank patch denoising, the off-the-shelf approach of the case study's book: cut the slice into overlapping k×k
/// patches (a stride apart, the last row and column of patches flush with the edge so every pixel is covered), stack
/// them as the rows of a matrix P (patches × k²), keep the top <c>rank</c> right singular vectors of P (the
/// eigenvectors of PᵀP, by <see cref="SymmetricEigen"/>), project each patch onto them, and average the overlapping
/// reconstructions. Noise spreads over all k² directions while anatomy concentrates in a few, so truncation removes
/// mostly noise. The basis is fitted on the slice itself: nothing is learned across slices.
/// </summary>
public static class TruncatedSvdDenoiser
{
    public static HuImage Denoise(HuImage image, int patch, int rank, int stride = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(patch, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(patch, Math.Min(image.Width, image.Height));
        ArgumentOutOfRangeException.ThrowIfLessThan(rank, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        var d = patch * patch;
        rank = Math.Min(rank, d);
        var xs = Positions(image.Width, patch, stride);
        var ys = Positions(image.Height, patch, stride);
        var count = xs.Length * ys.Length;
        var matrix = new double[count * d];
        var row = 0;
        foreach (var y in ys)
        {
            foreach (var x in xs)
            {
                for (var py = 0; py < patch; py++)
                {
                    for (var px = 0; px < patch; px++)
                    {
                        matrix[(row * d) + (py * patch) + px] = image.Pixels[((y + py) * image.Width) + x + px];
                    }
                }

                row++;
            }
        }

        // Gram matrix PᵀP (d×d, symmetric): its eigenvectors are P's right singular vectors, its eigenvalues σ².
        var gram = new double[d, d];
        for (var r = 0; r < count; r++)
        {
            var offset = r * d;
            for (var i = 0; i < d; i++)
            {
                var v = matrix[offset + i];
                for (var j = i; j < d; j++)
                {
                    gram[i, j] += v * matrix[offset + j];
                }
            }
        }

        for (var i = 0; i < d; i++)
        {
            for (var j = 0; j < i; j++)
            {
                gram[i, j] = gram[j, i];
            }
        }

        var (values, vectors) = SymmetricEigen.Decompose(gram);
        var top = Enumerable.Range(0, d).OrderByDescending(k => values[k]).Take(rank).ToArray();
        var basis = new double[rank * d];
        for (var k = 0; k < rank; k++)
        {
            for (var i = 0; i < d; i++)
            {
                basis[(k * d) + i] = vectors[i, top[k]];
            }
        }

        var sum = new double[image.Pixels.Length];
        var weight = new int[image.Pixels.Length];
        var coefficients = new double[rank];
        row = 0;
        foreach (var y in ys)
        {
            foreach (var x in xs)
            {
                var offset = row * d;
                for (var k = 0; k < rank; k++)
                {
                    double c = 0;
                    for (var i = 0; i < d; i++)
                    {
                        c += matrix[offset + i] * basis[(k * d) + i];
                    }

                    coefficients[k] = c;
                }

                for (var py = 0; py < patch; py++)
                {
                    for (var px = 0; px < patch; px++)
                    {
                        var i = (py * patch) + px;
                        double v = 0;
                        for (var k = 0; k < rank; k++)
                        {
                            v += coefficients[k] * basis[(k * d) + i];
                        }

                        var at = ((y + py) * image.Width) + x + px;
                        sum[at] += v;
                        weight[at]++;
                    }
                }

                row++;
            }
        }

        var result = new HuImage(image.Width, image.Height);
        for (var p = 0; p < sum.Length; p++)
        {
            result.Pixels[p] = (float)(sum[p] / weight[p]);
        }

        return result;
    }

    private static int[] Positions(int length, int patch, int stride)
    {
        var positions = new List<int>();
        for (var p = 0; p + patch <= length; p += stride)
        {
            positions.Add(p);
        }

        if (positions[^1] != length - patch)
        {
            positions.Add(length - patch);
        }

        return [.. positions];
    }
}
