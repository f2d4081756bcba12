using System.Text;
using MlFunctions.Core.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace MlFunctions.Imaging.Tests;

/// <summary>The PNG16 + sidecar form of slice pairs: what the simulator writes is what a user uploads, and bad uploads are named.</summary>
public sealed class DatasetIoTests
{
    private static readonly CtSimulationSpec Tiny = new()
    {
        Protocol = new CtProtocol { Size = 64, PixelSpacingMm = 4.0, Angles = 96 },
        Subjects = 3,
        SlicesPerSubject = 2,
        Seed = 11,
    };

    [Fact]
    public void Simulated_pairs_round_trip_through_a_folder()
    {
        var simulated = CtSimulator.Simulate(Tiny);
        var root = Path.Combine(Path.GetTempPath(), "mlf-ct-" + Guid.NewGuid().ToString("N"));
        try
        {
            CtSliceDataset.WriteFolder(root, simulated.Select(s => s.Pair));
            Assert.True(File.Exists(Path.Combine(root, "sim-000", "000_low.png")));
            Assert.True(File.Exists(Path.Combine(root, "sim-000", "000_full.png")));
            Assert.True(File.Exists(Path.Combine(root, "sim-000", "000.json")));
            File.WriteAllText(Path.Combine(root, "_SUCCESS"), "");
            var read = CtSliceDataset.ReadFolder(root);
            Assert.Empty(read.Problems);
            Assert.True(read.IsValid);
            Assert.Equal(["sim-000", "sim-001", "sim-002"], read.Subjects);
            Assert.Equal(6, read.Pairs.Count);
            foreach (var original in simulated)
            {
                var back = Assert.Single(read.Pairs, p => p.Key == original.Pair.Key);
                for (var p = 0; p < back.Low.Pixels.Length; p++)
                {
                    // Stored as rounded integers: within half a HU, unless clamped at −1024 (FBP undershoot in air).
                    Assert.InRange(back.Low.Pixels[p] - Math.Max(original.Pair.Low.Pixels[p], -1024f), -0.5001f, 0.5001f);
                    Assert.InRange(back.Full.Pixels[p] - Math.Max(original.Pair.Full.Pixels[p], -1024f), -0.5001f, 0.5001f);
                }

                Assert.Equal(4.0, back.Sidecar.PixelSpacingMm);
                Assert.Equal(0.25, back.Sidecar.Scan(CtDoseRole.Low)!.DoseFraction);
                Assert.Equal(1e5, back.Sidecar.Scan(CtDoseRole.Full)!.I0);
                Assert.Equal(96, back.Sidecar.Angles);
            }

            var json = File.ReadAllText(Path.Combine(root, "sim-001", "001.json"));
            Assert.Contains("\"role\": \"low\"", json);
            Assert.Contains("\"pixelSpacingMm\": 4", json);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Every_problem_of_a_bad_upload_is_listed_with_its_file()
    {
        var good = CtSimulator.Simulate(Tiny with { Subjects = 1, SlicesPerSubject = 1 })[0].Pair;
        var files = new List<CtFile>();
        CtFile[] Pair(string subject, HuImage? low = null, HuImage? full = null) =>
            CtSliceDataset.Files(good with { Subject = subject, Low = low ?? good.Low, Full = full ?? good.Full }).ToArray();

        files.AddRange(Pair("ok"));
        files.AddRange(Pair("nosidecar").Where(f => !f.Path.EndsWith(".json", StringComparison.Ordinal)));
        files.AddRange(Pair("nofull").Where(f => !f.Path.EndsWith("_full.png", StringComparison.Ordinal)));
        files.AddRange(Pair("corrupt").Select(f => f.Path.EndsWith("_low.png", StringComparison.Ordinal) ? f with { Bytes = f.Bytes[..(f.Bytes.Length / 2)] } : f));
        files.AddRange(Pair("notpng").Select(f => f.Path.EndsWith("_low.png", StringComparison.Ordinal) ? f with { Bytes = Encoding.UTF8.GetBytes("hello") } : f));
        files.AddRange(Pair("sizes", full: new HuImage(32, 32, Enumerable.Range(0, 32 * 32).Select(i => (float)(i % 200)).ToArray())));
        var metal = good.Low.Clone();
        metal.Pixels[100] = 6000;
        files.AddRange(Pair("metal", low: metal));
        files.AddRange(Pair("nooffset", low: new HuImage(64, 64, Enumerable.Range(0, 64 * 64).Select(i => -1024f + (i % 300)).ToArray())));
        files.AddRange(Pair("depth").Select(f => f.Path.EndsWith("_full.png", StringComparison.Ordinal) ? f with { Bytes = Rgb8Png(64, 64) } : f));
        files.AddRange(Pair("badjson").Select(f => f.Path.EndsWith(".json", StringComparison.Ordinal) ? f with { Bytes = Encoding.UTF8.GetBytes("{\"pixelSpacingMm\": ") } : f));
        files.AddRange(Pair("fields").Select(f => f.Path.EndsWith(".json", StringComparison.Ordinal)
            ? f with { Bytes = Encoding.UTF8.GetBytes("{\"pixelSpacingMm\": 0, \"scans\": [{\"role\": \"low\", \"doseFraction\": 1.5}, {\"role\": \"full\", \"doseFraction\": 1}]}") }
            : f));

        var read = CtSliceDataset.Read(files);
        var problems = read.Problems;
        Assert.False(read.IsValid);
        Assert.Equal(["ok/000"], read.Pairs.Select(p => p.Key));

        void Has(string path, string text) =>
            Assert.True(problems.Any(p => p.StartsWith(path, StringComparison.Ordinal) && p.Contains(text, StringComparison.Ordinal)),
                $"no problem '{text}' for {path} in:\n{string.Join("\n", problems)}");
        Has("nosidecar/000", "no sidecar 000.json");
        Has("nofull/000", "pair incomplete, no full-dose image 000_full.png");
        Has("corrupt/000_low.png", "not a readable PNG");
        Has("notpng/000_low.png", "is not a PNG");
        Has("sizes/000", "sizes differ within the pair: low dose 64×64, full dose 32×32");
        Has("metal/000_low.png", "HU range implausible: values up to 6000 HU");
        Has("nooffset/000_low.png", "without the +1024 offset");
        Has("depth/000_full.png", "is 8-bit RGB; CT slices must be 16-bit grayscale PNG");
        Has("badjson/000.json", "not a valid sidecar");
        Has("fields/000.json", "pixelSpacingMm is missing");
        Has("fields/000.json", "low-dose scan's doseFraction 1.5");
        Assert.Equal(11, problems.Count);
    }

    [Fact]
    public void Damaged_pngs_become_problems_not_exceptions()
    {
        var good = CtPng.Encode(CtSimulator.Simulate(Tiny with { Subjects = 1, SlicesPerSubject = 1 })[0].Pair.Low);
        var random = new Random(4);
        var damaged = new List<byte[]> { good[..8], good[..40], good[..8].Concat(new byte[64]).ToArray() };
        for (var trial = 0; trial < 30; trial++)
        {
            var copy = (byte[])good.Clone();
            for (var k = 0; k < 8; k++)
            {
                copy[8 + random.Next(copy.Length - 8)] ^= (byte)(1 + random.Next(255));
            }

            damaged.Add(copy);
        }

        var rejected = 0;
        foreach (var bytes in damaged)
        {
            if (!CtPng.TryDecode(bytes, out _, out var problem))
            {
                Assert.False(string.IsNullOrWhiteSpace(problem));
                rejected++;
            }
        }

        // Flipped bytes inside compressed pixel data may still decode (to wrong pixels); truncations never do.
        Assert.True(rejected >= 3, $"{rejected} of {damaged.Count} damaged files rejected");
    }

    [Fact]
    public void An_empty_upload_says_what_was_expected()
    {
        var read = CtSliceDataset.Read([new CtFile("_SUCCESS", [])]);
        Assert.Contains("no CT slices found: expected {subject}/{slice}_low.png", Assert.Single(read.Problems));
    }

    [Fact]
    public void Subjects_are_distinct_bodies_and_splits_never_share_one()
    {
        var spec = new CtSimulationSpec { Subjects = 20 };
        var subjects = CtSimulator.Subjects(spec);
        Assert.Equal(20, subjects.Select(s => s.Seed).Distinct().Count());
        var slices = subjects.Select(s => s.SliceAt(0).Rasterize(64).Pixels).ToList();
        for (var a = 0; a < slices.Count; a++)
        {
            for (var b = a + 1; b < slices.Count; b++)
            {
                Assert.False(slices[a].AsSpan().SequenceEqual(slices[b]), $"subjects {a} and {b} have the same anatomy");
            }
        }

        var split = CtSplits.Assign(subjects.Select(s => s.SubjectId), validation: 3, test: 4, seed: 5);
        Assert.Equal(13, split.Values.Count(v => v == CtSplit.Train));
        Assert.Equal(3, split.Values.Count(v => v == CtSplit.Validation));
        Assert.Equal(4, split.Values.Count(v => v == CtSplit.Test));
        Assert.Equal(split, CtSplits.Assign(subjects.Select(s => s.SubjectId).Reverse(), 3, 4, 5));
        Assert.Throws<ArgumentException>(() => CtSplits.Assign(["a", "b"], 1, 1, 0));
    }

    [Fact]
    public void Simulation_is_deterministic_for_a_spec()
    {
        var a = CtSimulator.Simulate(Tiny with { Subjects = 1 }, parallelism: 2);
        var b = CtSimulator.Simulate(Tiny with { Subjects = 1 });
        Assert.True(a[1].Pair.Low.Pixels.AsSpan().SequenceEqual(b[1].Pair.Low.Pixels));
        Assert.False(a[0].Pair.Low.Pixels.AsSpan().SequenceEqual(a[0].Pair.Full.Pixels));
    }

    private static byte[] Rgb8Png(int w, int h)
    {
        using var image = new Image<Rgb24>(w, h);
        using var stream = new MemoryStream();
        image.Save(stream, new PngEncoder { ColorType = PngColorType.Rgb, BitDepth = PngBitDepth.Bit8 });
        return stream.ToArray();
    }
}

/// <summary>The denoiser's view of the pairs: tensors in HU/1000 and body-centred training patches.</summary>
public sealed class PatchTests
{
    [Fact]
    public void Patches_are_cut_from_the_body_and_tensors_round_trip()
    {
        var pairs = CtSimulator.Simulate(new CtSimulationSpec { Protocol = new CtProtocol { Size = 64, PixelSpacingMm = 4, Angles = 96 }, Subjects = 2, SlicesPerSubject = 1 })
            .Select(s => s.Pair).ToList();
        var (low, full) = CtPatches.Sample(pairs, patch: 16, count: 50, seed: 3);
        Assert.Equal(50 * 256, low.Length);
        Assert.Equal(50 * 256, full.Length);
        for (var n = 0; n < 50; n++)
        {
            // The centre pixel lies in the body: above air (−0.5 in HU/1000) in the full-dose target, or in a hole of it.
            Assert.Contains(full.AsSpan(n * 256, 256).ToArray(), v => v > -0.5f);
        }

        Assert.Equal(low, CtPatches.Sample(pairs, 16, 50, 3).Low);
        var tensor = CtPatches.ToTensor(pairs[0].Low);
        Assert.Equal(pairs[0].Low.Pixels[200] / 1000f, tensor[200], 6);
        var back = CtPatches.FromTensor(tensor, 64, 64);
        Assert.Equal(pairs[0].Low.Pixels[200], back.Pixels[200], 2);
    }
}
