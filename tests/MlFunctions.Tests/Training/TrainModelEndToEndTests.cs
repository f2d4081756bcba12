using System.Net;
using System.Text.Json;
using Azure.Storage.Blobs;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using MlFunctions.Core.Registry;
using MlFunctions.Activities.Datasets;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;
using MlFunctions.Local.Cli;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Training;

/// <summary>
/// The whole training path on the local host: TrainModel enqueues the job, the embedded worker process
/// (the real TorchSharp worker) trains on a prepared MNIST slice, checkpoints, exports ONNX and reports
/// through the instance's sendEventPostUri, and the orchestration returns the worker's result.
/// </summary>
public sealed class TrainModelEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Key = "e2e-key";
    private readonly string data = Directory.CreateTempSubdirectory("mlf-e2e-").FullName;
    private WebApplication? app;

    public async Task InitializeAsync() => app = await WorkerHost.StartAsync("e2e", Key, data);

    public async Task DisposeAsync()
    {
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task TrainModelRunsOnTheEmbeddedWorkerAndReturnsMetricsCheckpointAndOnnx()
    {
        var prepared = await PrepareSliceAsync();
        var job = new TrainingJob
        {
            JobId = "e2e-" + Guid.NewGuid().ToString("N")[..10],
            Model = "mlp",
            Hyperparameters = new HyperParameters { HiddenSizes = [128], Epochs = 2, BatchSize = 64, LearningRate = 2e-3, Seed = 7 },
            Data = prepared,
        };

        using var api = new ApiClient(Commands.BaseUrl(app!), Key);
        var (response, body) = await api.StartAsync("TrainModel", JsonSerializer.SerializeToElement(new TrainModelInput(job, 2, 120), MlJson.Options));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var (status, final) = await api.WaitDoneAsync((string)body["id"]!, TimeSpan.FromMinutes(5));
        output.WriteLine(final?.ToJsonString() ?? "(none)");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Completed", (string?)final!["runtimeStatus"]);
        var result = final["output"]!.Deserialize<TrainingResult>(MlJson.Options)!;
        Assert.Equal(job.JobId, result.JobId);
        Assert.Equal("cpu", result.Device);
        Assert.Equal([1, 2], result.History.Select(h => h.Epoch));
        Assert.True(result.History[^1].ValAccuracy > 0.8, $"val accuracy {result.History[^1].ValAccuracy}");
        Assert.NotNull(result.CheckpointUri);
        Assert.NotNull(result.OnnxUri);
        Assert.Matches("^[0-9a-f]{64}$", result.OnnxSha256);
        Assert.True(result.Parity!.ArgmaxIdentical && result.Parity.MaxAbsLogitDiff <= 1e-4, $"parity {result.Parity}");
        Assert.Equal(TransformSpec.Mnist().Mean, result.Transform!.Mean);

        await ServeAndPredictAsync(api, result);
    }

    /// <summary>
    /// Registers the trained ONNX as a model version, points "champion" at it over HTTP, and classifies
    /// unseen MNIST test images (raw 0-255 pixels; the server applies the stored transform) through V2.
    /// </summary>
    private async Task ServeAndPredictAsync(ApiClient api, TrainingResult result)
    {
        var model = "mnist-e2e-" + Guid.NewGuid().ToString("N")[..6];
        var registry = app!.Services.GetRequiredService<IModelRegistry>();
        var version = await registry.RegisterVersionAsync(model, new ModelVersionDraft
        {
            ArtifactUri = result.OnnxUri!,
            Sha256 = result.OnnxSha256!,
            Signature = new ModelSignature(
                [new TensorSignature("input", "FP32", [-1, 1, 28, 28])],
                [new TensorSignature("logits", "FP32", [-1, 10])]),
            Transform = result.Transform,
            Metrics = new Dictionary<string, double> { ["valAccuracy"] = result.History[^1].ValAccuracy },
        });
        var alias = await api.Http.PutAsJsonAsync($"/api/registry/models/{model}/aliases/champion", new { version = version.Version });
        Assert.True(alias.IsSuccessStatusCode, $"alias PUT answered {(int)alias.StatusCode}: {await alias.Content.ReadAsStringAsync()}");

        // 200 test images the model never saw (it validated on the first 300), in one request of 200 instances.
        const int count = 200;
        PreparedShard unseen;
        using (var reader = IdxLabeledReader.OpenMnist(Path.Combine(RepoPaths.SharedDatasets, "mnist"), "t10k"))
        {
            reader.Skip(300);
            unseen = reader.ReadShard(count);
        }

        var pixels = unseen.Features.Select(b => (float)b).ToArray();
        var response = await api.Http.PostAsJsonAsync($"/v2/models/{model}/infer", new
        {
            inputs = new[] { new { name = "input", shape = new[] { count, 1, 28, 28 }, datatype = "FP32", data = pixels } },
        });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"infer answered {(int)response.StatusCode}: {text}");
        var output0 = JsonNode.Parse(text)!["outputs"]![0]!;
        Assert.Equal([count, 10], output0["shape"]!.AsArray().Select(v => (int)v!));
        var logits = output0["data"]!.AsArray().Select(v => (double)v!).ToArray();
        var correct = Enumerable.Range(0, count).Count(i =>
        {
            var row = logits.AsSpan(i * 10, 10).ToArray();
            return Array.IndexOf(row, row.Max()) == unseen.Labels[i];
        });

        // The served model must classify unseen images about as well as it validated during training.
        var accuracy = (double)correct / count;
        var validated = result.History[^1].ValAccuracy;
        output.WriteLine($"served {model} v{version.Version}: {correct}/{count} unseen test images right ({accuracy:P1}; validated {validated:P1})");
        Assert.True(accuracy >= validated - 0.1, $"served accuracy {accuracy:P1} is far below the validation accuracy {validated:P1}");

        var metrics = await api.Http.GetStringAsync("/metrics");
        Assert.Contains("mlf_inference", metrics);
    }

    /// <summary>1,000 training and 300 validation images, prepared exactly as the transform step writes them.</summary>
    private static async Task<PreparedDataRef> PrepareSliceAsync()
    {
        var datasets = RepoPaths.SharedDatasets;
        PreparedShard train, val;
        using (var reader = IdxLabeledReader.OpenMnist(Path.Combine(datasets, "mnist-train"), "train"))
        {
            train = reader.ReadShard(1000);
        }

        using (var reader = IdxLabeledReader.OpenMnist(Path.Combine(datasets, "mnist"), "t10k"))
        {
            val = reader.ReadShard(300);
        }

        var container = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient(PreparedLayout.Container);
        await container.CreateIfNotExistsAsync();
        var prefix = "e2e-" + Guid.NewGuid().ToString("N")[..8];
        var (manifest, _) = await PreparedDatasetWriter.WriteAsync(
            container,
            prefix,
            new DatasetRef("mnist-slice", prefix, prefix),
            new PreparationRecipe(),
            "slice",
            TransformSpec.Mnist(),
            10,
            new Dictionary<string, PreparedShard> { [PreparedLayout.Train] = train, [PreparedLayout.Val] = val },
            CancellationToken.None);
        return new PreparedDataRef(PreparedLayout.Container, prefix, manifest.ContentHash);
    }
}
