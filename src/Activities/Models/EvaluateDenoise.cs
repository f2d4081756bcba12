using System.Globalization;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using MlFunctions.Activities.Datasets;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Imaging.Baselines;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Pipelines;
using MlFunctions.Serving;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Activities.Models;

/// <summary>
/// Scores a CT denoiser (#14) on held-out slices through the serving path: each low-dose test slice goes in as a V2
/// request would carry it (FP32 [1, 1, H, W] in HU), and the served slice is scored against the full-dose slice by
/// <see cref="CtEvaluation"/> (body mask of the full-dose slice, window [−1000, 1000] HU, data range 2000; means over
/// slices). The classical baselines run on the same test slices, each tuned on the validation slices
/// (<see cref="CtBaselines"/>): the low-dose FBP itself, Gaussian and median filters, truncated-SVD patch denoising.
/// Metrics: <c>psnr</c>, <c>ssim</c>, <c>rmse_hu</c>, <c>lowdose_*</c>, <c>gaussian_*</c>, <c>median_*</c>,
/// <c>filter_*</c> (whichever filter won on validation), <c>svd_*</c>, the tuned settings and <c>data_range_hu</c>.
/// With them, before/after PNGs of the first <see cref="ReportSlices"/> test slices for the run report
/// (<see cref="EvaluateModelResult.Images"/>).
/// </summary>
public static class EvaluateDenoise
{
    /// <summary>Test slices pictured in the run report: 4 windowed 8-bit PNGs each, ~15–40 KB apiece at 256².</summary>
    public const int ReportSlices = 2;

    /// <summary>The report's display window for the slices: soft tissue, W 400 / L 40 HU, where the dose's noise shows.</summary>
    public static readonly (double Lower, double Upper) SliceWindow = (-160, 240);

    /// <summary>The difference image's window (denoised − low dose, what the model removed): ±100 HU; the 1/10-dose noise is ~31 HU RMSE (README, 128²).</summary>
    public static readonly (double Lower, double Upper) DifferenceWindow = (-100, 100);

    public static async Task<EvaluateModelResult> RunAsync(PreparedDatasetReader reader, PreparedDatasetManifest manifest, EvaluateModelInput input, ModelScorer scorer, CancellationToken ct, BlobServiceClient? blobs = null)
    {
        var scale = manifest.Transform.Ct?.HuScale ?? CtPatches.DefaultHuScale;
        var test = CtPreparation.Pairs(await reader.ReadSplitAsync(input.Data, manifest, input.Split, ct), input.Split, scale);
        if (input.MaxSamples > 0)
            test = test.Take(input.MaxSamples).ToList();
        if (test.Count == 0)
            throw new InvalidOperationException($"Split '{input.Split}' of {input.Data.Container}/{input.Data.Prefix} holds no slices: there is nothing to evaluate.");

        var denoised = new List<HuImage>(test.Count);
        foreach (var pair in test)
        {
            ct.ThrowIfCancellationRequested();
            denoised.Add(await DenoiseAsync(scorer, pair.Low, $"evaluate-{pair.Slice}", ct));
        }

        var score = CtEvaluation.Score(denoised.Select((d, i) => (d, test[i].Full)));
        var rmse = denoised.Select((d, i) => ImageMetrics.Rmse(d, test[i].Full, ImageMetrics.BodyMask(test[i].Full))).Average();
        var mse = denoised.Select((d, i) => d.Pixels.Zip(test[i].Full.Pixels, (a, b) => Math.Pow((a - b) * scale, 2)).Average()).Average();
        var metrics = new Dictionary<string, double>
        {
            [MetricNames.Psnr] = score.Psnr,
            [MetricNames.Ssim] = score.Ssim,
            ["rmse_hu"] = rmse,
            ["data_range_hu"] = HuWindow.Default.Range,
            ["slices"] = test.Count,
        };

        // Baselines only where a val split exists beside the scored one (a champion is scored on the same data, so
        // its run repeats them identically; they are cheap next to training: ~1 s per 128² slice for the SVD grid).
        if (input.Split == PreparedLayout.Test && manifest.Splits.Any(s => s.Name == PreparedLayout.Val))
        {
            var validation = CtPreparation.Pairs(await reader.ReadSplitAsync(input.Data, manifest, PreparedLayout.Val, ct), PreparedLayout.Val, scale);
            foreach (var (key, value) in await Task.Run(() => Baselines(validation, test), ct))
                metrics[key] = value;
            metrics["psnr_gain_db"] = score.Psnr - metrics["lowdose_psnr"];
            metrics["psnr_over_best_baseline_db"] = score.Psnr - new[] { metrics["filter_psnr"], metrics["svd_psnr"] }.Max();
        }

        IReadOnlyList<RunReportImage> images = [];
        if (blobs is not null && input.Split == PreparedLayout.Test)
            images = await WriteReportImagesAsync(blobs, input, test, denoised, ct);

        return new EvaluateModelResult(0, mse, test.Count, [], scorer.Provider) { Metrics = metrics, Images = images };
    }

