using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using MlFunctions.Activities.Storage;
using MlFunctions.Activities.Tracking;
using MlFunctions.Core.Json;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Tracking;

/// <summary>
/// The blob tracking store's run summaries against Azurite: what one listing of the experiment markers gives must
/// equal the summary of every run read whole, for ended, running, moved, legacy (marker without a summary) and
/// oversized runs. Experiments are unique per test, so tests share the container.
/// </summary>
public sealed class BlobTrackingStoreTests(ITestOutputHelper output)
{
    private static readonly IStorageClients Storage = new ConnectionStringStorageClients(_ => TestStorage.ConnectionStringAsync());
    private static readonly DateTime T0 = new(2026, 3, 1, 8, 0, 0, DateTimeKind.Utc);

    private static TrackingRun Run(string experiment, string id, TrialState status, int epochs, double objective) => new()
    {
        RunId = id,
        Experiment = experiment,
        Status = status,
        Role = RunRole.Trial,
        Params = new ParameterSet { ["model"] = "tabular-mlp", ["lr"] = "0.003", ["hidden"] = "64", ["batchSize"] = "32", ["dataHash"] = new string('a', 64) },
        Metrics = Enumerable.Range(1, epochs).Select(e => new MetricStep(e, new Dictionary<string, double> { ["val_auc"] = objective - (0.01 * (epochs - e)), ["train_loss"] = 1.0 / e })).ToList(),
        FinalMetrics = status == TrialState.Running ? new Dictionary<string, double>() : new Dictionary<string, double> { ["val_auc"] = objective, ["train_loss"] = 1.0 / epochs },
        Tags = new Dictionary<string, string> { ["sweep"] = experiment, ["role"] = "trial", ["jobId"] = id + "-job" },
        Artifacts = status == TrialState.Running ? new Dictionary<string, string>() : new Dictionary<string, string> { ["onnx"] = $"http://127.0.0.1/models/{id}/model.onnx" },
        Objective = status == TrialState.Running ? null : objective,
        StartTime = T0,
        EndTime = status == TrialState.Running ? null : T0.AddMinutes(3),
    };

    private static string Json(RunSummary s) => System.Text.Json.JsonSerializer.Serialize(s, MlJson.Options);

    private static async Task AssertSummariesMatchWholeRunsAsync(BlobTrackingStore store, string? experiment, IReadOnlyCollection<string> ids)
    {
        var whole = (await store.ListRunsAsync(experiment)).Where(r => ids.Contains(r.RunId)).Select(RunSummary.Of).OrderBy(r => r.RunId, StringComparer.Ordinal).Select(Json).ToList();
        var listed = (await store.ListRunSummariesAsync(experiment)).Where(r => ids.Contains(r.RunId)).OrderBy(r => r.RunId, StringComparer.Ordinal).Select(Json).ToList();
        Assert.Equal(ids.Count, whole.Count);
        Assert.Equal(whole, listed);
    }

