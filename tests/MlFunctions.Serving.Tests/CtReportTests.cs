using Azure.Storage.Blobs;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MlFunctions.Activities;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Models;
using MlFunctions.Activities.Storage;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Transforms;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace MlFunctions.Serving.Tests;

/// <summary>
/// #14's run report: the evaluate step writes before/after PNGs of test slices (low dose, denoised, full dose,
/// difference), and the report step copies them beside report.md and shows them next to the metric table.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class CtReportTests(AzuriteFixture azurite)
{
    private static readonly ActivityCall Call = new("test", "test-instance", CancellationToken.None);

    private IStorageClients Storage => new ConnectionStringStorageClients(_ => Task.FromResult(azurite.ConnectionString));

    [Fact]
    public void A_windowed_png_maps_the_window_onto_0_to_255_and_clamps_outside_it()
    {
        var slice = new HuImage(4, 1, [-1000f, -160f, 40f, 3000f]);
        using var image = Image.Load<L8>(CtPng.EncodeWindowed(slice, EvaluateDenoise.SliceWindow.Lower, EvaluateDenoise.SliceWindow.Upper));
        Assert.Equal([0, 0, 128, 255], Enumerable.Range(0, 4).Select(x => (int)image[x, 0].PackedValue));
        Assert.Throws<ArgumentOutOfRangeException>(() => CtPng.EncodeWindowed(slice, 10, 10));

        // The difference is centred: no change is mid-grey.
        var views = EvaluateDenoise.SliceViews(slice, slice, slice, 3);
        Assert.Equal(["low dose", "denoised", "full dose", "difference"], views.Select(v => v.Label));
        Assert.Equal("test-003-diff.png", views[3].File);
        using var diff = Image.Load<L8>(views[3].Png);
        Assert.Equal(128, diff[0, 0].PackedValue);
    }

    [Fact]
    public async Task Evaluate_writes_before_after_pngs_of_test_slices_and_the_report_shows_copies_beside_report_md()
    {
        var blobs = await Storage.BlobsAsync();
        var name = $"ctrep-{Guid.NewGuid():N}"[..14];
        var sim = new CtSimulationSpec { Protocol = new CtProtocol { Size = 48, PixelSpacingMm = 5.0, Angles = 72, LowDoseFraction = 0.1 }, Subjects = 4, SlicesPerSubject = 1, Seed = 9 };
        var registered = await new RegisterDatasetActivity(Storage, Options.Create(new DatasetOptions()), NullLogger<RegisterDatasetActivity>.Instance)
            .RunAsync(new RegisterDatasetInput { Name = name, SimulateCt = sim, Recursive = true }, Call);
        var prepared = await new TransformDatasetActivity(Storage, NullLogger<TransformDatasetActivity>.Instance)
            .RunAsync(new TransformDatasetInput(registered.Dataset, new PreparationRecipe { Source = "ct", Ct = new CtRecipe { Patch = 32, Patches = 8, ValidationFraction = 0.25, TestFraction = 0.25 } }), Call);

        var onnx = CtServingTests.ResidualConv();
        var models = await azurite.NewContainerAsync("ctrep");
        var model = models.GetBlobClient("residual.onnx");
        await model.UploadAsync(BinaryData.FromBytes(onnx));
        var sessions = new OrtSessionFactory(OrtSessionFactory.ProvidersFor(new ServingOptions { ExecutionProvider = ExecutionProviderPreference.Auto }), 1);
        var evaluated = await new EvaluateModelActivity(Storage, new BlobArtifactStore(azurite.Service), sessions)
            .RunAsync(new EvaluateModelInput(model.Uri.ToString(), OnnxModels.Sha256(onnx), prepared.Data), Call);

        // One test subject of one slice here: its four pictures, in column order, each a 48×48 8-bit PNG.
        Assert.Equal(["low dose", "denoised", "full dose", "difference"], evaluated.Images.Select(i => i.Label));
        Assert.Single(evaluated.Images.Select(i => i.Caption).Distinct());
        Assert.Contains(" dB", evaluated.Images[0].Caption);
        foreach (var image in evaluated.Images)
        {
            var uri = new BlobUriBuilder(new Uri(image.Uri));
            var png = (await blobs.GetBlobContainerClient(uri.BlobContainerName).GetBlobClient(uri.BlobName).DownloadContentAsync()).Value.Content.ToArray();
            using var decoded = Image.Load<L8>(png);
            Assert.Equal((48, 48), (decoded.Width, decoded.Height));
        }

        var runId = $"run-{Guid.NewGuid():N}";
        var report = new PipelineReport
        {
            RunId = runId,
            Pipeline = "ct-denoise",
            Outcome = "Promoted",
            Reason = "first model",
            Metrics = evaluated.Metrics.ToDictionary(kv => $"test_{kv.Key}", kv => kv.Value),
            Images = evaluated.Images,
        };
        await new WriteRunReportActivity(Storage).RunAsync(new WriteRunReportInput(runId, report), Call);

        var runs = blobs.GetBlobContainerClient(PipelineLayout.RunsContainer);
        foreach (var file in new[] { "test-000-low.png", "test-000-denoised.png", "test-000-full.png", "test-000-diff.png" })
            Assert.True((await runs.GetBlobClient($"{runId}/images/{file}").ExistsAsync()).Value, file);
        var md = (await runs.GetBlobClient($"{runId}/report.md").DownloadContentAsync()).Value.Content.ToString();
        var metrics = md.IndexOf("## Metrics", StringComparison.Ordinal);
        var slices = md.IndexOf("## Test slices", StringComparison.Ordinal);
        Assert.True(metrics > 0 && slices > metrics, md);
        Assert.Contains("| Slice | low dose | denoised | full dose | difference |", md);
        Assert.Contains("![denoised](images/test-000-denoised.png)", md);
        Assert.Contains("| test_psnr |", md);
        var stored = (await runs.GetBlobClient($"{runId}/report.json").DownloadContentAsync()).Value.Content.ToObjectFromJson<PipelineReport>(MlJson.Options)!;
        Assert.All(stored.Images, i => Assert.StartsWith(runs.Uri + "/" + runId + "/images/", i.Uri, StringComparison.Ordinal));
        Assert.Equal("images/test-000-diff.png", stored.Images[3].Link);
        Console.WriteLine($"ct report: {evaluated.Images.Count} PNGs, test psnr {evaluated.Metrics["psnr"]:F2} dB vs low dose {evaluated.Metrics["lowdose_psnr"]:F2} dB\n{md[slices..md.IndexOf("\n\n", slices + 16, StringComparison.Ordinal)]}");
    }
}
