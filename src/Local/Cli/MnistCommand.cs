using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Local.Engine;
using MlFunctions.Local.Http;
using MlFunctions.Local.Storage;

namespace MlFunctions.Local.Cli;

/// <summary>
/// <c>mnist [--quick]</c>: the main job. Starts the host (Azurite, engine, a training worker, HTTP), runs
/// the built-in MNIST spec (<see cref="BuiltInPipelines.Mnist"/>, <c>examples/pipelines/mnist.json</c>) on
/// <c>TrainingPipeline</c> over the genuine MNIST files, shows steps, trials and epochs as they go, prints the
/// result, the RESULT line and a ready curl, then keeps serving until Ctrl-C. The run id is remembered in
/// the data folder: running the command again resumes an unfinished run (its state is in Azurite's data),
/// and <c>--new</c> starts a fresh one.
/// </summary>
public static class MnistCommand
{
    public const string Usage = """
          mnist                 run the MNIST pipeline end to end (data → sweep → retrain → gate → register → serve),
                                print RESULT and a curl, then keep serving until Ctrl-C
                                  --quick (≤ 3 min: the spec's quick budget)  --data DIR (folder with mnist-train/ and mnist/)
                                  --new (start a new run instead of resuming)  --no-cache  --exit (don't keep serving)
                                  --trials N  --epochs N (per trial)  --retrain-epochs N  --gate-margin X
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var options = MnistArgs.Parse(args, out var hostArgs);
        var data = FindData(options.DataDir);
        if (data is null)
        {
            Console.Error.WriteLine(
                "error: no MNIST data found. Put the files in a folder with mnist-train/ (train-images-idx3-ubyte.part*-of-6.gz, " +
                "train-labels-idx1-ubyte.part*-of-6.gz) and mnist/ (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), then pass " +
                "--data <folder> or set MLF_DATASETS=<folder>. Looked in: " + string.Join(", ", Candidates(options.DataDir)));
            return 2;
        }

        var clock = Stopwatch.StartNew();
        await using var app = LocalHost.Build(hostArgs);
        await app.StartAsync();
        Console.WriteLine($"MlFunctions local host on {Commands.BaseUrl(app)}; MNIST data from {data}");
        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        var stopping = lifetime.ApplicationStopping;
        var client = app.Services.GetRequiredService<EngineService>().Client;

        var spec = options.Spec(data);
        var runFile = Path.Combine(app.Services.GetRequiredService<LocalPaths>().DataPath, options.Quick ? "mnist-quick-run.txt" : "mnist-run.txt");
        var runId = await ResumeOrStartAsync(client, runFile, spec, options.New, stopping);

        var done = await new PipelineProgressPrinter(client, runId, spec.Sweep.MaxTrials, spec.Sweep.Epochs, spec.RetrainEpochs).WaitAsync(stopping);

        if (done?.IsCompleted != true)
        {
            Console.WriteLine($"stopped; run {runId} is saved and resumes when you run the command again (or pass --new for a fresh run)");
            return 130;
        }

        if (done.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
        {
            Console.Error.WriteLine($"run {runId} ended {done.RuntimeStatus}: {done.FailureDetails?.ErrorMessage ?? done.SerializedOutput}");
            Console.Error.WriteLine($"the run report is in the pipeline-runs container under {runId}/; pass --new to start a fresh run");
            return 1;
        }

        var result = done.ReadOutputAs<PipelineRunResult>()!;
        var accuracy = result.Metrics.GetValueOrDefault(Core.Metrics.MetricNames.Accuracy, result.Value);
        var model = result.Model ?? spec.RegisteredModel;
        var report = await SaveReportAsync(app, result);
        Console.WriteLine();
        Console.WriteLine($"outcome: {result.Outcome}: {result.Reason}");
        Console.WriteLine($"test accuracy: {accuracy:P2} on the MNIST t10k test set (ONNX Runtime)");
        var champion = result.ModelVersion ?? (await ChampionVersionAsync(app, model, spec.Alias));
        Console.WriteLine(result.ModelVersion is { } v
            ? $"registered: {model} v{v}, now '{spec.Alias}'"
            : $"nothing promoted; '{spec.Alias}' stays v{champion}");
        Console.WriteLine($"report: {report} ({result.ReportMarkdownUri})");

        var (body, label, index) = await WriteTestImageAsync(app, result, spec);
        var key = app.Services.GetRequiredService<ApiKeys>().Key;
        Console.WriteLine($"live prediction: test image #{index} of the t10k set, true label {label}:");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT mnist test_accuracy={accuracy:F4} model_version={champion} wall_s={clock.Elapsed.TotalSeconds:F1} true_label={label}"));
        Console.WriteLine($"curl -s -H 'x-functions-key: {key}' -H 'content-type: application/json' -d @{body} {Commands.BaseUrl(app)}/v2/models/{model}/infer");

        if (!options.Exit)
        {
            Console.WriteLine("serving until Ctrl-C");
            await app.WaitForShutdownAsync();
        }
        else
        {
            await app.StopAsync();
        }

        return 0;
    }

    /// <summary>The remembered run when it is still going (the engine resumes it), else a new one.</summary>
    private static async Task<string> ResumeOrStartAsync(DurableTaskClient client, string runFile, PipelineSpec spec, bool forceNew, CancellationToken ct)
    {
        if (!forceNew && File.Exists(runFile))
        {
            var previous = (await File.ReadAllTextAsync(runFile, ct)).Trim();
            var state = previous.Length > 0 ? await client.GetInstanceAsync(previous, ct) : null;
            if (state is { IsRunning: true } || state?.RuntimeStatus == OrchestrationRuntimeStatus.Pending)
            {
                Console.WriteLine($"resuming run {previous} (started {state.CreatedAt:u})");
                return previous;
            }
        }

        var problems = spec.Problems();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", problems));
        }

        var runId = $"mnist-{DateTime.UtcNow:yyyyMMdd-HHmmss}";
        await client.ScheduleNewOrchestrationInstanceAsync(OrchestrationNames.TrainingPipeline, spec, new StartOrchestrationOptions(runId), ct);
        await File.WriteAllTextAsync(runFile, runId, ct);
        Console.WriteLine($"started run {runId}: sweep {spec.Sweep.Algorithm} {spec.Sweep.MaxTrials} trials × {spec.Sweep.Epochs} epoch(s), retrain {spec.RetrainEpochs} epoch(s)");
        return runId;
    }

    /// <summary>MLF_DATASETS, --data, or ../shared/datasets beside the checkout (walking up from here and from the binary).</summary>
    private static string? FindData(string? explicitDir) =>
        Candidates(explicitDir).FirstOrDefault(d => Directory.Exists(Path.Combine(d, "mnist-train")) && Directory.Exists(Path.Combine(d, "mnist")));

    private static IEnumerable<string> Candidates(string? explicitDir)
    {
        if (explicitDir is not null)
        {
            yield return Path.GetFullPath(explicitDir);
            yield break;
        }

        if (Environment.GetEnvironmentVariable("MLF_DATASETS") is { Length: > 0 } env)
        {
            yield return Path.GetFullPath(env);
        }

        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "MlFunctions.sln")))
                {
                    yield return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "datasets"));
                    break;
                }
            }
        }
    }

    /// <summary>Copies the run report (Markdown) next to the data folder, where a person finds it.</summary>
    private static async Task<string> SaveReportAsync(WebApplication app, PipelineRunResult result)
    {
        var paths = app.Services.GetRequiredService<LocalPaths>();
        var folder = Directory.CreateDirectory(Path.Combine(paths.DataPath, "reports", result.RunId)).FullName;
        if (result.ReportMarkdownUri is { } md && result.ReportJsonUri is { } json)
        {
            var blobs = await app.Services.GetRequiredService<IStorageClients>().BlobsAsync();
            foreach (var uri in new[] { md, json })
            {
                var name = new Azure.Storage.Blobs.BlobUriBuilder(new Uri(uri));
                var content = await blobs.GetBlobContainerClient(name.BlobContainerName).GetBlobClient(name.BlobName).DownloadContentAsync();
                await File.WriteAllBytesAsync(Path.Combine(folder, Path.GetFileName(name.BlobName)), content.Value.Content.ToArray());
            }
        }

        return Path.Combine(folder, "report.md");
    }

    private static async Task<int> ChampionVersionAsync(WebApplication app, string model, string alias)
    {
        var registry = app.Services.GetRequiredService<Core.Registry.IModelRegistry>();
        return (await registry.GetAliasAsync(model, alias))?.Version ?? 0;
    }

    /// <summary>The smoke test's image as a V2 request body with raw 0-255 pixels (the server applies the stored transform).</summary>
    private static async Task<(string Path, int Label, int Index)> WriteTestImageAsync(WebApplication app, PipelineRunResult result, PipelineSpec spec)
    {
        var index = result.Smoke?.ImageIndex ?? spec.SmokeIndex;
        var data = result.Data ?? throw new InvalidOperationException("the run's result names no prepared dataset");
        var blobs = await app.Services.GetRequiredService<IStorageClients>().BlobsAsync();
        var shard = await new PreparedDatasetReader(blobs).ReadSplitAsync(data, PreparedLayout.Test);
        var size = shard.SampleShape.Aggregate(1, (a, b) => a * b);
        var pixels = shard.Features.AsSpan(index * size, size).ToArray().Select(b => (float)b).ToArray();
        var body = new
        {
            id = $"t10k-{index}",
            inputs = new[] { new { name = "input", shape = new[] { 1, 1, 28, 28 }, datatype = "FP32", data = pixels } },
        };
        var path = Path.Combine(app.Services.GetRequiredService<LocalPaths>().DataPath, $"mnist-test-image-{index}.json");
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(body, MlJson.Options));
        return (path, shard.Labels[index], index);
    }

    private sealed record MnistArgs(bool Quick, string? DataDir, bool New, bool NoCache, bool Exit, int? Trials, int? Epochs, int? RetrainEpochs, double? GateMargin)
    {
        public static MnistArgs Parse(string[] args, out string[] hostArgs)
        {
            var a = new MnistArgs(false, null, false, false, false, null, null, null, null);
            var rest = new List<string>();
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                a = args[i] switch
                {
                    "--quick" => a with { Quick = true },
                    "--data" => a with { DataDir = Next() },
                    "--new" => a with { New = true },
                    "--no-cache" => a with { NoCache = true },
                    "--exit" => a with { Exit = true },
                    "--trials" => a with { Trials = int.Parse(Next(), CultureInfo.InvariantCulture) },
                    "--epochs" => a with { Epochs = int.Parse(Next(), CultureInfo.InvariantCulture) },
                    "--retrain-epochs" => a with { RetrainEpochs = int.Parse(Next(), CultureInfo.InvariantCulture) },
                    "--gate-margin" => a with { GateMargin = double.Parse(Next(), CultureInfo.InvariantCulture) },
                    _ => Keep(a, args[i], rest),
                };
            }

            hostArgs = rest.ToArray();
            return a;
        }

        private static MnistArgs Keep(MnistArgs a, string arg, List<string> rest)
        {
            rest.Add(arg);
            return a;
        }

        /// <summary>
        /// The built-in spec on the data folder, with its <c>quick</c> budget for --quick and the flags on top. The default
        /// budget (≤ 10 min on 2 cores): 8 TPE trials over MLP and CNN (BatchNorm on/off, augmentation strength and batch
        /// size in the space), 2 epochs on 12k samples each, then the best retrained for 10 epochs (cosine learning rate) on
        /// all 60k. Ten, not the old HTTP input's 12: a 32-channel CNN with BatchNorm and augmentation takes ~36 s an epoch
        /// on 2 cores (measured: 99.52% on t10k after 10 of 12 cosine epochs, 99.53% after 11), so 12 would not fit beside
        /// the sweep. Quick (≤ 3 min): 2 random MLP trials of 1 epoch on 3k samples, a 2-epoch retrain on 20k.
        /// </summary>
        public PipelineSpec Spec(string data)
        {
            var spec = BuiltInPipelines.Mnist;
            if (Quick)
                spec = spec.WithBudget("quick");
            return spec with
            {
                Dataset = spec.Dataset with { SourceDirectories = [Path.Combine(data, "mnist-train"), Path.Combine(data, "mnist")] },
                Cache = !NoCache,
                Sweep = spec.Sweep with { MaxTrials = Trials ?? spec.Sweep.MaxTrials, Epochs = Epochs ?? spec.Sweep.Epochs },
                RetrainEpochs = RetrainEpochs ?? spec.RetrainEpochs,
                Gate = spec.Gate with { Margin = GateMargin ?? spec.Gate.Margin },
            };
        }
    }
}
