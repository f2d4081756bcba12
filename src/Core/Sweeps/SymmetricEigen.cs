namespace MlFunctions.Core.Sweeps;

/// <summary>
/// Eigendecomposition of a small symmetric matrix by the cyclic Jacobi method (Golub &amp; Van Loan §8.5):
/// A = B·diag(values)·Bᵀ with B orthonormal. CMA-ES needs it once per generation of a covariance of a
/// sweep's numeric dimensions (2–30), where Jacobi's O(n³) per sweep is microseconds and its accuracy is
/// near machine precision; MathNet.Numerics would be Core's second package for this one routine.
/// </summary>
public static class SymmetricEigen
{
    /// <summary>Eigenvalues and eigenvectors (column k of the result's vectors belongs to value k); <paramref name="a"/> is not changed.</summary>
    public static (double[] Values, double[,] Vectors) Decompose(double[,] a)
    {
        var n = a.GetLength(0);
        var m = (double[,])a.Clone();
        var v = new double[n, n];
        for (var i = 0; i < n; i++)
        {
            v[i, i] = 1.0;
        }

        // Convergence is quadratic once the off-diagonal mass is small: 6–10 sweeps reach 1e-15 for n ≤ 30;
        // 100 only bounds a pathological input.
        for (var sweep = 0; sweep < 100; sweep++)
        {
            var off = 0.0;
            var scale = 0.0;
            for (var p = 0; p < n; p++)
            {
                scale += m[p, p] * m[p, p];
                for (var q = p + 1; q < n; q++)
                {
                    off += m[p, q] * m[p, q];
                }
            }

            if (off <= 1e-30 * Math.Max(scale, 1e-300))
            {
                break;
            }

            for (var p = 0; p < n - 1; p++)
            {
                for (var q = p + 1; q < n; q++)
                {
                    if (m[p, q] == 0.0)
                    {
                        continue;
                    }

                    // The rotation that zeroes m[p, q]: t = tan θ from the smaller root of t² + 2τt − 1 = 0.
                    var tau = (m[q, q] - m[p, p]) / (2.0 * m[p, q]);
                    var t = Math.Sign(tau) / (Math.Abs(tau) + Math.Sqrt(1.0 + (tau * tau)));
                    if (tau == 0.0)
                    {
                        t = 1.0;
                    }

                    var c = 1.0 / Math.Sqrt(1.0 + (t * t));
                    var s = t * c;
                    for (var k = 0; k < n; k++)
                    {
                        var mkp = m[k, p];
                        var mkq = m[k, q];
                        m[k, p] = (c * mkp) - (s * mkq);
                        m[k, q] = (s * mkp) + (c * mkq);
                    }

                    for (var k = 0; k < n; k++)
                    {
                        var mpk = m[p, k];
                        var mqk = m[q, k];
                        m[p, k] = (c * mpk) - (s * mqk);
                        m[q, k] = (s * mpk) + (c * mqk);
                    }

                    for (var k = 0; k < n; k++)
                    {
                        var vkp = v[k, p];
                        var vkq = v[k, q];
                        v[k, p] = (c * vkp) - (s * vkq);
                        v[k, q] = (s * vkp) + (c * vkq);
                    }
                }
            }
        }

        var values = new double[n];
        for (var i = 0; i < n; i++)
        {
            values[i] = m[i, i];
        }

        return (values, v);
    }
}