    /// <summary>
    /// The run report's pictures of one test slice, in its columns' order: low dose, denoised, full dose (windowed by
    /// <see cref="SliceWindow"/>) and the difference denoised − low dose (<see cref="DifferenceWindow"/>), 8-bit PNGs.
    /// </summary>
    public static IReadOnlyList<(string Label, string File, byte[] Png)> SliceViews(HuImage low, HuImage denoised, HuImage full, int index)
    {
        var difference = new HuImage(low.Width, low.Height, denoised.Pixels.Zip(low.Pixels, (d, l) => d - l).ToArray());
        return
        [
            ("low dose", $"test-{index:D3}-low.png", CtPng.EncodeWindowed(low, SliceWindow.Lower, SliceWindow.Upper)),
            ("denoised", $"test-{index:D3}-denoised.png", CtPng.EncodeWindowed(denoised, SliceWindow.Lower, SliceWindow.Upper)),
            ("full dose", $"test-{index:D3}-full.png", CtPng.EncodeWindowed(full, SliceWindow.Lower, SliceWindow.Upper)),
            ("difference", $"test-{index:D3}-diff.png", CtPng.EncodeWindowed(difference, DifferenceWindow.Lower, DifferenceWindow.Upper)),
        ];
    }

    /// <summary>
    /// Writes <see cref="SliceViews"/> of the first test slices beside the prepared data, under the model's hash
    /// (<c>{prefix}/evaluations/{sha256[..16]}/</c>): the same model on the same data writes the same blobs, so a retry
    /// overwrites them with equal bytes. The report step copies them beside report.md.
    /// </summary>
    private static async Task<IReadOnlyList<RunReportImage>> WriteReportImagesAsync(
        BlobServiceClient blobs, EvaluateModelInput input, IReadOnlyList<CtSlicePair> test, IReadOnlyList<HuImage> denoised, CancellationToken ct)
    {
        var container = blobs.GetBlobContainerClient(input.Data.Container);
        var folder = $"{input.Data.Prefix.TrimEnd('/')}/evaluations/{input.OnnxSha256[..Math.Min(16, input.OnnxSha256.Length)]}";
        var images = new List<RunReportImage>();
        for (var i = 0; i < Math.Min(ReportSlices, test.Count); i++)
        {
            var pair = test[i];
            var low = CtEvaluation.Score(pair.Low, pair.Full);
            var model = CtEvaluation.Score(denoised[i], pair.Full);
            var caption = string.Create(CultureInfo.InvariantCulture,
                $"{pair.Key}: low dose {low.Psnr:F2} dB / {low.Ssim:F4}, denoised {model.Psnr:F2} dB / {model.Ssim:F4}");
            foreach (var (label, file, png) in SliceViews(pair.Low, denoised[i], pair.Full, i))
            {
                var blob = container.GetBlobClient($"{folder}/{file}");
                await blob.UploadAsync(BinaryData.FromBytes(png), new BlobUploadOptions { HttpHeaders = new BlobHttpHeaders { ContentType = "image/png" } }, ct);
                images.Add(new RunReportImage(caption, label, blob.Uri.ToString()));
            }
        }

        return images;
    }

    /// <summary>One low-dose slice through the scorer, as a client sends it: FP32 [1, 1, H, W] in HU.</summary>
    public static async Task<HuImage> DenoiseAsync(ModelScorer scorer, HuImage low, string id, CancellationToken ct)
    {
        var request = new InferRequest
        {
            Id = id,
            Inputs = [new InferTensor("input", Datatype.FP32, [1, 1, low.Height, low.Width], (float[])low.Pixels.Clone())],
        };
        var outputs = await scorer.PredictAsync(request, ct);
        var data = (float[])outputs.First(o => o.Name == "denoised").Data;
        return new HuImage(low.Width, low.Height, data);
    }

    /// <summary>The classical baselines' test scores, tuned on validation, as metrics.</summary>
    public static Dictionary<string, double> Baselines(IReadOnlyList<CtSlicePair> validation, IReadOnlyList<CtSlicePair> test)
    {
        var results = CtBaselines.Run(validation, test).ToDictionary(r => r.Name);
        var metrics = new Dictionary<string, double>();
        void Add(string prefix, BaselineResult r)
        {
            metrics[$"{prefix}_psnr"] = r.Test.Psnr;
            metrics[$"{prefix}_ssim"] = r.Test.Ssim;
            metrics[$"{prefix}_val_psnr"] = r.Validation.Psnr;
        }

        Add("lowdose", results[CtBaselines.LowDose]);
        Add("gaussian", results[CtBaselines.Gaussian]);
        Add("median", results[CtBaselines.Median]);
        Add("svd", results[CtBaselines.TruncatedSvd]);

        // "A Gaussian or median filter with its width tuned on validation": the filter that won on validation.
        var filter = results[CtBaselines.Gaussian].Validation.Psnr >= results[CtBaselines.Median].Validation.Psnr ? results[CtBaselines.Gaussian] : results[CtBaselines.Median];
        Add("filter", filter);
        metrics["filter_is_median"] = filter.Name == CtBaselines.Median ? 1 : 0;
        metrics["gaussian_sigma_px"] = Number(results[CtBaselines.Gaussian].Setting);
        metrics["median_size_px"] = Number(results[CtBaselines.Median].Setting);
        metrics["svd_rank"] = Number(results[CtBaselines.TruncatedSvd].Setting.Split("rank")[^1]);
        return metrics;
    }

    /// <summary>The first number in a setting's description ("σ=0.6 px" → 0.6, "5×5" → 5).</summary>
    private static double Number(string setting)
    {
        var digits = new string(setting.SkipWhile(c => !char.IsAsciiDigit(c)).TakeWhile(c => char.IsAsciiDigit(c) || c == '.').ToArray());
        return double.TryParse(digits, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : -1;
    }
}
