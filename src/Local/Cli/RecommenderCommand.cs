using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MlFunctions.Core;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Local.Engine;
using MlFunctions.Local.Http;
using MlFunctions.Local.Storage;

namespace MlFunctions.Local.Cli;

/// <summary>
/// <c>recommender [--quick]</c> (#13): <c>examples/pipelines/recommender.json</c> on TrainingPipeline: UCI Online Retail
/// cleaned and split leave-last-out, a sweep of matrix factorization (BPR), the retrain, evaluation through serving
/// with the baselines beside it, the gate, registration and a served top-10. Ends with one
/// <c>RESULT recommender hr10=… ndcg10=… pop_hr10=… knn_hr10=… als_hr10=… model_version=…</c> line and a ready curl.
/// </summary>
public static class RecommenderCommand
{
    public const string Usage = """
          recommender           the UCI Online Retail recommender (examples/pipelines/recommender.json) end to end,
                                RESULT with HR@10/NDCG@10 beside the baselines, and a curl for one customer's top 10
                                  --quick (a 2-trial grid over the embedding width, under 2 min)  --exit  --no-cache
                                  --seed N (the sweep's and training's seed, default the spec's; for multi-seed figures)
                                  --model mf|ncf (default the spec's: mf; ncf is the book's embeddings + dense layers)
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var file = Checkout(Path.Combine("examples", "pipelines", "recommender.json"));
        var spec = JsonSerializer.Deserialize<PipelineSpec>(await File.ReadAllTextAsync(file), MlJson.Options)!;
        var folder = Path.GetDirectoryName(file)!;
        var quick = args.Contains("--quick");
        spec = spec with
        {
            Cache = spec.Cache && !args.Contains("--no-cache"),
            Dataset = spec.Dataset with { SourceDirectories = spec.Dataset.SourceDirectories.Select(d => Path.GetFullPath(d, folder)).ToList() },
        };
        var seedAt = Array.IndexOf(args, "--seed");
        string? seedText = seedAt >= 0 && seedAt + 1 < args.Length ? args[seedAt + 1] : null;
        if (seedAt >= 0)
        {
            if (!long.TryParse(seedText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed))
            {
                Console.Error.WriteLine($"error: --seed needs an integer, got '{seedText ?? "(nothing)"}'");
                return 2;
            }

            spec = spec with { Sweep = spec.Sweep with { Seed = seed } };
        }

        var modelAt = Array.IndexOf(args, "--model");
        if (modelAt >= 0)
        {
            if (modelAt + 1 >= args.Length || args[modelAt + 1] is not ("mf" or "ncf"))
            {
                Console.Error.WriteLine($"error: --model needs mf or ncf, got '{(modelAt + 1 < args.Length ? args[modelAt + 1] : "(nothing)")}'");
                return 2;
            }

            spec = spec with { Model = args[modelAt + 1] };
        }

        if (quick)
        {
            // Two trials, a grid over the embedding width alone: a 2-trial random draw from the full space would often
            // land far from the measured defaults, and --quick must finish in under 2 minutes on 2 cores.
            spec = spec with
            {
                Sweep = spec.Sweep with { Algorithm = "grid", MaxTrials = 2, ParallelTrials = 2, Epochs = 10, Parameters = [Core.Sweeps.ParameterSpec.Categorical("embeddingSize", "64", "128")] },
            };
        }

        var problems = spec.Problems();
        if (problems.Count > 0)
        {
            Console.Error.WriteLine($"error: invalid pipeline spec {file}:\n  - " + string.Join("\n  - ", problems));
            return 2;
        }

        var exit = args.Contains("--exit");
        var hostArgs = args.Where((a, i) => a is not ("--exit" or "--no-cache" or "--quick" or "--seed" or "--model") && !(seedAt >= 0 && i == seedAt + 1) && !(modelAt >= 0 && i == modelAt + 1)).ToArray();
        var clock = Stopwatch.StartNew();
        await using var app = LocalHost.Build(hostArgs);
        await app.StartAsync();
        Console.WriteLine($"MlFunctions local host on {Commands.BaseUrl(app)}; pipeline {spec.Name} from {file}{(quick ? " (quick)" : "")}");
        var (runId, run, exitCode) = await PipelineProgressPrinter.RunToEndAsync(app, spec);
        if (run is not { } result)
            return exitCode;

        var m = result.Metrics;
        string F(string name) => m.TryGetValue(name, out var v) ? v.ToString("F4", CultureInfo.InvariantCulture) : "n/a";
        Console.WriteLine();
        Console.WriteLine($"outcome: {result.Outcome}: {result.Reason}");
        Console.WriteLine("test metrics: " + string.Join(", ", m.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:F4}"))));

        // One held-out customer (the smoke test's) as a ready request body.
        var customer = await FirstCustomerAsync(app, result);
        var body = Path.Combine(app.Services.GetRequiredService<LocalPaths>().DataPath, $"{runId}-customer.json");
        await File.WriteAllTextAsync(body, JsonSerializer.Serialize(new
        {
            inputs = new object[]
            {
                new { name = "user", shape = new[] { 1 }, datatype = "BYTES", data = new[] { customer } },
                new { name = "k", shape = new[] { 1 }, datatype = "INT64", data = new[] { 10 } },
            },
        }));
        var key = app.Services.GetRequiredService<ApiKeys>().Key;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT recommender hr10={F("hr@10")} ndcg10={F("ndcg@10")} pop_hr10={F("pop_hr@10")} knn_hr10={F("knn_hr@10")} als_hr10={F("als_hr@10")} model_version={result.ModelVersion?.ToString(CultureInfo.InvariantCulture) ?? "none"} wall_s={clock.Elapsed.TotalSeconds:F1}"));
        Console.WriteLine($"curl -s -H 'x-functions-key: {key}' -H 'content-type: application/json' -d @{body} {Commands.BaseUrl(app)}/v2/models/{spec.RegisteredModel}/infer");
        if (!exit)
        {
            Console.WriteLine("serving until Ctrl-C");
            await app.WaitForShutdownAsync();
        }

        return 0;
    }

    private static async Task<string> FirstCustomerAsync(Microsoft.AspNetCore.Builder.WebApplication app, PipelineRunResult result)
    {
        if (result.Data is not { } data)
            return "17850";
        var reader = new Activities.Datasets.PreparedDatasetReader(await app.Services.GetRequiredService<Activities.Storage.IStorageClients>().BlobsAsync());
        var manifest = await reader.ReadManifestAsync(data);
        var test = await reader.ReadSplitAsync(data, manifest, "test");
        return test.Count > 0 && manifest.Transform.Interactions is { } ids ? ids.Users[(int)test.FloatFeatures![0]] : "17850";
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
