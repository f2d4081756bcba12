using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Datasets.Mail;
using MlFunctions.Activities.Storage;
using MlFunctions.Core;
using MlFunctions.Core.Datasets.Mail;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Local.Engine;
using MlFunctions.Local.Http;
using MlFunctions.Local.Storage;

namespace MlFunctions.Local.Cli;

/// <summary>
/// <c>mailing-list [--quick] [--data DIR]</c> (#12): <c>examples/pipelines/mailing-list.json</c> on TrainingPipeline: four
/// ASF mbox archives read into labeled thread starts, hashed TF-IDF of subject and body with flags and metadata, a sweep
/// of the linear text classifier on val AUC, the best configuration cross-validated on 5 stratified folds beside the
/// majority-class and logistic-regression baselines on the same folds, the retrain, evaluation through serving, the
/// gate, registration, and a held-out message scored on its raw RFC 5322 text. Ends with one
/// <c>RESULT mailing-list auc=… auc_std=… baseline_auc=… logreg_auc=… model_version=…</c> line and a ready curl.
/// </summary>
public static class MailingListCommand
{
    public const string Usage = """
          mailing-list          will this mailing-list message be answered? (examples/pipelines/mailing-list.json) end to
                                end: RESULT with 5-fold CV AUC ± std beside majority and logistic-regression baselines,
                                and a curl that scores a held-out message on its raw RFC 5322 text
                                  --quick (a 2-trial grid over the L2 strength, under 2 min)  --data DIR (the .mbox
                                  folder, or a datasets root with mailing-list/; else MLF_DATASETS)  --exit  --no-cache
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var file = Checkout(Path.Combine("examples", "pipelines", "mailing-list.json"));
        var spec = JsonSerializer.Deserialize<PipelineSpec>(await File.ReadAllTextAsync(file), MlJson.Options)!;
        var folder = Path.GetDirectoryName(file)!;
        var quick = args.Contains("--quick");
        var dataAt = Array.IndexOf(args, "--data");
        if (dataAt >= 0 && dataAt + 1 >= args.Length)
        {
            Console.Error.WriteLine("error: --data needs a folder");
            return 2;
        }

        var data = FindData(dataAt >= 0 ? args[dataAt + 1] : null, spec.Dataset.SourceDirectories.Select(d => Path.GetFullPath(d, folder)));
        if (data is null)
        {
            Console.Error.WriteLine("error: no mailing-list archives (*.mbox) found. Pass --data <folder with the .mbox files, or a datasets root with mailing-list/> or set MLF_DATASETS=<datasets root>.");
            return 2;
        }

        spec = spec with
        {
            Cache = spec.Cache && !args.Contains("--no-cache"),
            Dataset = spec.Dataset with { SourceDirectories = [data] },
        };
        if (quick)
        {
            // Two trials, a grid over the L2 strength alone (the regularizer of a linear model on 134 rows),
            // fewer epochs, 5-fold CV kept: --quick must finish in under 2 minutes on 2 cores (measured 44.7 s).
            spec = spec with
            {
                Sweep = spec.Sweep with { Algorithm = "grid", MaxTrials = 2, ParallelTrials = 2, Epochs = 20, Parameters = [Core.Sweeps.ParameterSpec.Categorical("weightDecay", "0.001", "0.01")] },
                RetrainEpochs = 20,
            };
        }

        var problems = spec.Problems();
        if (problems.Count > 0)
        {
            Console.Error.WriteLine($"error: invalid pipeline spec {file}:\n  - " + string.Join("\n  - ", problems));
            return 2;
        }

        var exit = args.Contains("--exit");
        var hostArgs = args.Where((a, i) => a is not ("--exit" or "--no-cache" or "--quick" or "--data") && !(dataAt >= 0 && i == dataAt + 1)).ToArray();
        var clock = Stopwatch.StartNew();
        await using var app = LocalHost.Build(hostArgs);
        await app.StartAsync();
        Console.WriteLine($"MlFunctions local host on {Commands.BaseUrl(app)}; pipeline {spec.Name} from {file} over {data}{(quick ? " (quick)" : "")}");
        var (runId, run, exitCode) = await PipelineProgressPrinter.RunToEndAsync(app, spec);
        if (run is not { } result)
            return exitCode;

        var m = result.Metrics;
        string F(string name) => m.TryGetValue(name, out var v) ? v.ToString("F4", CultureInfo.InvariantCulture) : "n/a";
        Console.WriteLine();
        Console.WriteLine($"outcome: {result.Outcome}: {result.Reason}");
        Console.WriteLine("metrics: " + string.Join(", ", m.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:F4}"))));

        // A held-out (test split) message, as its raw RFC 5322 text from the archive, scored by the served model now.
        var key = app.Services.GetRequiredService<ApiKeys>().Key;
        var url = $"{Commands.BaseUrl(app)}/v2/models/{spec.RegisteredModel}/infer";
        var body = Path.Combine(app.Services.GetRequiredService<LocalPaths>().DataPath, $"{runId}-message.json");
        var served = "n/a";
        if (await HeldOutMessageAsync(app, result, data) is { } message)
        {
            var request = JsonSerializer.Serialize(new { inputs = new object[] { new { name = MailFields.Message, shape = new[] { 1 }, datatype = "BYTES", data = new[] { message } } } });
            await File.WriteAllTextAsync(body, request);
            if (result.ModelVersion is not null)
                served = await ScoreAsync(url, key, request);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT mailing-list auc={F("cv_auc")} auc_std={F("cv_auc_std")} baseline_auc={F("baseline_auc")} logreg_auc={F("logreg_auc")} logreg_auc_std={F("logreg_auc_std")} test_auc={F("auc")} model_version={result.ModelVersion?.ToString(CultureInfo.InvariantCulture) ?? "none"} p_answered={served} wall_s={clock.Elapsed.TotalSeconds:F1}"));
        Console.WriteLine($"curl -s -H 'x-functions-key: {key}' -H 'content-type: application/json' -d @{body} {url}");
        if (!exit)
        {
            Console.WriteLine("serving until Ctrl-C");
            await app.WaitForShutdownAsync();
        }

        return 0;
    }

    /// <summary>P(answered) of the request as the served model answers it (the "probabilities" output's "yes" column).</summary>
    private static async Task<string> ScoreAsync(string url, string key, string request)
    {
        using var http = new HttpClient();
        using var content = new StringContent(request, Encoding.UTF8, "application/json");
        using var message = new HttpRequestMessage(HttpMethod.Post, url) { Content = content };
        message.Headers.Add("x-functions-key", key);
        using var response = await http.SendAsync(message);
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();
        if (!response.IsSuccessStatusCode)
            return $"error({(int)response.StatusCode})";
        foreach (var output in json.GetProperty("outputs").EnumerateArray())
        {
            if (output.GetProperty("name").GetString() == "probabilities")
                return output.GetProperty("data")[1].GetDouble().ToString("F4", CultureInfo.InvariantCulture);
        }

        return "n/a";
    }

    /// <summary>
    /// The raw text of the first test-split thread start whose archived copy is plain ASCII (a JSON string carries it
    /// byte for byte), found in the archives by its subject and body; null when none is.
    /// </summary>
    private static async Task<string?> HeldOutMessageAsync(Microsoft.AspNetCore.Builder.WebApplication app, PipelineRunResult result, string folder)
    {
        if (result.Data is not { } data)
            return null;
        var reader = new PreparedDatasetReader(await app.Services.GetRequiredService<IStorageClients>().BlobsAsync());
        if (await reader.ReadRawRowsAsync(data, "test") is not { } test)
            return null;
        var subject = test.Columns.ToList().IndexOf(MailFields.Subject);
        var bodyColumn = test.Columns.ToList().IndexOf(MailFields.Body);
        if (subject < 0 || bodyColumn < 0)
            return null;
        var held = test.Rows.Select(r => (r[subject] ?? "", r[bodyColumn] ?? "")).ToHashSet();
        foreach (var path in Directory.GetFiles(folder, "*.mbox").Order(StringComparer.Ordinal))
        {
            var bytes = await File.ReadAllBytesAsync(path);
            var name = Path.GetFileName(path);
            foreach (var chunk in MboxReader.RawMessages(bytes))
            {
                if (chunk.Span.ContainsAnyExceptInRange((byte)0, (byte)127))
                    continue;
                var (message, _) = MailParser.Parse(name, 0, chunk);
                if (message is { IsThreadStart: true } && held.Contains((message.Subject, message.Body)))
                    return Encoding.ASCII.GetString(chunk.Span);
            }
        }

        return null;
    }

    /// <summary>--data (a folder of .mbox files, or a datasets root with mailing-list/), MLF_DATASETS/mailing-list, else the spec's folders.</summary>
    private static string? FindData(string? explicitDir, IEnumerable<string> specDirs)
    {
        IEnumerable<string> Candidates()
        {
            if (explicitDir is not null)
            {
                yield return Path.GetFullPath(explicitDir);
                yield return Path.GetFullPath(Path.Combine(explicitDir, "mailing-list"));
                yield break;
            }

            if (Environment.GetEnvironmentVariable("MLF_DATASETS") is { Length: > 0 } env)
                yield return Path.GetFullPath(Path.Combine(env, "mailing-list"));
            foreach (var d in specDirs)
                yield return d;
        }

        return Candidates().FirstOrDefault(d => Directory.Exists(d) && Directory.GetFiles(d, "*.mbox").Length > 0);
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
