using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Queues;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;
using MlFunctions.Tests.Http;
using MlFunctions.Tests.Infrastructure;
using MlFunctions.Tests.Training;
using Xunit;

namespace MlFunctions.Tests.Tracking;

/// <summary>
/// Tracking on the local host with a scripted worker (as in <see cref="TrainModelTests"/>): a bare TrainModel
/// and a pipeline-labelled retrain are tracked runs whose per-epoch metrics are readable over HTTP while they
/// run, end with status and artifacts, and can be searched and compared.
/// </summary>
[Collection(nameof(LocalHostCollection))]
public sealed class TrackingApiTests(LocalHostFixture host)
{
    [Fact]
    public async Task ABareTrainModelAndARetrainAreTrackedLiveEpochByEpochAndCompared()
    {
        using var api = host.Client();
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var pipeline = "trk-" + suffix;
        var train = await StartAsync(api, KubernetesDispatchTests.Job() with { JobId = "bare-" + suffix });
        var retrain = await StartAsync(api, KubernetesDispatchTests.Job() with
        {
            JobId = $"{pipeline}-run-retrain",
            Hyperparameters = new HyperParameters { LearningRate = 0.01, Epochs = 3 },
            Labels = new Dictionary<string, string> { ["pipelineRun"] = $"{pipeline}-run", ["pipeline"] = pipeline },
        });
        var trainJob = await TakeJobAsync("bare-" + suffix);
        var retrainJob = await TakeJobAsync($"{pipeline}-run-retrain");

        // Live: each epoch is readable as soon as its progress event has arrived.
        await SendAsync(trainJob, new TrainingEvent { JobId = trainJob.JobId, Kind = TrainingEvents.Progress, Metrics = Metrics(1) });
        var live = await WaitRunAsync(api, train, r => r["metrics"]?.AsArray().Count == 1);
        Assert.Equal("running", (string?)live["status"]);
        Assert.Equal("train", (string?)live["role"]);
        Assert.Equal("Default", (string?)live["experiment"]);
        Assert.Equal("mlp", (string?)live["params"]!["model"]);
        Assert.Equal("abc", (string?)live["params"]!["dataHash"]);
        Assert.Equal(0.91, (double)live["finalMetrics"]!["val_accuracy"]!, 9);

        await SendAsync(trainJob, new TrainingEvent { JobId = trainJob.JobId, Kind = TrainingEvents.Progress, Metrics = Metrics(2) });
        var history = await Eventually.GetAsync(
            () => api.Http.GetFromJsonAsync<JsonObject>($"api/tracking/runs/{train}/metrics/val_accuracy"),
            h => h!["history"]!.AsArray().Count == 2,
            TimeSpan.FromMinutes(1),
            "two epochs of val_accuracy");
        Assert.Equal([1, 2], history!["history"]!.AsArray().Select(s => (int)s!["step"]!));

        foreach (var epoch in new[] { 1, 2, 3 })
            await SendAsync(retrainJob, new TrainingEvent { JobId = retrainJob.JobId, Kind = TrainingEvents.Progress, Metrics = Metrics(epoch) with { ValAccuracy = 0.95 + (0.001 * epoch) } });
        await WaitRunAsync(api, retrain, r => r["metrics"]?.AsArray().Count == 3);

        // The end: status, final metrics, artifacts.
        await SendAsync(trainJob, new TrainingEvent { JobId = trainJob.JobId, Kind = TrainingEvents.Completed, Result = Result(trainJob.JobId, 2) });
        await SendAsync(retrainJob, new TrainingEvent
        {
            JobId = retrainJob.JobId,
            Kind = TrainingEvents.Completed,
            Result = Result(retrainJob.JobId, 3) with { History = Enumerable.Range(1, 3).Select(e => Metrics(e) with { ValAccuracy = 0.95 + (0.001 * e) }).ToList(), OnnxUri = "http://blob/models/x.onnx" },
        });
        Assert.Equal("Completed", (string?)(await api.WaitDoneAsync(train)).Body!["runtimeStatus"]);
        Assert.Equal("Completed", (string?)(await api.WaitDoneAsync(retrain)).Body!["runtimeStatus"]);
        var done = await WaitRunAsync(api, retrain, r => (string?)r["status"] == "succeeded");
        Assert.Equal("retrain", (string?)done["role"]);
        Assert.Equal(pipeline, (string?)done["experiment"]);
        Assert.Equal("http://blob/models/x.onnx", (string?)done["artifacts"]!["onnx"]);
        Assert.Equal("http://blob/ckpt", (string?)done["artifacts"]!["checkpoint"]);
        Assert.Equal(0.953, (double)done["finalMetrics"]!["val_accuracy"]!, 9);

        // Search and compare.
        var found = await api.Http.GetFromJsonAsync<JsonObject>($"api/tracking/runs?pipeline={pipeline}&metric=val_accuracy&order=desc");
        Assert.Equal(retrain, (string?)Assert.Single(found!["runs"]!.AsArray())!["runId"]);
        var compare = await api.Http.GetFromJsonAsync<JsonObject>($"api/tracking/compare?runs={train},{retrain}");
        Assert.Equal(["0.001", "0.01"], compare!["parameters"]!["learningRate"]!.AsArray().Select(v => (string)v!));
        Assert.Equal(0.953, (double)compare["metrics"]!["val_accuracy"]![1]!, 9);
        var experiments = await api.Http.GetFromJsonAsync<JsonObject>("api/tracking/experiments");
        Assert.Contains(pipeline, experiments!["experiments"]!.AsArray().Select(e => (string)e!));

        // Bad queries and unknown runs.
        var bad = await api.Http.GetAsync("api/tracking/runs?order=sideways&role=chef");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal(3, (await bad.Content.ReadFromJsonAsync<JsonObject>())!["problems"]!.AsArray().Count);
        Assert.Equal(HttpStatusCode.NotFound, (await api.Http.GetAsync("api/tracking/runs/no-such-run")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await api.Http.GetAsync($"api/tracking/compare?runs={train},no-such-run")).StatusCode);
    }

