namespace MlFunctions.Core.Imaging;

/// <summary>
/// An ellipse in the unit field of view ([−1, 1]², x right, y down, as the image rows), rotated by
/// <see cref="AngleDeg"/> counter-clockwise on screen, carrying <see cref="Hu"/>: an amount added where the phantom adds
/// (Shepp–Logan), the tissue's own value where it paints.
/// </summary>
public readonly record struct Ellipse(double Cx, double Cy, double A, double B, double AngleDeg, double Hu);

/// <summary>An ellipsoid in the unit field of view, rotated about z; a slice at z cuts it into an <see cref="Ellipse"/>.</summary>
public readonly record struct Ellipsoid(double Cx, double Cy, double Cz, double A, double B, double C, double AngleDeg, double Hu)
{
    public Ellipse? SliceAt(double z)
    {
        var t = (z - Cz) / C;
        if (t * t >= 1.0)
        {
            return null;
        }

        var scale = Math.Sqrt(1.0 - (t * t));
        return new Ellipse(Cx, Cy, A * scale, B * scale, AngleDeg, Hu);
    }
}

/// <summary>A 2-D phantom: air (−1000 HU), then each ellipse in order, added or painted over what is there.</summary>
public sealed record Phantom(IReadOnlyList<Ellipse> Ellipses, bool Additive)
{
    public const double AirHu = -1000.0;

    /// <summary>
    /// The phantom on an N×N grid with partial-volume edges: each pixel averages <paramref name="supersample"/>² point
    /// samples (4² by default), so edges are not staircase and the projector sees what a detector of finite pixels would.
    /// </summary>
    public HuImage Rasterize(int size, int supersample = 4)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(supersample, 1);
        var values = new double[size * size];
        Array.Fill(values, AirHu);
        var pixel = 2.0 / size;
        var sub = pixel / supersample;
        var samples = supersample * supersample;
        foreach (var e in Ellipses)
        {
            if (e.A <= 0 || e.B <= 0)
            {
                continue;
            }

            var phi = e.AngleDeg * Math.PI / 180.0;
            var cos = Math.Cos(phi);
            var sin = Math.Sin(phi);
            var reach = Math.Max(e.A, e.B);
            var i0 = Math.Max(0, (int)Math.Floor((e.Cx - reach + 1.0) / pixel));
            var i1 = Math.Min(size - 1, (int)Math.Floor((e.Cx + reach + 1.0) / pixel));
            var j0 = Math.Max(0, (int)Math.Floor((e.Cy - reach + 1.0) / pixel));
            var j1 = Math.Min(size - 1, (int)Math.Floor((e.Cy + reach + 1.0) / pixel));
            for (var j = j0; j <= j1; j++)
            {
                for (var i = i0; i <= i1; i++)
                {
                    var inside = 0;
                    for (var sj = 0; sj < supersample; sj++)
                    {
                        // y grows downwards with the row, so a counter-clockwise angle on screen is −φ in these axes.
                        var y = -1.0 + (j * pixel) + ((sj + 0.5) * sub) - e.Cy;
                        for (var si = 0; si < supersample; si++)
                        {
                            var x = -1.0 + (i * pixel) + ((si + 0.5) * sub) - e.Cx;
                            var u = (x * cos) - (y * sin);
                            var v = (x * sin) + (y * cos);
                            if (((u * u) / (e.A * e.A)) + ((v * v) / (e.B * e.B)) <= 1.0)
                            {
                                inside++;
                            }
                        }
                    }

                    if (inside == 0)
                    {
                        continue;
                    }

                    var fraction = (double)inside / samples;
                    var at = (j * size) + i;
                    values[at] = Additive ? values[at] + (fraction * e.Hu) : ((1.0 - fraction) * values[at]) + (fraction * e.Hu);
                }
            }
        }

        var image = new HuImage(size, size);
        for (var p = 0; p < values.Length; p++)
        {
            image.Pixels[p] = (float)values[p];
        }

        return image;
    }
}

/// <summary>A subject: a 3-D phantom of ellipsoids, sliced at several heights (adjacent slices of one body are alike, as in a scan).</summary>
public sealed record SubjectPhantom(string SubjectId, int Seed, IReadOnlyList<Ellipsoid> Ellipsoids)
{
    public Phantom SliceAt(double z) =>
        new(Ellipsoids.Select(e => e.SliceAt(z)).Where(e => e is not null).Select(e => e!.Value).ToList(), Additive: false);
}

