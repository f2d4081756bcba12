using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Builder;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Local.Cli;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Pipelines;

/// <summary>
/// A tabular pipeline from a spec, tried as a new user would: a CSV the code has never seen is uploaded to blob
/// storage, a run is started over HTTP with a spec (columns, model family, sweep, metric), and the served model
/// answers a V2 request made of a row's raw named fields. Also the multi-class digits CSV (headerless, gzip) from
/// a folder, and every kind of bad spec and bad data, each with its reason, with the host healthy afterwards.
/// </summary>
public sealed class TabularPipelineEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Key = "tabular-e2e-key";
    private const long MaxBytes = 200_000;
    private readonly string data = Directory.CreateTempSubdirectory("mlf-tabular-e2e-").FullName;
    private WebApplication? app;

    public async Task InitializeAsync() => app = await WorkerHost.StartAsync("tabular", Key, data, "--Datasets:MaxBytes", MaxBytes.ToString(CultureInfo.InvariantCulture));

    public async Task DisposeAsync()
    {
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>
    /// Made-up loan decisions: approval depends on income, debt and employment (a logistic rule with noise), city
    /// is a distractor, some incomes are missing. Deterministic from the seed.
    /// </summary>
    public static string LoansCsv(int rows, int seed)
    {
        var rng = new Random(seed);
        var csv = new StringBuilder("applicant,income,debt,employed,city,approved\n");
        string[] cities = ["Lyon", "Porto", "Graz", "Turku"];
        for (var i = 0; i < rows; i++)
        {
            var income = 20 + (rng.NextDouble() * 100);
            var debt = rng.NextDouble() * 50;
            var employed = rng.NextDouble() < 0.7;
            var score = (0.08 * income) - (0.12 * debt) + (employed ? 1.5 : -1.5) - 3 + (rng.NextDouble() - 0.5);
            var approved = 1 / (1 + Math.Exp(-3 * score)) > rng.NextDouble();
            var incomeText = rng.NextDouble() < 0.05 ? "" : income.ToString("F1", CultureInfo.InvariantCulture);
            csv.Append(CultureInfo.InvariantCulture, $"a{i},{incomeText},{debt:F1},{(employed ? "yes" : "no")},{cities[rng.Next(cities.Length)]},{(approved ? "yes" : "no")}\n");
        }

        return csv.ToString();
    }

    [Fact]
    public async Task ABinaryCsvUploadedAsBlobsBecomesAServedModelThatReadsRawFields()
    {
        var pipeline = "loans-" + Guid.NewGuid().ToString("N")[..6];
        var prefix = await TestUploads.PutAsync($"datasets/{pipeline}/batch-1", ("loans.csv", LoansCsv(600, 7)));
        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { Kind = DatasetKinds.Tabular, SourceContainer = "uploads", SourcePrefix = prefix },
            Columns = new() { Label = "approved", Ignore = ["applicant"] },
            Sweep = new PipelineSweep { Algorithm = "random", MaxTrials = 2, ParallelTrials = 2, Epochs = 15 },
            RetrainEpochs = 25,
            Metric = "auc",
        };

        using var api = new ApiClient(Commands.BaseUrl(app!), Key);
        var started = await api.Http.PostAsJsonAsync($"/api/pipelines/{pipeline}/runs", spec, MlJson.Options);
        var startedBody = await started.Content.ReadFromJsonAsync<JsonObject>();
        Assert.True(started.StatusCode == HttpStatusCode.Accepted, startedBody?.ToJsonString());
        var result = await api.WaitPipelineResultAsync((string)startedBody!["id"]!, TimeSpan.FromMinutes(8));
        output.WriteLine(JsonSerializer.Serialize(result.Metrics));
        Assert.Equal(MnistPipelineOutcomes.Promoted, result.Outcome);
        Assert.Equal(1, result.ModelVersion);
        Assert.Equal("auc", result.Metric);
        Assert.True(result.Value > 0.8, $"test auc {result.Value}");
        Assert.Equal(result.Smoke!.TrueLabel, result.Smoke.Predicted);

        // Metadata shows the raw columns as inputs, and the decoded outputs.
        var metadata = await api.Http.GetFromJsonAsync<JsonObject>($"/v2/models/{pipeline}");
        var inputs = metadata!["inputs"]!.AsArray().Select(i => ((string)i!["name"]!, (string)i["datatype"]!)).ToList();
        Assert.Equal([("income", "FP32"), ("debt", "FP32"), ("employed", "BYTES"), ("city", "BYTES")], inputs);

        // Two raw rows, clear-cut either way; one with a missing income and a city never seen in training.
        var infer = await api.Http.PostAsJsonAsync($"/v2/models/{pipeline}/infer", new
        {
            inputs = new object[]
            {
                new { name = "income", shape = new[] { 2 }, datatype = "BYTES", data = new[] { "110.0", "" } },
                new { name = "debt", shape = new[] { 2 }, datatype = "FP32", data = new[] { 2.0, 48.0 } },
                new { name = "employed", shape = new[] { 2 }, datatype = "BYTES", data = new[] { "yes", "no" } },
                new { name = "city", shape = new[] { 2 }, datatype = "BYTES", data = new[] { "Lyon", "Atlantis" } },
            },
        });
        var text = await infer.Content.ReadAsStringAsync();
        output.WriteLine(text);
        Assert.True(infer.IsSuccessStatusCode, text);
        var outputs = JsonNode.Parse(text)!["outputs"]!.AsArray();
        var labels = outputs.Single(o => (string?)o!["name"] == "label")!["data"]!.AsArray().Select(v => (string)v!).ToArray();
        Assert.Equal(["yes", "no"], labels);
        var probabilities = outputs.Single(o => (string?)o!["name"] == "probabilities")!["data"]!.AsArray().Select(v => (double)v!).ToArray();
        Assert.Equal(1.0, probabilities[0] + probabilities[1], 4);

        // A request a client would get wrong: a missing column and a non-number in a numeric one, each named.
        var bad = await api.Http.PostAsJsonAsync($"/v2/models/{pipeline}/infer", new
        {
            inputs = new object[]
            {
                new { name = "income", shape = new[] { 1 }, datatype = "BYTES", data = new[] { "lots" } },
                new { name = "debt", shape = new[] { 1 }, datatype = "FP32", data = new[] { 2.0 } },
                new { name = "employed", shape = new[] { 1 }, datatype = "BYTES", data = new[] { "yes" } },
            },
        });
        var badError = (string)(await bad.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("missing input(s) 'city'", badError);

        // The run is listed under its pipeline.
        var runs = await api.Http.GetFromJsonAsync<JsonObject>($"/api/pipelines/runs?pipeline={pipeline}");
        Assert.Contains(runs!["runs"]!.AsArray(), r => (string?)r!["runId"] == result.RunId && (string?)r["state"] == "Completed");
    }

    [Fact]
    public async Task TheMultiClassDigitsCsvTrainsFromAStoredSpec()
    {
        var pipeline = "digits-" + Guid.NewGuid().ToString("N")[..6];
        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { SourceDirectories = [Path.Combine(RepoPaths.SharedDatasets, "digits")], Include = ["digits.csv.gz"] },
            Columns = new() { Label = "c64", HasHeader = false },
            Sweep = new PipelineSweep { Algorithm = "random", MaxTrials = 2, ParallelTrials = 2, Epochs = 10 },
            RetrainEpochs = 20,
        };

        using var api = new ApiClient(Commands.BaseUrl(app!), Key);
        var put = await api.Http.PutAsJsonAsync($"/api/pipelines/{pipeline}", spec, MlJson.Options);
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var started = await api.Http.PostAsync($"/api/pipelines/{pipeline}/runs", null);
        var body = await started.Content.ReadFromJsonAsync<JsonObject>();
        Assert.True(started.StatusCode == HttpStatusCode.Accepted, body?.ToJsonString());
        var result = await api.WaitPipelineResultAsync((string)body!["id"]!, TimeSpan.FromMinutes(8));
        output.WriteLine(JsonSerializer.Serialize(result.Metrics));
        Assert.Equal(MnistPipelineOutcomes.Promoted, result.Outcome);
        Assert.True(result.Value > 0.85, $"test accuracy {result.Value}");
        Assert.Equal(10, ((JsonArray)(await api.Http.GetFromJsonAsync<JsonObject>($"/v2/models/{pipeline}"))!["outputs"]![2]!["shape"]!)[1]!.GetValue<int>());
    }

    [Fact]
    public async Task BadSpecsAreRefusedWithEveryProblemAndBadDataFailsItsStepWithTheReason()
    {
        using var api = new ApiClient(Commands.BaseUrl(app!), Key);

        // One spec, several problems: all of them in one 400.
        var invalid = await api.Http.PostAsJsonAsync("/api/pipelines/bad-spec/runs", new { dataset = new { kind = "audio" }, metric = "r2", sweep = new { maxTrials = 0 } });
        var problems = await invalid.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        var list = problems!["problems"]!.AsArray().Select(p => (string)p!).ToList();
        output.WriteLine(string.Join("\n", list));
        Assert.Contains(list, p => p.Contains("dataset.kind"));
        Assert.Contains(list, p => p.Contains("metric must be"));
        Assert.Contains(list, p => p.Contains("sweep.maxTrials"));
        Assert.Contains(list, p => p.Contains("sourceDirectories"));
        Assert.Equal(HttpStatusCode.BadRequest, (await api.Http.PostAsync("/api/pipelines/Not%20Valid/runs", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await api.Http.PostAsync("/api/pipelines/never-stored/runs", null)).StatusCode);

        var good = LoansCsv(60, 3);
        var cases = new (string Name, string File, string Csv, string Label, string Expected)[]
        {
            ("unknown-column", "a.csv", good, "approval", "unknown column 'approval'"),
            ("one-class", "a.csv", "x,y\n1,yes\n2,yes\n3,yes\n4,yes\n5,yes\n6,yes\n7,yes\n8,yes\n9,yes\n10,yes\n", "y", "a single class"),
            ("empty", "a.csv", "", "approved", "empty"),
            ("header-only", "a.csv", "income,approved\n", "approved", "no data rows"),
            ("ragged", "a.csv", good.Replace("\na5,", "\na5,1,"), "approved", "Found 7 column(s) on row 6/lines [7..8]"),
            ("over-limit", "a.csv", LoansCsv(12000, 1), "approved", "size limit"),
        };
        var runs = new List<(string Case, string Expected, string Id)>();
        foreach (var c in cases)
        {
            var pipeline = $"bad-{c.Name}-" + Guid.NewGuid().ToString("N")[..4];
            var prefix = await TestUploads.PutAsync($"datasets/{pipeline}/b1", (c.File, c.Csv));
            var spec = new PipelineSpec
            {
                Dataset = new PipelineDataset { SourceContainer = "uploads", SourcePrefix = prefix },
                Columns = new() { Label = c.Label },
                Sweep = new PipelineSweep { MaxTrials = 1, Epochs = 1 },
                RetrainEpochs = 1,
            };
            var response = await api.Http.PostAsJsonAsync($"/api/pipelines/{pipeline}/runs", spec, MlJson.Options);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            runs.Add((c.Name, c.Expected, (string)(await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!));
        }

        // A numeric column declared as such, with text in it.
        var declared = "bad-numeric-" + Guid.NewGuid().ToString("N")[..4];
        var declaredPrefix = await TestUploads.PutAsync($"datasets/{declared}/b1", ("a.csv", System.Text.RegularExpressions.Regex.Replace(good, "\na4,[^,]*,", "\na4,plenty,")));
        var declaredSpec = new PipelineSpec
        {
            Dataset = new PipelineDataset { SourceContainer = "uploads", SourcePrefix = declaredPrefix },
            Columns = new() { Label = "approved", Numeric = ["income", "debt"] },
            Sweep = new PipelineSweep { MaxTrials = 1, Epochs = 1 },
            RetrainEpochs = 1,
        };
        var declaredResponse = await api.Http.PostAsJsonAsync($"/api/pipelines/{declared}/runs", declaredSpec, MlJson.Options);
        runs.Add(("non-numeric", "numeric column 'income' has 'plenty'", (string)(await declaredResponse.Content.ReadFromJsonAsync<JsonObject>())!["id"]!));

        foreach (var (name, expected, id) in runs)
        {
            var (_, final) = await api.WaitDoneAsync(id, TimeSpan.FromMinutes(3));
            var failure = final!["output"]?.ToString() ?? "";
            output.WriteLine($"{name}: {final["runtimeStatus"]}: {failure}");
            Assert.Equal("Failed", (string?)final["runtimeStatus"]);
            Assert.Contains(expected, failure);
        }

        // Nothing was lost and the host is healthy: the refused uploads are still there, health answers.
        var uploads = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient("uploads");
        Assert.True((await uploads.GetBlobClient($"{declaredPrefix}/a.csv").ExistsAsync()).Value);
        Assert.Equal(HttpStatusCode.OK, (await api.Http.GetAsync("/api/health")).StatusCode);
    }
}
