using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Builder;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Training;
using MlFunctions.Local.Cli;
using MlFunctions.Tests.Infrastructure;
using MlFunctions.Tests.Pipelines;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Tracking;

/// <summary>
/// With the real worker: a small tabular pipeline's trials and retrain, and a bare TrainModel on the same prepared
/// data, are tracking runs with params, a metric per epoch, status and artifacts, found by pipeline run and compared.
/// </summary>
public sealed class TrackingEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Key = "tracking-e2e-key";
    private readonly string data = Directory.CreateTempSubdirectory("mlf-tracking-e2e-").FullName;
    private WebApplication? app;

    public async Task InitializeAsync() => app = await WorkerHost.StartAsync("tracking", Key, data);

    public async Task DisposeAsync()
    {
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task APipelinesTrialsAndRetrainAndABareTrainModelAreTrackedWithPerEpochMetrics()
    {
        var pipeline = "trk-" + Guid.NewGuid().ToString("N")[..6];
        var uploads = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient("uploads");
        await uploads.CreateIfNotExistsAsync();
        await uploads.GetBlobClient($"datasets/{pipeline}/b1/loans.csv").UploadAsync(BinaryData.FromString(TabularPipelineEndToEndTests.LoansCsv(300, 5)), overwrite: true);
        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { Kind = DatasetKinds.Tabular, SourceContainer = "uploads", SourcePrefix = $"datasets/{pipeline}/b1" },
            Columns = new() { Label = "approved", Ignore = ["applicant"] },
            Sweep = new PipelineSweep { Algorithm = "random", MaxTrials = 2, ParallelTrials = 2, Epochs = 2 },
            RetrainEpochs = 3,
        };

        using var api = new ApiClient(Commands.BaseUrl(app!), Key);
        var started = await api.Http.PostAsJsonAsync($"/api/pipelines/{pipeline}/runs", spec, MlJson.Options);
        var runId = (string)(await started.Content.ReadFromJsonAsync<JsonObject>())!["id"]!;
        var (_, final) = await api.WaitDoneAsync(runId, TimeSpan.FromMinutes(8));
        Assert.True((string?)final!["runtimeStatus"] == "Completed", final.ToJsonString());

        // The retrain: role, experiment, a metric per epoch, the ONNX it exported.
        var retrain = (await api.Http.GetFromJsonAsync<JsonObject>($"api/tracking/runs/{runId}-retrain"))!;
        output.WriteLine(retrain.ToJsonString());
        Assert.Equal(("retrain", "succeeded", pipeline), ((string?)retrain["role"], (string?)retrain["status"], (string?)retrain["experiment"]));
        Assert.Equal([1, 2, 3], retrain["metrics"]!.AsArray().Select(m => (int)m!["step"]!));
        Assert.NotNull((string?)retrain["artifacts"]!["onnx"]);
        Assert.Equal("true", (string?)retrain["params"]!["trainOnValidation"]);

        // The pipeline run's trials and retrain, ranked by validation accuracy, across the sweep and the retrain.
        var found = (await api.Http.GetFromJsonAsync<JsonObject>($"api/tracking/runs?pipelineRun={runId}&metric=val_accuracy&order=desc"))!;
        var rows = found["runs"]!.AsArray();
        Assert.Equal(3, rows.Count);
        Assert.Equal(2, rows.Count(r => (string?)r!["role"] == "trial" && (int?)r["epochs"] == 2));
        var values = rows.Select(r => (double)r!["value"]!).ToList();
        Assert.Equal(values.OrderDescending(), values);

        // A bare TrainModel on the same prepared data (named by the retrain's params) is tracked too.
        var p = retrain["params"]!;
        var job = new TrainingJob
        {
            JobId = $"{pipeline}-bare",
            Model = (string)p["model"]!,
            Hyperparameters = new HyperParameters { HiddenSizes = [16], Epochs = 2, LearningRate = 0.01 },
            Data = new PreparedDataRef((string)p["dataContainer"]!, (string)p["dataPrefix"]!, (string)p["dataHash"]!),
            ExportOnnx = false,
        };
        var (response, body) = await api.StartAsync("TrainModel", JsonSerializer.SerializeToElement(new TrainModelInput(job, 1, 120), MlJson.Options), job.JobId);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("Completed", (string?)(await api.WaitDoneAsync((string)body["id"]!, TimeSpan.FromMinutes(4))).Body!["runtimeStatus"]);
        var bare = (await api.Http.GetFromJsonAsync<JsonObject>($"api/tracking/runs/{job.JobId}/metrics/val_loss"))!;
        Assert.Equal([1, 2], bare["history"]!.AsArray().Select(m => (int)m!["step"]!));
        var compare = (await api.Http.GetFromJsonAsync<JsonObject>($"api/tracking/compare?runs={runId}-retrain,{job.JobId},{rows.First(r => (string?)r!["role"] == "trial")!["runId"]}"))!;
        output.WriteLine(compare.ToJsonString());
        Assert.Equal(["retrain", "train", "trial"], compare["runs"]!.AsArray().Select(r => (string)r!["role"]!));
        Assert.Contains("epochs", compare["differingParameters"]!.AsArray().Select(v => (string)v!));
    }
}