/// <summary>The phantoms of the CT case study.</summary>
public static class Phantoms
{
    /// <summary>
    /// Shepp–Logan's ten ellipses (Shepp &amp; Logan 1974; the table of Kak &amp; Slaney, Table 3.1) in HU, added over air.
    /// The original attenuations map to HU with water = 1.0: skull 2.0 → +1000 HU, brain 1.02 → +20 HU, ventricles
    /// 1.00 → 0 HU. "Modified" as Toft's variant is: the six small features' contrast is raised, here from +10 to
    /// +40 HU over brain (60 HU), so low-contrast detail is visible above 1/10-dose noise without being trivial.
    /// </summary>
    public static Phantom SheppLogan() => new(
        [
            new(0, 0, 0.69, 0.92, 0, 2000),
            new(0, 0.0184, 0.6624, 0.874, 0, -980),
            new(0.22, 0, 0.11, 0.31, -18, -20),
            new(-0.22, 0, 0.16, 0.41, 18, -20),
            new(0, -0.35, 0.21, 0.25, 0, 40),
            new(0, -0.1, 0.046, 0.046, 0, 40),
            new(0, 0.1, 0.046, 0.046, 0, 40),
            new(-0.08, 0.605, 0.046, 0.023, 0, 40),
            new(0, 0.606, 0.023, 0.023, 0, 40),
            new(0.06, 0.605, 0.023, 0.046, 0, 40),
        ],
        Additive: true);

    // Tissues a body ellipsoid may hold (HU, painted): soft-tissue organs, fluid, fat, contrast-enhanced vessels, bone, lung.
    private static readonly (double Lo, double Hi, double Weight)[] Tissues =
    [
        (40, 70, 4),     // liver, muscle, spleen
        (0, 20, 2),      // fluid, cysts
        (-120, -80, 2),  // fat
        (150, 300, 1.5), // enhanced vessels, kidney cortex
        (600, 1200, 1),  // bone
        (-900, -750, 0.7), // lung, bowel gas
    ];

    /// <summary>
    /// A random body from <paramref name="seed"/>: a fat-rimmed elliptical trunk (fat −100 HU, soft tissue 20–50 HU
    /// inside) with 5–12 organs of random size, place, orientation, height extent and tissue. Each seed is a different
    /// body, so train, validation and test subjects made from different seeds share no anatomy.
    /// </summary>
    public static SubjectPhantom RandomSubject(string subjectId, int seed)
    {
        var random = new Random(seed);
        double U(double lo, double hi) => lo + ((hi - lo) * random.NextDouble());
        var ax = U(0.62, 0.88);
        var ay = U(0.45, 0.75);
        var cx = U(-0.05, 0.05);
        var cy = U(-0.05, 0.05);
        var tilt = U(-10, 10);
        var body = new List<Ellipsoid>
        {
            new(cx, cy, 0, ax, ay, U(2.0, 4.0), tilt, U(-110, -90)),
        };
        var rim = U(0.82, 0.93);
        body.Add(new(cx, cy, U(-0.2, 0.2), ax * rim, ay * rim, U(2.0, 4.0), tilt, U(20, 50)));
        var organs = random.Next(5, 13);
        var totalWeight = Tissues.Sum(t => t.Weight);
        for (var o = 0; o < organs; o++)
        {
            // A centre inside the inner trunk, at radius ≤ 0.75 of it, so organs stay in the body.
            var r = 0.75 * Math.Sqrt(random.NextDouble());
            var t = U(0, 2 * Math.PI);
            var ox = cx + (r * ax * rim * Math.Cos(t));
            var oy = cy + (r * ay * rim * Math.Sin(t));
            var pick = U(0, totalWeight);
            var tissue = Tissues[^1];
            foreach (var candidate in Tissues)
            {
                if ((pick -= candidate.Weight) <= 0)
                {
                    tissue = candidate;
                    break;
                }
            }

            var small = tissue.Lo >= 600 ? 0.5 : 1.0;
            body.Add(new(ox, oy, U(-0.4, 0.4), U(0.03, 0.22) * small, U(0.03, 0.22) * small, U(0.15, 0.8), U(0, 180), U(tissue.Lo, tissue.Hi)));
        }

        return new SubjectPhantom(subjectId, seed, body);
    }
}
