using System.Text.Json;
using Azure.Storage.Queues;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;
using MlFunctions.GpuWorker;
using MlFunctions.GpuWorker.Queue;
using MlFunctions.Tests.Infrastructure;

namespace MlFunctions.Training.Tests;

/// <summary>The queue consumer (in-process, through TrainingWorkerHost.RunAsync) with messages that cannot succeed.</summary>
public sealed class PoisonTests
{
    [Fact]
    public async Task BadMessagesEndInThePoisonQueueWithAReasonAndAFailedEventWithoutStoppingTheWorker()
    {
        using var callbacks = new CallbackReceiver();
        var suffix = "poison" + Guid.NewGuid().ToString("N")[..6];
        var settings = await WorkerConfig.SettingsAsync(
            suffix,
            ("Worker:MaxDequeueCount", "2"),
            ("Worker:RetryDelaySeconds", "1"),
            ("Worker:VisibilityTimeoutSeconds", "5"));
        var connection = await TestStorage.ConnectionStringAsync();
        var queue = new QueueClient(connection, settings["Worker:JobsQueue"], new QueueClientOptions { MessageEncoding = QueueMessageEncoding.Base64 });
        var poison = new QueueClient(connection, settings["Worker:PoisonQueue"], new QueueClientOptions { MessageEncoding = QueueMessageEncoding.Base64 });
        await queue.CreateIfNotExistsAsync();

        using var cts = new CancellationTokenSource();
        var worker = TrainingWorkerHost.RunAsync(WorkerConfig.Build(settings), cts.Token);

        // 1. Not JSON at all: nobody to tell, but it must not loop forever or crash the worker.
        await queue.SendMessageAsync("this is {not json");

        // 2. JSON of the wrong shape that still names its job and callback: poisoned and reported.
        await queue.SendMessageAsync(JsonSerializer.Serialize(new { jobId = "bad-shape", model = "mlp", callbackUri = callbacks.CallbackFor("p2"), hyperparameters = "oops", data = new { container = "x", prefix = "y", contentHash = "z" } }));

        // 3. A valid job whose data does not exist: fails on every attempt, poisoned after MaxDequeueCount (2) dequeues.
        var missingData = Jobs.Mnist("mlp", new PreparedDataRef("prepared", "does-not-exist", "h"), callbacks.CallbackFor("p3"), new HyperParameters { Epochs = 1 });
        await queue.SendMessageAsync(JsonSerializer.Serialize(missingData, MlJson.Options));

        // 4. A model the zoo does not have: can never succeed, poisoned on the first dequeue.
        var unknownModel = Jobs.Mnist("resnet9000", new PreparedDataRef("prepared", "x", "h"), callbacks.CallbackFor("p4"), new HyperParameters());
        await queue.SendMessageAsync(JsonSerializer.Serialize(unknownModel, MlJson.Options));

        var poisoned = await Eventually.GetAsync(
            async () =>
            {
                if (worker.IsCompleted)
                    await worker; // surfaces a crash
                return (await poison.PeekMessagesAsync(32)).Value.Select(m => JsonSerializer.Deserialize<PoisonMessage>(m.Body.ToString(), MlJson.Options)!).ToList();
            },
            list => list.Count >= 4,
            TimeSpan.FromSeconds(90),
            "4 poison messages");

        var notJson = Assert.Single(poisoned, p => p.Message == "this is {not json");
        Assert.Contains("malformed training job message", notJson.Reason);

        var badShape = Assert.Single(poisoned, p => p.JobId == "bad-shape");
        Assert.Contains("malformed training job message", badShape.Reason);
        var badShapeEvent = await callbacks.WaitForAsync("bad-shape", TrainingEvents.Failed);
        Assert.Equal(badShape.Reason, badShapeEvent.Error);

        var missing = Assert.Single(poisoned, p => p.JobId == missingData.JobId);
        Assert.Equal(2, missing.DequeueCount);
        Assert.Contains("prepared/does-not-exist/manifest.json does not exist", missing.Reason);
        var missingEvent = await callbacks.WaitForAsync(missingData.JobId, TrainingEvents.Failed);
        Assert.Contains("does not exist; run TransformDataset first", missingEvent.Error);
        Assert.Single(callbacks.For(missingData.JobId, TrainingEvents.Failed));

        var unknown = Assert.Single(poisoned, p => p.JobId == unknownModel.JobId);
        Assert.Equal(1, unknown.DequeueCount);
        Assert.Contains("Unknown model 'resnet9000'", unknown.Reason);
        Assert.Contains("Unknown model", (await callbacks.WaitForAsync(unknownModel.JobId, TrainingEvents.Failed)).Error);

        // All consumed, and the worker is still running.
        await Eventually.GetAsync(async () => (await queue.PeekMessagesAsync(1)).Value.Length, n => n == 0, TimeSpan.FromSeconds(20), "jobs queue drained");
        Assert.False(worker.IsCompleted);
        await cts.CancelAsync();
        await worker;
    }
}
