using System.Diagnostics;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Imaging.Baselines;
using Xunit.Abstractions;

namespace MlFunctions.Imaging.Tests;

/// <summary>The classical baselines on a quick simulated dataset (128², 12 subjects × 4 slices, split 8/2/2 by subject).</summary>
public sealed class BaselineTests(ITestOutputHelper output)
{
    [Fact]
    public void Filters_preserve_a_flat_image_and_smooth_noise()
    {
        var flat = new HuImage(32, 32, Enumerable.Repeat(40f, 1024).ToArray());
        Assert.All(ClassicalFilters.Gaussian(flat, 1.5).Pixels, v => Assert.Equal(40f, v, 3));
        Assert.All(ClassicalFilters.Median(flat, 2).Pixels, v => Assert.Equal(40f, v));
        Assert.All(TruncatedSvdDenoiser.Denoise(flat, 8, 1).Pixels, v => Assert.Equal(40f, v, 2));

        // A single hot pixel disappears under a 3×3 median.
        var spike = flat.Clone();
        spike[10, 10] = 1000;
        Assert.Equal(40f, ClassicalFilters.Median(spike, 1)[10, 10]);
        Assert.Equal(3, ClassicalFilters.Mirror(-3, 10));
        Assert.Equal(7, ClassicalFilters.Mirror(11, 10));
    }

    [Fact]
    public void Full_rank_svd_gives_the_image_back()
    {
        var image = Phantoms.RandomSubject("x", 3).SliceAt(0).Rasterize(40);
        var back = TruncatedSvdDenoiser.Denoise(image, 4, 16, stride: 3);
        for (var p = 0; p < image.Pixels.Length; p++)
        {
            Assert.Equal(image.Pixels[p], back.Pixels[p], 1);
        }
    }

    [Theory]
    [InlineData(0.25)]
    [InlineData(0.1)]
    public void Baselines_on_the_quick_dataset(double doseFraction)
    {
        var spec = new CtSimulationSpec { Protocol = new CtProtocol { LowDoseFraction = doseFraction } };
        var clock = Stopwatch.StartNew();
        var simulated = CtSimulator.Simulate(spec);
        var simulation = clock.Elapsed;
        var split = CtSplits.Assign(simulated.Select(s => s.Pair.Subject), validation: 2, test: 2, seed: spec.Seed);
        var (train, validation, test) = CtSplits.Partition(simulated.Select(s => s.Pair), split);
        Assert.Equal(32, train.Count);
        Assert.Empty(train.Select(p => p.Subject).Intersect(test.Select(p => p.Subject)));
        clock.Restart();
        var results = CtBaselines.Run(validation, test);
        var baselines = clock.Elapsed;

        var noiselessFull = CtEvaluation.Score(simulated.Where(s => split[s.Pair.Subject] == CtSplit.Test).Select(s => (s.Noiseless, s.Pair.Full)));
        output.WriteLine($"dose {doseFraction} of I0 {spec.Protocol.FullDoseI0:E0}, {simulated.Count} slices of 128² in {simulation.TotalSeconds:F2} s " +
            $"({simulation.TotalMilliseconds / simulated.Count:F0} ms per slice, one core), baselines tuned and scored in {baselines.TotalSeconds:F1} s; " +
            $"{simulated.Sum(s => s.ClampedRays)} zero-count rays");
        output.WriteLine($"ceiling: the noiseless FBP scored against the full-dose one: {noiselessFull}");
        output.WriteLine(CtBaselines.Table(results));

        var low = results.Single(r => r.Name == CtBaselines.LowDose).Test;
        foreach (var r in results.Where(r => r.Name != CtBaselines.LowDose))
        {
            Assert.True(r.Test.Psnr > low.Psnr, $"{r.Name} ({r.Setting}): {r.Test} is not above the low-dose {low}");
        }
    }
}
