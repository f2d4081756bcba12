using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MlFunctions.Core;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Local.Engine;
using MlFunctions.Local.Http;
using MlFunctions.Local.Storage;

namespace MlFunctions.Local.Cli;

/// <summary>
/// <c>ct [--quick]</c> (#14): <c>examples/pipelines/ct.json</c> on TrainingPipeline: simulated low-dose CT (ellipse
/// phantoms, parallel-beam Poisson scans, FBP) registered as PNG16 + sidecar pairs, validated, cut into patches, a sweep
/// of the DnCNN denoiser, the retrain, evaluation through serving with the classical baselines beside it, the gate,
/// registration and a served slice. Ends with one <c>RESULT ct psnr=… ssim=… lowdose_psnr=… lowdose_ssim=…
/// filter_psnr=… svd_psnr=… model_version=…</c> line, before/after PNGs of one test slice and a ready curl.
/// </summary>
public static class CtCommand
{
    public const string Usage = """
          ct                    the low-dose CT denoiser (examples/pipelines/ct.json) end to end: simulated 1/10-dose
                                scans, DnCNN sweep, RESULT with PSNR/SSIM beside low dose, filter and truncated SVD,
                                before/after PNGs and a curl that denoises one test slice
                                  --quick (128², 12 subjects, a 2-trial grid, under 3 min)  --exit  --no-cache
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var file = Checkout(Path.Combine("examples", "pipelines", "ct.json"));
        var spec = JsonSerializer.Deserialize<PipelineSpec>(await File.ReadAllTextAsync(file), MlJson.Options)!;
        var folder = Path.GetDirectoryName(file)!;
        var quick = args.Contains("--quick");
        spec = spec with
        {
            Cache = spec.Cache && !args.Contains("--no-cache"),
            Dataset = spec.Dataset with { SourceDirectories = spec.Dataset.SourceDirectories.Select(d => Path.GetFullPath(d, folder)).ToList() },
        };
        if (quick)
            spec = Quick(spec);

        var problems = spec.Problems();
        if (problems.Count > 0)
        {
            Console.Error.WriteLine($"error: invalid pipeline spec {file}:\n  - " + string.Join("\n  - ", problems));
            return 2;
        }

        var exit = args.Contains("--exit");
        var hostArgs = args.Where(a => a is not ("--exit" or "--no-cache" or "--quick")).ToArray();
        var clock = Stopwatch.StartNew();
        await using var app = LocalHost.Build(hostArgs);
        await app.StartAsync();
        var sim = spec.Ct?.Simulate;
        Console.WriteLine($"MlFunctions local host on {Commands.BaseUrl(app)}; pipeline {spec.Name} from {file}{(quick ? " (quick)" : "")}");
        if (sim is not null)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"simulating {sim.Subjects} subjects × {sim.SlicesPerSubject} slices, {sim.Protocol.Size}² at {sim.Protocol.PixelSpacingMm} mm, {sim.Protocol.Angles} views, I0 {sim.Protocol.FullDoseI0:G3} photons/ray, low dose {sim.Protocol.LowDoseFraction:G3} of it, {sim.Protocol.Filter} FBP"));
        }

        var (runId, run, exitCode) = await PipelineProgressPrinter.RunToEndAsync(app, spec);
        if (run is not { } result)
            return exitCode;

        var m = result.Metrics;
        string F(string name, string format = "F2") => m.TryGetValue(name, out var v) ? v.ToString(format, CultureInfo.InvariantCulture) : "n/a";
        Console.WriteLine();
        Console.WriteLine($"outcome: {result.Outcome}: {result.Reason}");
        Console.WriteLine($"best trial: {string.Join(", ", result.Sweep?.Best?.Parameters.Select(kv => $"{kv.Key}={kv.Value}") ?? [])}");
        Console.WriteLine($"test slices: {F("slices", "F0")}, PSNR/SSIM over the body mask, window [-1000, 1000] HU (data range {F("data_range_hu", "F0")} HU)");
        Console.WriteLine("| method | setting (tuned on validation) | PSNR (dB) | SSIM |");
        Console.WriteLine("| --- | --- | ---: | ---: |");
        Console.WriteLine($"| low-dose FBP | - | {F("lowdose_psnr")} | {F("lowdose_ssim", "F4")} |");
        Console.WriteLine($"| Gaussian | σ {F("gaussian_sigma_px")} px | {F("gaussian_psnr")} | {F("gaussian_ssim", "F4")} |");
        Console.WriteLine($"| median | {F("median_size_px", "F0")}×{F("median_size_px", "F0")} | {F("median_psnr")} | {F("median_ssim", "F4")} |");
        Console.WriteLine($"| truncated SVD | 8×8 patches, rank {F("svd_rank", "F0")} | {F("svd_psnr")} | {F("svd_ssim", "F4")} |");
        Console.WriteLine($"| DnCNN (model) | {result.Model} | {F("psnr")} | {F("ssim", "F4")} |");
        Console.WriteLine($"gain over low dose {F("psnr_gain_db")} dB, over the best classical baseline {F("psnr_over_best_baseline_db")} dB; RMSE {F("rmse_hu")} HU");

        var paths = app.Services.GetRequiredService<LocalPaths>();
        var (body, pngs) = await ExampleAsync(app, result, Path.Combine(paths.DataPath, runId));
        var key = app.Services.GetRequiredService<ApiKeys>().Key;
        if (pngs.Count > 0)
            Console.WriteLine($"before/after PNGs (16-bit, HU + 1024; diff = denoised − low dose + 1024): {string.Join(" ", pngs)}");
        if (result.ReportMarkdownUri is { } reportMd)
            Console.WriteLine($"run report: {reportMd} (test slices as windowed 8-bit PNGs beside it, under images/)");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT ct psnr={F("psnr", "F2")} ssim={F("ssim", "F4")} lowdose_psnr={F("lowdose_psnr")} lowdose_ssim={F("lowdose_ssim", "F4")} filter_psnr={F("filter_psnr")} svd_psnr={F("svd_psnr")} model_version={result.ModelVersion?.ToString(CultureInfo.InvariantCulture) ?? "none"} wall_s={clock.Elapsed.TotalSeconds:F1}"));
        if (body is not null)
            Console.WriteLine($"curl -s -H 'x-functions-key: {key}' -H 'content-type: application/json' -d @{body} {Commands.BaseUrl(app)}/v2/models/{spec.RegisteredModel}/infer");
        if (!exit)
        {
            Console.WriteLine("serving until Ctrl-C");
            await app.WaitForShutdownAsync();
        }

        return 0;
    }

    /// <summary>
    /// The quick run: 128² slices at 2 mm, 180 views, 12 subjects × 4 slices (8/2/2 subjects), a 2-trial grid over the
    /// width at 4 epochs and an 8-epoch retrain, sized to finish in under 3 minutes on 2 cores.
    /// </summary>
    public static PipelineSpec Quick(PipelineSpec spec)
    {
        var ct = spec.Ct ?? new CtDatasetSpec();
        var sim = ct.Simulate ?? new CtSimulationSpec();
        return spec with
        {
            Ct = ct with
            {
                Simulate = sim with { Subjects = 12, SlicesPerSubject = 4, Protocol = sim.Protocol with { Size = 128, PixelSpacingMm = 2.0, Angles = 180 } },
                Patch = 40,
                Patches = 1536,
            },
            Sweep = spec.Sweep with
            {
                Algorithm = "grid",
                MaxTrials = 2,
                ParallelTrials = 2,
                Epochs = 3,
                Parameters = [Core.Sweeps.ParameterSpec.Categorical("learningRate", "0.001", "0.002")],
            },
            RetrainEpochs = 8,
        };
    }

    /// <summary>
    /// Test slice 0 as a ready request body, and before/after PNGs of it (low dose, denoised through the served
    /// model, full dose, and the difference denoised − low dose, all 16-bit HU + 1024).
    /// </summary>
    private static async Task<(string? Body, IReadOnlyList<string> Pngs)> ExampleAsync(Microsoft.AspNetCore.Builder.WebApplication app, PipelineRunResult result, string folder)
    {
        if (result.Data is not { } data)
            return (null, []);
        var reader = new Activities.Datasets.PreparedDatasetReader(await app.Services.GetRequiredService<Activities.Storage.IStorageClients>().BlobsAsync());
        var manifest = await reader.ReadManifestAsync(data);
        var test = CtPreparation.Pairs(await reader.ReadSplitAsync(data, manifest, "test"), "test", manifest.Transform.Ct?.HuScale ?? CtPatches.DefaultHuScale);
        if (test.Count == 0)
            return (null, []);
        Directory.CreateDirectory(folder);
        var low = test[0].Low;
        var body = Path.Combine(folder, "slice.json");
        await File.WriteAllTextAsync(body, JsonSerializer.Serialize(new
        {
            inputs = new object[] { new { name = "input", shape = new[] { 1, 1, low.Height, low.Width }, datatype = "FP32", data = low.Pixels } },
        }));
        if (result.ModelVersion is not { } version)
            return (body, []);

        var dataplane = app.Services.GetRequiredService<Serving.InferenceDataplane>();
        var response = await dataplane.InferAsync(result.Model!, version.ToString(CultureInfo.InvariantCulture), new Serving.Protocol.InferRequest
        {
            Id = "ct-example",
            Inputs = [new Serving.Protocol.InferTensor("input", Serving.Protocol.Datatype.FP32, [1, 1, low.Height, low.Width], (float[])low.Pixels.Clone())],
        });
        var denoised = new HuImage(low.Width, low.Height, (float[])response.Outputs.First(o => o.Name == "denoised").Data);
        var diff = new HuImage(low.Width, low.Height, denoised.Pixels.Zip(low.Pixels, (d, l) => d - l).ToArray());
        var pngs = new List<string>();
        foreach (var (name, image) in new[] { ("low", low), ("denoised", denoised), ("full", test[0].Full), ("diff", diff) })
        {
            var path = Path.Combine(folder, $"test-000-{name}.png");
            await File.WriteAllBytesAsync(path, CtPng.Encode(image));
            pngs.Add(path);
        }

        return (body, pngs);
    }

    /// <summary>A path relative to the checkout's root (where MlFunctions.sln is).</summary>
    private static string Checkout(string path)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MlFunctions.sln")))
                return Path.Combine(dir.FullName, path);
        }

        return Path.GetFullPath(path);
    }
}
