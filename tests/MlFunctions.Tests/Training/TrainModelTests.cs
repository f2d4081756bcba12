using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;
using MlFunctions.Tests.Http;
using MlFunctions.Tests.Infrastructure;
using Xunit;

namespace MlFunctions.Tests.Training;

/// <summary>
/// The TrainModel sub-orchestration on the local host, with a scripted worker: it takes the real queue
/// message and reports back through the message's callback URI (the Durable HTTP API's
/// sendEventPostUri), exactly the contract the training worker uses.
/// </summary>
[Collection(nameof(LocalHostCollection))]
public sealed class TrainModelTests(LocalHostFixture host)
{
    [Fact]
    public async Task ProgressThenCompletionReturnsTheWorkersResult()
    {
        using var api = host.Client();
        var jobId = NewJobId();
        var id = await StartAsync(api, jobId, maxAttempts: 2, heartbeatSeconds: 60);

        var job = await TakeJobAsync(jobId);
        Assert.Equal(1, job.Attempt);
        Assert.Contains($"/runtime/webhooks/durabletask/instances/{id}/raiseEvent/{{eventName}}", job.CallbackUri);
        await SendAsync(job, new TrainingEvent { JobId = jobId, Kind = TrainingEvents.Progress, Metrics = Metrics(1) });
        await SendAsync(job, new TrainingEvent { JobId = jobId, Kind = TrainingEvents.Completed, Result = Result(jobId, 2) });

        var (status, body) = await api.WaitDoneAsync(id);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Completed", (string?)body!["runtimeStatus"]);
        Assert.Equal(jobId, (string?)body["output"]!["jobId"]);
        Assert.Equal(2, body["output"]!["history"]!.AsArray().Count);
        Assert.Equal("cpu", (string?)body["output"]!["device"]);
    }

    [Fact]
    public async Task AStaleHeartbeatRedispatchesAndTheNextAttemptFinishes()
    {
        using var api = host.Client();
        var jobId = NewJobId();
        var id = await StartAsync(api, jobId, maxAttempts: 3, heartbeatSeconds: 5);

        var first = await TakeJobAsync(jobId);
        Assert.Equal(1, first.Attempt);

        // Attempt 1's worker "dies" silently; after the heartbeat timeout the job is dispatched again.
        var second = await TakeJobAsync(jobId);
        Assert.Equal(2, second.Attempt);
        await SendAsync(second, new TrainingEvent { JobId = jobId, Kind = TrainingEvents.Completed, Attempt = 2, Result = Result(jobId, 1) });

        var (_, body) = await api.WaitDoneAsync(id);
        Assert.Equal("Completed", (string?)body!["runtimeStatus"]);
        Assert.Equal(2, (int)body["customStatus"]!["attempt"]!);
    }

    [Fact]
    public async Task FailuresAreRetriedUpToTheBoundAndTheLastReasonIsSurfaced()
    {
        using var api = host.Client();
        var jobId = NewJobId();
        var id = await StartAsync(api, jobId, maxAttempts: 2, heartbeatSeconds: 60);

        var first = await TakeJobAsync(jobId);
        await SendAsync(first, new TrainingEvent { JobId = jobId, Kind = TrainingEvents.Failed, Attempt = 1, Error = "dataset shard 2 sha256 mismatch" });
        var second = await TakeJobAsync(jobId);
        Assert.Equal(2, second.Attempt);
        await SendAsync(second, new TrainingEvent { JobId = jobId, Kind = TrainingEvents.Failed, Attempt = 2, Error = "CUDA out of memory" });

        var (_, body) = await api.WaitDoneAsync(id);
        Assert.Equal("Failed", (string?)body!["runtimeStatus"]);
        Assert.Contains("failed after 2 attempt(s); last failure: attempt 2: CUDA out of memory", (string?)body["output"]);
    }

