using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Local.Cli;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Pipelines;

/// <summary>
/// Tabular regression from a spec, as a new user would run it: a made-up CSV with a numeric label is uploaded, a run
/// is started over HTTP with <c>"task": "regression"</c>, it sweeps on val_rmse, gates on test rmse (lower is better)
/// and serves a model whose V2 answer to a row's raw named fields is a number in the label's units. Bad regression
/// specs get a 400 with every problem; a non-numeric label fails the validation step with the offending cells.
/// </summary>
public sealed class RegressionPipelineEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Key = "regression-e2e-key";
    private readonly string data = Directory.CreateTempSubdirectory("mlf-regression-e2e-").FullName;
    private WebApplication? app;

    public async Task InitializeAsync() => app = await WorkerHost.StartAsync("regression", Key, data);

    public async Task DisposeAsync()
    {
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    private static readonly Dictionary<string, double> Effect = new(StringComparer.Ordinal) { ["red"] = 0, ["green"] = 15, ["blue"] = -10 };

    /// <summary>The noise-free function the CSV is drawn from: y = 100 + 30·x1 − 20·x2 + effect(color).</summary>
    private static double Truth(double x1, double x2, string color) => 100 + (30 * x1) - (20 * x2) + Effect[color];

    /// <summary>x1, x2 ~ U(0, 4), a color with its own offset, Gaussian noise σ 2; std(y) ≈ 42. Deterministic from the seed.</summary>
    public static string MeasurementsCsv(int rows, int seed)
    {
        var rng = new Random(seed);
        var csv = new StringBuilder("id,x1,x2,color,y\n");
        string[] colors = ["red", "green", "blue"];
        for (var i = 0; i < rows; i++)
        {
            var x1 = rng.NextDouble() * 4;
            var x2 = rng.NextDouble() * 4;
            var color = colors[rng.Next(colors.Length)];
            var noise = 2 * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            csv.Append(CultureInfo.InvariantCulture, $"m{i},{x1:F3},{x2:F3},{color},{Truth(x1, x2, color) + noise:F3}\n");
        }

        return csv.ToString();
    }

    [Fact]
    public async Task ANumericLabelTrainsSweepsGatesOnRmseAndServesPredictionsInLabelUnits()
    {
        var pipeline = "measure-" + Guid.NewGuid().ToString("N")[..6];
        var csv = MeasurementsCsv(400, 11);
        var prefix = await TestUploads.PutAsync($"datasets/{pipeline}/batch-1", ("m.csv", csv));
        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { Kind = DatasetKinds.Tabular, SourceContainer = "uploads", SourcePrefix = prefix },
            Columns = new() { Label = "y", Ignore = ["id"] },
            Task = "regression",
            Hyperparameters = new() { LrSchedule = "cosine", BatchSize = 32 },
            Sweep = new PipelineSweep { Algorithm = "random", MaxTrials = 2, ParallelTrials = 2, Epochs = 15 },
            RetrainEpochs = 30,
        };

        using var api = new ApiClient(Commands.BaseUrl(app!), Key);
        var started = await api.Http.PostAsJsonAsync($"/api/pipelines/{pipeline}/runs", spec, MlJson.Options);
        var startedBody = await started.Content.ReadFromJsonAsync<JsonObject>();
        Assert.True(started.StatusCode == HttpStatusCode.Accepted, startedBody?.ToJsonString());
        var result = await api.WaitPipelineResultAsync((string)startedBody!["id"]!, TimeSpan.FromMinutes(8));
        output.WriteLine(JsonSerializer.Serialize(result.Metrics));

        // The baseline a regressor must beat: predicting the mean, whose RMSE is the label's standard deviation.
        var ys = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => double.Parse(l.Split(',')[4], CultureInfo.InvariantCulture)).ToArray();
        var baseline = Math.Sqrt(ys.Sum(y => (y - ys.Average()) * (y - ys.Average())) / ys.Length);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT regression test rmse {result.Value:F3} (mean predictor {baseline:F3}), mae {result.Metrics["mae"]:F3}, r2 {result.Metrics["r2"]:F4}, sweep best val_rmse {result.Sweep?.Best?.Objective:F3}"));
        Assert.Equal(MnistPipelineOutcomes.Promoted, result.Outcome);
        Assert.Equal("rmse", result.Metric);
        Assert.True(result.Value < 0.25 * baseline, $"test rmse {result.Value} vs the mean predictor's {baseline}");
        Assert.True(result.Metrics["r2"] > 0.9, $"test r2 {result.Metrics["r2"]}");

        // The sweep minimized val_rmse in label units: the best trial is the lowest, and above the noise (σ 2), unlike an R².
        var scored = result.Sweep!.Trials.Where(t => t.Objective is not null).Select(t => t.Objective!.Value).ToList();
        Assert.Equal(scored.Min(), result.Sweep.Best!.Objective!.Value);
        Assert.True(result.Sweep.Best.Objective > 1, $"best val_rmse {result.Sweep.Best.Objective}");
        Assert.NotNull(result.Smoke!.Prediction);
        Assert.True(Math.Abs(result.Smoke.Prediction!.Value - result.Smoke.Target!.Value) < baseline, $"smoke {result.Smoke.Prediction} vs {result.Smoke.Target}");

        // Metadata: the raw columns in, the model's output and the prediction in label units out.
        var metadata = await api.Http.GetFromJsonAsync<JsonObject>($"/v2/models/{pipeline}");
        var inputs = metadata!["inputs"]!.AsArray().Select(i => ((string)i!["name"]!, (string)i["datatype"]!)).ToList();
        Assert.Equal([("x1", "FP32"), ("x2", "FP32"), ("color", "BYTES")], inputs);
        Assert.Contains(metadata["outputs"]!.AsArray(), o => (string?)o!["name"] == "prediction");

        // Three raw rows inside the training range, each answered within a tolerance of the true function.
        var rows = new (double X1, double X2, string Color)[] { (1.0, 3.0, "red"), (3.5, 0.5, "green"), (2.0, 2.0, "blue") };
        var infer = await api.Http.PostAsJsonAsync($"/v2/models/{pipeline}/infer", new
        {
            inputs = new object[]
            {
                new { name = "x1", shape = new[] { 3 }, datatype = "FP32", data = rows.Select(r => r.X1).ToArray() },
                new { name = "x2", shape = new[] { 3 }, datatype = "BYTES", data = rows.Select(r => r.X2.ToString(CultureInfo.InvariantCulture)).ToArray() },
                new { name = "color", shape = new[] { 3 }, datatype = "BYTES", data = rows.Select(r => r.Color).ToArray() },
            },
            outputs = new[] { new { name = "prediction" } },
        });
        var text = await infer.Content.ReadAsStringAsync();
        output.WriteLine(text);
        Assert.True(infer.IsSuccessStatusCode, text);
        var prediction = JsonNode.Parse(text)!["outputs"]!.AsArray().Single(o => (string?)o!["name"] == "prediction")!;
        Assert.Equal("FP32", (string?)prediction["datatype"]);
        var values = prediction["data"]!.AsArray().Select(v => (double)v!).ToArray();
        for (var i = 0; i < rows.Length; i++)
        {
            var truth = Truth(rows[i].X1, rows[i].X2, rows[i].Color);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT row {i}: predicted {values[i]:F2}, true {truth:F2}"));

            // 0.3 of the mean predictor's error: far from the mean (y spans 20..220), near the function.
            Assert.True(Math.Abs(values[i] - truth) < 0.3 * baseline, $"row {i}: predicted {values[i]}, true {truth}");
        }
    }

    [Fact]
    public async Task BadRegressionSpecsGet400AndANonNumericLabelFailsValidationWithTheCells()
    {
        using var api = new ApiClient(Commands.BaseUrl(app!), Key);
        var invalid = await api.Http.PostAsJsonAsync("/api/pipelines/bad-regression/runs", new
        {
            dataset = new { kind = "text", sourceDirectories = new[] { "/nowhere" } },
            columns = new { label = "y", text = new[] { "body" } },
            task = "regression",
            metric = "accuracy",
            crossValidationFolds = 5,
        });
        var problems = await invalid.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        var list = problems!["problems"]!.AsArray().Select(p => (string)p!).ToList();
        output.WriteLine(string.Join("\n", list));
        Assert.Contains(list, p => p.Contains("task regression is for dataset.kind \"tabular\""));
        Assert.Contains(list, p => p.Contains("metric must be one of rmse, mae, r2, loss"));
        Assert.Contains(list, p => p.Contains("crossValidationFolds"));

        var typo = await api.Http.PostAsJsonAsync("/api/pipelines/bad-task/runs", new { dataset = new { sourceDirectories = new[] { "/nowhere" } }, columns = new { label = "y" }, task = "regresion" });
        Assert.Equal(HttpStatusCode.BadRequest, typo.StatusCode);
        Assert.Contains("task must be classification or regression", await typo.Content.ReadAsStringAsync());

        // A label of words, asked for as a number: the validate step fails and names the cells.
        var pipeline = "bad-label-" + Guid.NewGuid().ToString("N")[..4];
        var words = MeasurementsCsv(40, 2).Split('\n');
        words[3] = string.Join(',', words[3].Split(',')[..4]) + ",high";
        var prefix = await TestUploads.PutAsync($"datasets/{pipeline}/b1", ("m.csv", string.Join('\n', words)));
        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { SourceContainer = "uploads", SourcePrefix = prefix },
            Columns = new() { Label = "y" },
            Task = "regression",
            Sweep = new PipelineSweep { MaxTrials = 1, Epochs = 1 },
            RetrainEpochs = 1,
        };
        var response = await api.Http.PostAsJsonAsync($"/api/pipelines/{pipeline}/runs", spec, MlJson.Options);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var (_, final) = await api.WaitDoneAsync((string)(await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!, TimeSpan.FromMinutes(3));
        var failure = final!["output"]?.ToString() ?? "";
        output.WriteLine(failure);
        Assert.Equal("Failed", (string?)final["runtimeStatus"]);
        Assert.Contains("label column 'y' is not numeric: 'high' at", failure);
        Assert.Contains("line 4", failure);
        Assert.Equal(HttpStatusCode.OK, (await api.Http.GetAsync("/api/health")).StatusCode);
    }
}
