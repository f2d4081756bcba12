using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Builder;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Training;
using MlFunctions.Local.Cli;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Pipelines;

/// <summary>
/// #13 on the general TrainingPipeline: Online Retail day files uploaded as blobs, a spec with
/// <c>dataset.kind: interactions</c> started over HTTP, a matrix-factorization model trained, scored through serving
/// beside the baselines, registered, and served for a raw customer id. A broken upload fails its step with the reason.
/// </summary>
public sealed class RecommenderPipelineEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Key = "recommender-e2e-key";
    private readonly string data = Directory.CreateTempSubdirectory("mlf-rec-e2e-").FullName;
    private WebApplication? app;

    public async Task InitializeAsync() => app = await WorkerHost.StartAsync("recommender", Key, data);

    public async Task DisposeAsync()
    {
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task RetailDaysBecomeAServedRecommenderReportedBesideTheBaselines()
    {
        var pipeline = "rec-" + Guid.NewGuid().ToString("N")[..6];
        var days = Directory.GetFiles(Path.Combine(RepoPaths.SharedDatasets, "recommender", "online-retail-by-day"), "*.csv").Order(StringComparer.Ordinal).Take(6).ToList();
        var prefix = $"datasets/{pipeline}/batch-1";
        var uploads = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient("uploads");
        await uploads.CreateIfNotExistsAsync();
        foreach (var day in days)
            await uploads.GetBlobClient($"{prefix}/{Path.GetFileName(day)}").UploadAsync(day, overwrite: true);

        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { Kind = DatasetKinds.Interactions, SourceContainer = "uploads", SourcePrefix = prefix },
            Interactions = new InteractionsRecipe { Columns = new InteractionColumns { Format = InteractionData.OnlineRetailFormat } },
            Model = "mf",
            Hyperparameters = new HyperParameters { Loss = TrainingObjectives.Bpr, EmbeddingSize = 32, Negatives = 8, WeightDecay = 1e-3, LearningRate = 0.01, BatchSize = 128, LrSchedule = "cosine" },
            Sweep = new PipelineSweep { Algorithm = "random", MaxTrials = 1, ParallelTrials = 1, Epochs = 4 },
            RetrainEpochs = 6,
            Metric = "hr@10",
        };

        using var api = new ApiClient(Commands.BaseUrl(app!), Key);
        var started = await api.Http.PostAsJsonAsync($"/api/pipelines/{pipeline}/runs", spec, MlJson.Options);
        var startedBody = await started.Content.ReadFromJsonAsync<JsonObject>();
        Assert.True(started.StatusCode == HttpStatusCode.Accepted, startedBody?.ToJsonString());
        var (status, final) = await api.WaitDoneAsync((string)startedBody!["id"]!, TimeSpan.FromMinutes(8));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True((string?)final!["runtimeStatus"] == "Completed", final.ToJsonString());
        var result = final["output"]!.Deserialize<PipelineRunResult>(MlJson.Options)!;
        output.WriteLine(JsonSerializer.Serialize(result.Metrics));
        Assert.Equal(MnistPipelineOutcomes.Promoted, result.Outcome);
        Assert.Equal("hr@10", result.Metric);
        Assert.Equal(result.Metrics["hr@10"], result.Value);
        foreach (var baseline in new[] { "pop_hr@10", "knn_hr@10", "als_hr@10", "ndcg@10" })
            Assert.True(result.Metrics.ContainsKey(baseline), baseline);
        Assert.True(result.Value > result.Metrics["pop_hr@10"], $"model {result.Value} vs popularity {result.Metrics["pop_hr@10"]}");

        // The served model answers a raw customer id with 10 item ids, not the internal pairs.
        var infer = await api.Http.PostAsJsonAsync($"/v2/models/{pipeline}/infer", new
        {
            inputs = new object[] { new { name = "user", shape = new[] { 1 }, datatype = "BYTES", data = new[] { "17850" } } },
        });
        var text = await infer.Content.ReadAsStringAsync();
        output.WriteLine(text);
        Assert.True(infer.IsSuccessStatusCode, text);
        var outputs = JsonNode.Parse(text)!["outputs"]!.AsArray();
        Assert.Equal(10, outputs.Single(o => (string?)o!["name"] == "items")!["data"]!.AsArray().Count);
        Assert.False((bool)outputs.Single(o => (string?)o!["name"] == "fallback")!["data"]![0]!);
    }

    [Fact]
    public async Task ABrokenInteractionsFileFailsValidationWithTheReasonAndIsKept()
    {
        var pipeline = "recbad-" + Guid.NewGuid().ToString("N")[..6];
        var prefix = $"datasets/{pipeline}/b1";
        var uploads = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient("uploads");
        await uploads.CreateIfNotExistsAsync();
        await uploads.GetBlobClient($"{prefix}/events.csv").UploadAsync(BinaryData.FromString("user,item,weight,time\nu1,a,1,100\nu1,b,1,200\nu2,a,x,300\n"), overwrite: true);
        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { Kind = DatasetKinds.Interactions, SourceContainer = "uploads", SourcePrefix = prefix },
            Model = "mf",
            Metric = "hr@10",
        };

        using var api = new ApiClient(Commands.BaseUrl(app!), Key);
        var started = await api.Http.PostAsJsonAsync($"/api/pipelines/{pipeline}/runs", spec, MlJson.Options);
        var id = (string)(await started.Content.ReadFromJsonAsync<JsonObject>())!["id"]!;
        var (_, final) = await api.WaitDoneAsync(id, TimeSpan.FromMinutes(3));
        var failure = final!["output"]?.ToString() ?? "";
        output.WriteLine(failure);
        Assert.Equal("Failed", (string?)final["runtimeStatus"]);
        Assert.Contains("events.csv line 4", failure);
        Assert.True((await uploads.GetBlobClient($"{prefix}/events.csv").ExistsAsync()).Value);
        Assert.Equal(HttpStatusCode.OK, (await api.Http.GetAsync("/api/health")).StatusCode);
    }
}
