using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Local.Engine;
using MlFunctions.Local.Http;
using MlFunctions.Local.Storage;

namespace MlFunctions.Local.Cli;

/// <summary>
/// <c>run &lt;spec.json&gt;</c>: any pipeline spec end to end on the embedded host, with the same progress as
/// <c>mnist</c>. Relative <c>dataset.sourceDirectories</c> resolve against the spec file's folder. Ends with the
/// outcome, the test metrics, one <c>RESULT pipeline …</c> line and a ready curl that scores a held-out row.
/// </summary>
public static class RunCommand
{
    public const string Usage = """
          run SPEC.json         run a pipeline spec end to end (TrainingPipeline: data → sweep → retrain → gate →
                                register → serve), print RESULT and a curl, then keep serving until Ctrl-C
                                  --exit (don't keep serving)  --no-cache
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var given = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal));
        var file = given is null ? null : FromCheckout(given);
        if (file is null || !File.Exists(file))
        {
            Console.Error.WriteLine($"error: run needs a pipeline spec file{(file is null ? "" : $"; '{file}' does not exist")}\n{Usage}");
            return 2;
        }

        var exit = args.Contains("--exit");
        var hostArgs = args.Where(a => a != given && a is not ("--exit" or "--no-cache")).ToArray();
        PipelineSpec spec;
        try
        {
            spec = JsonSerializer.Deserialize<PipelineSpec>(await File.ReadAllTextAsync(file), MlJson.Options) ?? throw new JsonException("the file holds null");
        }
        catch (JsonException e)
        {
            Console.Error.WriteLine($"error: {file} is not a pipeline spec: {e.Message}");
            return 2;
        }

        var folder = Path.GetDirectoryName(Path.GetFullPath(file))!;
        spec = spec with
        {
            Cache = spec.Cache && !args.Contains("--no-cache"),
            Dataset = spec.Dataset with { SourceDirectories = spec.Dataset.SourceDirectories.Select(d => Path.GetFullPath(d, folder)).ToList() },
        };
        var problems = spec.Problems();
        if (problems.Count > 0)
        {
            Console.Error.WriteLine($"error: invalid pipeline spec {file}:\n  - " + string.Join("\n  - ", problems));
            return 2;
        }

        var clock = Stopwatch.StartNew();
        await using var app = LocalHost.Build(hostArgs);
        await app.StartAsync();
        Console.WriteLine($"MlFunctions local host on {Commands.BaseUrl(app)}; pipeline {spec.Name} from {file}");
        var (runId, run, exitCode) = await PipelineProgressPrinter.RunToEndAsync(app, spec);
        if (run is not { } result)
            return exitCode;

        Console.WriteLine();
        Console.WriteLine($"outcome: {result.Outcome}: {result.Reason}");
        Console.WriteLine("test metrics: " + string.Join(", ", result.Metrics.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:F4}"))));
        var body = await WriteTestRowAsync(app, result, runId);
        var key = app.Services.GetRequiredService<ApiKeys>().Key;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT pipeline name={spec.Name} {string.Join(" ", new[] { result.Metric }.Union(["accuracy"]).Select(m => $"{m}={result.Metrics.GetValueOrDefault(m, result.Value):F4}"))} model_version={result.ModelVersion?.ToString(CultureInfo.InvariantCulture) ?? "none"} wall_s={clock.Elapsed.TotalSeconds:F1}"));
        Console.WriteLine($"curl -s -H 'x-functions-key: {key}' -H 'content-type: application/json' -d @{body} {Commands.BaseUrl(app)}/v2/models/{spec.RegisteredModel}/infer");
        if (!exit)
        {
            Console.WriteLine("serving until Ctrl-C");
            await app.WaitForShutdownAsync();
        }

        return 0;
    }

    /// <summary>
    /// A path as typed: relative to the working directory if it is there, else to the checkout's root (where
    /// MlFunctions.sln is), since <c>dotnet run --project src/Local</c> runs in the project's folder.
    /// </summary>
    private static string FromCheckout(string path)
    {
        if (File.Exists(path) || Path.IsPathRooted(path))
            return Path.GetFullPath(path);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MlFunctions.sln")))
                return Path.GetFullPath(Path.Combine(dir.FullName, path));
        }

        return Path.GetFullPath(path);
    }

    /// <summary>
    /// The first held-out test row as a V2 body of raw named fields, written next to the host's data; for an image
    /// classifier (PNG folders, pixel CSVs) the first test image as a PNG (<c>{run}-test-image.png</c>, the pixel range
    /// stretched to 0..255 as serving expects of a PNG) and a body sending it base64 as the <c>image</c> input.
    /// </summary>
    private static async Task<string> WriteTestRowAsync(Microsoft.AspNetCore.Builder.WebApplication app, PipelineRunResult result, string runId)
    {
        var reader = new PreparedDatasetReader(await app.Services.GetRequiredService<IStorageClients>().BlobsAsync());
        var rows = result.Data is { } data ? await reader.ReadRawRowsAsync(data, "test") : null;
        var path = Path.Combine(app.Services.GetRequiredService<LocalPaths>().DataPath, $"{runId}-test-row.json");
        if (rows is null && result.Data is { } prepared && (await reader.ReadManifestAsync(prepared)).Transform.Image is { } image)
        {
            var test = await reader.ReadSplitAsync(prepared, "test");
            var planes = test.Features.AsSpan(0, image.SampleSize).ToArray().Select(v => (byte)Math.Round(v * 255.0 / image.PixelMax)).ToArray();
            var png = Core.Imaging.ImagePng.Encode(new Core.Imaging.ImagePixels(image.Channels, image.Height, image.Width, planes));
            await File.WriteAllBytesAsync(Path.ChangeExtension(path, null).Replace("-test-row", "-test-image") + ".png", png);
            Console.WriteLine($"test image 0 is class '{image.Classes[test.Labels[0]]}'");
            await File.WriteAllTextAsync(path, JsonSerializer.Serialize(new { inputs = new[] { new { name = "image", shape = new[] { 1 }, datatype = "BYTES", data = new[] { Convert.ToBase64String(png) } } }, outputs = new[] { new { name = "label" }, new { name = "probabilities" } } }));
            return path;
        }

        var inputs = rows is null
            ? []
            : rows.Columns.Select((c, i) => new { name = c, shape = new[] { 1 }, datatype = "BYTES", data = new[] { rows.Rows[0][i] ?? "" } }).ToArray();
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(new { inputs }));
        return path;
    }
}