    private static async Task<JsonObject> WaitRunAsync(ApiClient api, string id, Func<JsonObject, bool> done) =>
        (await Eventually.GetAsync(
            async () =>
            {
                var response = await api.Http.GetAsync($"api/tracking/runs/{id}");
                return response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JsonObject>() : null;
            },
            r => r is not null && done(r),
            TimeSpan.FromMinutes(1),
            $"tracking run {id}"))!;

    private static async Task<string> StartAsync(ApiClient api, TrainingJob job)
    {
        var (response, body) = await api.StartAsync("TrainModel", JsonSerializer.SerializeToElement(new TrainModelInput(job, 1, 120), MlJson.Options), job.JobId);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return (string)body["id"]!;
    }

    private static async Task<TrainingJob> TakeJobAsync(string jobId)
    {
        var queue = new QueueClient(await TestStorage.ConnectionStringAsync(), TrainingStorage.JobsQueue, new QueueClientOptions { MessageEncoding = QueueMessageEncoding.Base64 });
        await queue.CreateIfNotExistsAsync();
        return await Eventually.GetAsync(
            async () =>
            {
                foreach (var message in (await queue.ReceiveMessagesAsync(32, TimeSpan.FromSeconds(1))).Value)
                {
                    var job = JsonSerializer.Deserialize<TrainingJob>(message.Body.ToString(), MlJson.Options);
                    if (job?.JobId == jobId)
                    {
                        await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt);
                        return job;
                    }
                }

                return null;
            },
            job => job is not null,
            TimeSpan.FromMinutes(2),
            $"queue message for {jobId}") ?? throw new InvalidOperationException();
    }

    private static async Task SendAsync(TrainingJob job, TrainingEvent evt)
    {
        using var http = new HttpClient();
        var response = await http.PostAsJsonAsync(job.CallbackUri!.Replace("{eventName}", TrainingEvents.EventName), evt, MlJson.Options);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
    }

    private static EpochMetrics Metrics(int epoch) => new(epoch, 0.5 / epoch, 0.4 / epoch, 0.9 + (0.01 * epoch), 1000, 1);

    private static TrainingResult Result(string jobId, int epochs) => new()
    {
        JobId = jobId,
        Model = "mlp",
        Device = "cpu",
        History = Enumerable.Range(1, epochs).Select(Metrics).ToList(),
        CheckpointUri = "http://blob/ckpt",
    };
}
