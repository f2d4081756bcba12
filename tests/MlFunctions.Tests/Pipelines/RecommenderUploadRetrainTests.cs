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
/// #13's incremental data, as a user would: a stored recommender spec with <c>dataset.accumulate</c>, the first days of
/// Online Retail uploaded as one batch with its <c>_SUCCESS</c> marker, then a new day's file as the next batch. Each
/// marker retrains, the second on all the data so far; the same data run again comes from the step cache.
/// </summary>
public sealed class RecommenderUploadRetrainTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Key = "rec-upload-key";
    private readonly string uploads = "uploads-" + Guid.NewGuid().ToString("N")[..10];
    private readonly string data = Directory.CreateTempSubdirectory("mlf-rec-upload-").FullName;
    private WebApplication? app;

    public async Task InitializeAsync() => app = await WorkerHost.StartAsync(
        "recupload", Key, data, "--Pipelines:Triggers:UploadsContainer", uploads, "--Pipelines:Triggers:UploadPollSeconds", "0.5",
        "--Pipelines:Triggers:RecordsContainer", "trig-" + uploads[^10..], "--Pipelines:Triggers:FireSchedules", "false");

    public async Task DisposeAsync()
    {
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task ANewDaysUploadRetrainsOnAllTheDataSoFarAndTheCacheServesWhatDidNotChange()
    {
        var pipeline = "recinc-" + Guid.NewGuid().ToString("N")[..6];
        using var api = new ApiClient(Commands.BaseUrl(app!), Key);
        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { Kind = DatasetKinds.Interactions, SourceContainer = uploads, SourcePrefix = $"datasets/{pipeline}/seed", Accumulate = true },
            Interactions = new InteractionsRecipe { Columns = new InteractionColumns { Format = InteractionData.OnlineRetailFormat } },
            Model = "mf",
            Hyperparameters = new HyperParameters { Loss = TrainingObjectives.Bpr, EmbeddingSize = 16, Negatives = 4, WeightDecay = 1e-3, LearningRate = 0.01, BatchSize = 256 },
            Sweep = new PipelineSweep { Algorithm = "random", MaxTrials = 1, ParallelTrials = 1, Epochs = 2 },
            RetrainEpochs = 2,
            Metric = "hr@10",
        };
        Assert.Equal(HttpStatusCode.OK, (await api.Http.PutAsJsonAsync($"/api/pipelines/{pipeline}", spec, MlJson.Options)).StatusCode);

        var days = Directory.GetFiles(Path.Combine(RepoPaths.SharedDatasets, "recommender", "online-retail-by-day"), "*.csv").Order(StringComparer.Ordinal).Take(4).ToList();
        var container = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient(uploads);
        await container.CreateIfNotExistsAsync();
        async Task UploadBatchAsync(string batch, IEnumerable<string> files)
        {
            foreach (var file in files)
                await container.GetBlobClient($"datasets/{pipeline}/{batch}/{Path.GetFileName(file)}").UploadAsync(file, overwrite: true);
            await container.GetBlobClient($"datasets/{pipeline}/{batch}/_SUCCESS").UploadAsync(BinaryData.Empty, overwrite: true);
        }

        async Task<(string RunId, JsonObject Final)> RunOfMarkerAsync(int count)
        {
            var records = await Eventually.GetAsync(
                async () => (await api.Http.GetFromJsonAsync<JsonObject>($"/api/pipelines/{pipeline}/triggers"))!["triggers"]!.AsArray(),
                t => t.Count == count,
                TimeSpan.FromSeconds(60),
                $"trigger record {count}");
            var record = records.Select(r => r!.AsObject()).OrderByDescending(r => (DateTimeOffset)r["at"]!).First();
            Assert.True((string?)record["outcome"] == "started", record.ToJsonString());
            var runId = (string)record["runId"]!;
            var (_, final) = await api.WaitDoneAsync(runId, TimeSpan.FromMinutes(8));
            Assert.True((string?)final!["runtimeStatus"] == "Completed", final.ToJsonString());
            return (runId, final);
        }

        // Day 1: the first three days' files as one batch; day 2: the fourth day's file alone.
        await UploadBatchAsync("2010-12-03", days.Take(3));
        var (firstRun, first) = await RunOfMarkerAsync(1);
        await UploadBatchAsync("2010-12-05", days.Skip(3));
        var (secondRun, second) = await RunOfMarkerAsync(2);

        Assert.Equal([$"datasets/{pipeline}/2010-12-03", $"datasets/{pipeline}/2010-12-05"], second["input"]!["dataset"]!["sourcePrefixes"]!.AsArray().Select(p => (string)p!));
        var registered = await ManifestsAsync(pipeline);
        output.WriteLine(string.Join("; ", registered.Select(m => $"{m.Version}: {string.Join(",", m.Files.Select(f => f.Name))}")));
        Assert.Equal([3, 4], registered.Select(m => m.Files.Count).Order());
        var all = registered.Single(m => m.Files.Count == 4);
        Assert.Equal(days.Select(Path.GetFileName), all.Files.Select(f => f.Name));
        Assert.Equal("blob:" + uploads + $"/datasets/{pipeline}/2010-12-03;datasets/{pipeline}/2010-12-05", all.Source);

        // More data, more held-out users: the second run's training and test splits are the union's, not the new day's.
        var (firstTest, secondTest) = (await TestUsersAsync(first), await TestUsersAsync(second));
        output.WriteLine($"held-out users: {firstTest} after the first batch, {secondTest} after the second");
        Assert.True(secondTest > firstTest, $"{secondTest} held-out users on all the data vs {firstTest} on the first batch");

        // Every step that reads the data ran again for the new day (its dataset version changed) ...
        var secondSteps = await StepsAsync(api, secondRun);
        foreach (var step in new[] { "validate-dataset", "transform-dataset", "sweep", "retrain", "evaluate" })
            Assert.False(secondSteps[step].Cached, $"{step} of the second run came from the cache");

        // ... and the same data started again (a retry, a scheduled run) takes them from the cache of the second run.
        var again = await api.Http.PostAsJsonAsync($"/api/pipelines/{pipeline}/runs", second["input"]!.Deserialize<PipelineSpec>(MlJson.Options), MlJson.Options);
        var againId = (string)(await again.Content.ReadFromJsonAsync<JsonObject>())!["id"]!;
        var (_, third) = await api.WaitDoneAsync(againId, TimeSpan.FromMinutes(4));
        Assert.True((string?)third!["runtimeStatus"] == "Completed", third.ToJsonString());
        var thirdSteps = await StepsAsync(api, againId);
        foreach (var step in new[] { "validate-dataset", "transform-dataset", "sweep", "retrain", "evaluate" })
            Assert.True(thirdSteps[step].Cached && thirdSteps[step].CachedFromRunId == secondRun, $"{step}: cached {thirdSteps[step].Cached} from {thirdSteps[step].CachedFromRunId}");
        output.WriteLine($"runs {firstRun}, {secondRun}, {againId}");
    }

    private static async Task<Dictionary<string, StepRecord>> StepsAsync(ApiClient api, string runId)
    {
        var record = (await api.Http.GetFromJsonAsync<PipelineRunRecord>($"/api/pipelines/runs/{runId}", MlJson.Options))!;
        return record.Steps.GroupBy(s => s.Step).ToDictionary(g => g.Key, g => g.Last());
    }

    private async Task<List<DatasetManifest>> ManifestsAsync(string name)
    {
        var datasets = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient(DatasetLayout.Container);
        var manifests = new List<DatasetManifest>();
        await foreach (var item in datasets.GetBlobsAsync(new Azure.Storage.Blobs.Models.GetBlobsOptions { Prefix = name + "/" }))
        {
            if (item.Name.EndsWith("/" + DatasetLayout.ManifestFile, StringComparison.Ordinal))
                manifests.Add(JsonSerializer.Deserialize<DatasetManifest>((await datasets.GetBlobClient(item.Name).DownloadContentAsync()).Value.Content.ToString(), MlJson.Options)!);
        }

        return manifests;
    }

    private static async Task<int> TestUsersAsync(JsonObject final)
    {
        var result = final["output"]!.Deserialize<PipelineRunResult>(MlJson.Options)!;
        var reader = new Activities.Datasets.PreparedDatasetReader(new BlobServiceClient(await TestStorage.ConnectionStringAsync()));
        var manifest = await reader.ReadManifestAsync(result.Data!);
        return (await reader.ReadSplitAsync(result.Data!, manifest, "test")).Count;
    }
}