    [Fact]
    public async Task AStopRequestWritesTheStopMarkerAndAStoppedResultEndsTheJobEarly()
    {
        using var api = host.Client();
        var jobId = NewJobId();
        var id = await StartAsync(api, jobId, maxAttempts: 1, heartbeatSeconds: 60);
        var job = await TakeJobAsync(jobId);

        var stop = await api.Http.PostAsJsonAsync(
            $"/runtime/webhooks/durabletask/instances/{id}/raiseEvent/{TrainingEvents.EventName}",
            new TrainingEvent { JobId = jobId, Kind = TrainingEvents.StopRequested },
            MlJson.Options);
        Assert.Equal(HttpStatusCode.Accepted, stop.StatusCode);

        var blobs = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient(TrainingStorage.CheckpointsContainer);
        await Eventually.GetAsync(
            async () => (await blobs.GetBlobClient(TrainingStorage.StopBlob(jobId)).ExistsAsync()).Value,
            exists => exists,
            TimeSpan.FromMinutes(1),
            "stop marker");

        await SendAsync(job, new TrainingEvent { JobId = jobId, Kind = TrainingEvents.Stopped, Result = Result(jobId, 1) });
        var (_, body) = await api.WaitDoneAsync(id);
        Assert.Equal("Completed", (string?)body!["runtimeStatus"]);
        Assert.True((bool)body["output"]!["stoppedEarly"]!);
    }

    [Fact]
    public async Task AnInvalidJobFailsBeforeAnythingIsDispatched()
    {
        using var api = host.Client();
        var jobId = NewJobId();
        var input = new TrainModelInput(KubernetesDispatchTests.Job() with { JobId = jobId, Hyperparameters = new HyperParameters { Epochs = 0, LearningRate = -1 } });

        // Through HTTP the starter refuses it with every problem listed, and nothing is scheduled.
        var (response, refused) = await api.StartAsync("TrainModel", JsonSerializer.SerializeToElement(input, MlJson.Options), jobId);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("epochs must be between 1 and 1000, got 0", (string?)refused["error"]);
        Assert.Contains("learningRate must be positive", (string?)refused["error"]);
        Assert.Equal(HttpStatusCode.NotFound, (await api.StatusAsync(jobId)).Status);

        // Started by other means (a client, a parent orchestration), the orchestration fails before dispatching.
        var client = host.App.Services.GetRequiredService<MlFunctions.Local.Engine.EngineService>().Client;
        var id = await client.ScheduleNewOrchestrationInstanceAsync(MlFunctions.Core.OrchestrationNames.TrainModel, input);
        var (_, body) = await api.WaitDoneAsync(id);
        Assert.Equal("Failed", (string?)body!["runtimeStatus"]);
        Assert.Contains("epochs must be between 1 and 1000, got 0", (string?)body["output"]);
        Assert.Contains("learningRate must be positive", (string?)body["output"]);
    }

    private static string NewJobId() => "job-" + Guid.NewGuid().ToString("N")[..12];

    private static async Task<string> StartAsync(ApiClient api, string jobId, int maxAttempts, int heartbeatSeconds)
    {
        var input = new TrainModelInput(KubernetesDispatchTests.Job() with { JobId = jobId }, maxAttempts, heartbeatSeconds);
        var (response, body) = await api.StartAsync("TrainModel", JsonSerializer.SerializeToElement(input, MlJson.Options));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return (string)body["id"]!;
    }

    /// <summary>
    /// Receives this test's job from the shared training-jobs queue. Other tests' messages are left
    /// alone: they reappear after a one-second visibility timeout.
    /// </summary>
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
        var uri = job.CallbackUri!.Replace("{eventName}", TrainingEvents.EventName);
        var response = await http.PostAsJsonAsync(uri, evt, MlJson.Options);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
    }

    private static EpochMetrics Metrics(int epoch) => new(epoch, 0.5 / epoch, 0.4 / epoch, 0.9 + (0.01 * epoch), 1000, 1);

    private static TrainingResult Result(string jobId, int epochs) => new()
    {
        JobId = jobId,
        Model = "mlp",
        Device = "cpu",
        History = Enumerable.Range(1, epochs).Select(Metrics).ToList(),
    };
}