    [Fact]
    public async Task Summaries_from_one_listing_equal_the_runs_read_whole()
    {
        var store = new BlobTrackingStore(Storage);
        var experiment = "summ-" + Guid.NewGuid().ToString("N")[..8];
        var ended = Run(experiment, experiment + "-t0", TrialState.Succeeded, 5, 0.91);
        var stopped = Run(experiment, experiment + "-t1", TrialState.EarlyStopped, 2, 0.70);
        var running = Run(experiment, experiment + "-t2", TrialState.Running, 0, 0);
        var failed = Run(experiment, experiment + "-t3", TrialState.Failed, 0, 0) with { Error = "worker exited with 137", Objective = null, FinalMetrics = new Dictionary<string, double>() };
        foreach (var run in new[] { ended, stopped, running, failed })
            await store.SaveRunAsync(run);

        // The running run's latest step is in its step blobs only; the list must rank by it.
        await store.SaveStepAsync(running.RunId, new MetricStep(1, new Dictionary<string, double> { ["val_auc"] = 0.61 }));
        await store.SaveStepAsync(running.RunId, new MetricStep(2, new Dictionary<string, double> { ["val_auc"] = 0.66 }));

        // The sweep's write after TrainModel's: the summary follows the latest revision.
        await store.SaveRunAsync(ended with { Metrics = [], FinalMetrics = new Dictionary<string, double>(), Objective = 0.915, Tags = new Dictionary<string, string> { ["rank"] = "1" } });

        var ids = new[] { ended.RunId, stopped.RunId, running.RunId, failed.RunId };
        await AssertSummariesMatchWholeRunsAsync(store, experiment, ids);
        await AssertSummariesMatchWholeRunsAsync(store, null, ids);

        var summaries = (await store.ListRunSummariesAsync(experiment)).ToDictionary(s => s.RunId);
        Assert.Equal(0.915, summaries[ended.RunId].Objective);
        Assert.Equal("1", summaries[ended.RunId].Tags["rank"]);
        Assert.Equal(5, summaries[ended.RunId].LastStep);
        Assert.Equal(0.66, summaries[running.RunId].FinalMetrics["val_auc"]);
        Assert.Equal(2, summaries[running.RunId].LastStep);
        Assert.Equal("worker exited with 137", summaries[failed.RunId].Error);

        var container = (await Storage.BlobsAsync()).GetBlobContainerClient(BlobTrackingStore.ContainerName);
        await foreach (var marker in container.GetBlobsAsync(new GetBlobsOptions { Prefix = $"experiments/{experiment}/", Traits = BlobTraits.Metadata }))
        {
            output.WriteLine($"{marker.Name}: metadata {marker.Metadata.Sum(kv => kv.Key.Length + kv.Value.Length)} chars, revision {marker.Metadata["revision"]}");
            Assert.True(marker.Metadata.ContainsKey("summary"), marker.Name);
        }
    }

    [Fact]
    public async Task A_run_moved_to_another_experiment_is_listed_only_there()
    {
        var store = new BlobTrackingStore(Storage);
        var first = "move-" + Guid.NewGuid().ToString("N")[..8];
        var second = first + "-b";
        var run = Run(first, first + "-r", TrialState.Succeeded, 3, 0.8);
        await store.SaveRunAsync(run);
        await store.SaveRunAsync(run with { Experiment = second });

        Assert.Empty(await store.ListRunSummariesAsync(first));
        Assert.Equal([run.RunId], (await store.ListRunSummariesAsync(second)).Select(s => s.RunId));
        Assert.Single(await store.ListRunSummariesAsync(null), s => s.RunId == run.RunId);
    }

    [Fact]
    public async Task Markers_without_a_summary_and_runs_too_large_for_metadata_are_read_whole()
    {
        var store = new BlobTrackingStore(Storage);
        var experiment = "fall-" + Guid.NewGuid().ToString("N")[..8];
        var container = (await Storage.BlobsAsync()).GetBlobContainerClient(BlobTrackingStore.ContainerName);
        await container.CreateIfNotExistsAsync();

        // Written before summaries: a run blob and an empty marker without metadata.
        var old = Run(experiment, experiment + "-old", TrialState.Succeeded, 4, 0.77);
        await container.GetBlobClient($"runs/{old.RunId}/run.json").UploadAsync(BinaryData.FromObjectAsJson(old, MlJson.Options), overwrite: true);
        await container.GetBlobClient($"experiments/{experiment}/{old.RunId}").UploadAsync(BinaryData.Empty, overwrite: true);

        // 12 KB of incompressible text in the error: gzip + base64 would not fit under the 8 KiB metadata cap.
        var random = new Random(3);
        var noise = new string(Enumerable.Range(0, 12_000).Select(_ => (char)random.Next(33, 127)).ToArray());
        var big = Run(experiment, experiment + "-big", TrialState.Failed, 1, 0) with { Error = noise, Objective = null };
        await store.SaveRunAsync(big);
        var bigMarker = await container.GetBlobClient($"experiments/{experiment}/{big.RunId}").GetPropertiesAsync();
        Assert.False(bigMarker.Value.Metadata.ContainsKey("summary"));

        await AssertSummariesMatchWholeRunsAsync(store, experiment, [old.RunId, big.RunId]);
        Assert.Equal(noise, (await store.ListRunSummariesAsync(experiment)).Single(s => s.RunId == big.RunId).Error);
    }
}
