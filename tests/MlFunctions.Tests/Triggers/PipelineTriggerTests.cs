using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MlFunctions.Activities;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Api.Pipelines;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Pipelines;
using MlFunctions.Local.Triggers;
using MlFunctions.Tests.Infrastructure;
using Xunit;

namespace MlFunctions.Tests.Triggers;

/// <summary>
/// The pipeline triggers on Azurite (listing, hashing, markers) with a fake Durable client for the starts.
/// Each test uses its own uploads container, so the local hosts of other test classes (whose watchers poll
/// the default <c>uploads</c> container of the same Azurite) never see these batches.
/// </summary>
public sealed class PipelineTriggerTests : IAsyncLifetime
{
    private static readonly string[] MnistFiles = ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"];

    private readonly string container = "uploads-" + Guid.NewGuid().ToString("N")[..12];
    private readonly FakeDurableClient durable = new();
    private BlobServiceClient blobs = null!;
    private string connection = string.Empty;

    public async Task InitializeAsync()
    {
        connection = await TestStorage.ConnectionStringAsync();
        blobs = new BlobServiceClient(connection);
        await blobs.GetBlobContainerClient(container).CreateIfNotExistsAsync();
    }

    public Task DisposeAsync() => blobs.GetBlobContainerClient(container).DeleteIfExistsAsync();

    [Fact]
    public async Task SameContentUploadedUnderTwoBatchNamesStartsOneRun()
    {
        var triggers = Triggers();
        await UploadBatchAsync("2024-06-01", Content());
        await UploadBatchAsync("again", Content());

        var first = await triggers.StartForUploadAsync(durable.Client, blobs, container, PipelineTriggers.BatchPrefix("2024-06-01"));
        var second = await triggers.StartForUploadAsync(durable.Client, blobs, container, PipelineTriggers.BatchPrefix("again"));

        Assert.Equal(TriggerOutcome.Started, first.Outcome);
        Assert.Equal(TriggerOutcome.Duplicate, second.Outcome);
        Assert.Equal(first.InstanceId, second.InstanceId);
        var start = Assert.Single(durable.Starts);
        Assert.Equal(OrchestrationNames.TrainingPipeline, start.Name);

        // The id is the dataset content hash RegisterDataset computes: names sorted, per-file sha256, marker excluded.
        var expected = DatasetLayout.ContentHash(Content().Select(f => new DatasetFile(f.Key, f.Value.Length, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f.Value)))));
        Assert.Equal(expected, first.ContentHash);
        Assert.Equal("mnist-" + expected[..16], first.InstanceId);

        // The built-in MNIST spec, reading every file of the batch (no include patterns: the run registers what was hashed).
        var input = Assert.IsType<PipelineSpec>(start.Input);
        Assert.Empty(input.Problems());
        Assert.Equal(BuiltInPipelines.Mnist.Sweep.Parameters!.Count, input.Sweep.Parameters!.Count);
        Assert.Equal("blob", input.Trigger);
        Assert.Equal("mnist", input.DatasetName);
        Assert.Equal(container, input.Dataset.SourceContainer);
        Assert.Equal("datasets/mnist/2024-06-01", input.Dataset.SourcePrefix);
        Assert.Empty(input.Dataset.SourceDirectories);
        Assert.Empty(input.Dataset.Include);
    }

    [Fact]
    public async Task OneChangedByteStartsAnotherRun()
    {
        var triggers = Triggers();
        var changed = Content();
        changed["train-labels-idx1-ubyte"][^1] ^= 1;
        await UploadBatchAsync("a", Content());
        await UploadBatchAsync("b", changed);

        var a = await triggers.StartForUploadAsync(durable.Client, blobs, container, PipelineTriggers.BatchPrefix("a"));
        var b = await triggers.StartForUploadAsync(durable.Client, blobs, container, PipelineTriggers.BatchPrefix("b"));

        Assert.Equal(TriggerOutcome.Started, a.Outcome);
        Assert.Equal(TriggerOutcome.Started, b.Outcome);
        Assert.NotEqual(a.InstanceId, b.InstanceId);
        Assert.Equal(2, durable.Starts.Count);
    }

    [Fact]
    public async Task BatchWithoutSuccessMarkerStartsNothing()
    {
        await UploadBatchAsync("partial", Content(), marker: false);

        var result = await Triggers().StartForUploadAsync(durable.Client, blobs, container, PipelineTriggers.BatchPrefix("partial"));
        var polled = await Watcher().PollOnceAsync(durable.Client, blobs, default);

        Assert.Equal(TriggerOutcome.Skipped, result.Outcome);
        Assert.Contains("_SUCCESS", result.Reason);
        Assert.Empty(polled);
        Assert.Empty(durable.Starts);
    }

    [Fact]
    public async Task FailedOrTerminatedRunIsRestartedButACompletedOneIsNot()
    {
        var triggers = Triggers();
        await UploadBatchAsync("b1", Content());
        var first = await triggers.StartForUploadAsync(durable.Client, blobs, container, PipelineTriggers.BatchPrefix("b1"));

        durable.Statuses[first.InstanceId!] = OrchestrationRuntimeStatus.Completed;
        Assert.Equal(TriggerOutcome.Duplicate, (await triggers.StartForUploadAsync(durable.Client, blobs, container, PipelineTriggers.BatchPrefix("b1"))).Outcome);

        durable.Statuses[first.InstanceId!] = OrchestrationRuntimeStatus.Failed;
        var retried = await triggers.StartForUploadAsync(durable.Client, blobs, container, PipelineTriggers.BatchPrefix("b1"));
        Assert.Equal(TriggerOutcome.Restarted, retried.Outcome);
        Assert.Equal(first.InstanceId, retried.InstanceId);

        durable.Statuses[first.InstanceId!] = OrchestrationRuntimeStatus.Terminated;
        Assert.Equal(TriggerOutcome.Restarted, (await triggers.StartForUploadAsync(durable.Client, blobs, container, PipelineTriggers.BatchPrefix("b1"))).Outcome);
        Assert.Equal(3, durable.Starts.Count);
    }

    [Fact]
    public async Task UnusableBatchesAreRejectedWithAReasonAndStartNothing()
    {
        await UploadBatchAsync("empty", new Dictionary<string, byte[]>());
        await UploadBatchAsync("odd", new Dictionary<string, byte[]> { ["notes.txt"] = [1, 2, 3] });
        await UploadBatchAsync("nested", new Dictionary<string, byte[]> { ["sub/train-images-idx3-ubyte"] = [1] });

        var triggers = Triggers();
        foreach (var (batch, expected) in new[] { ("empty", "no data files"), ("odd", "cannot tell the dataset format"), ("nested", "subfolders") })
        {
            var result = await triggers.StartForUploadAsync(durable.Client, blobs, container, PipelineTriggers.BatchPrefix(batch));
            Assert.Equal(TriggerOutcome.Rejected, result.Outcome);
            Assert.Contains(expected, result.Reason);
        }

        // The watcher marks them handled and goes on: no retries for a batch only a new upload can fix.
        var watcher = Watcher();
        Assert.Equal(3, (await watcher.PollOnceAsync(durable.Client, blobs, default)).Count(r => r.Outcome == TriggerOutcome.Rejected));
        Assert.Empty(await watcher.PollOnceAsync(durable.Client, blobs, default));
        Assert.Empty(durable.Starts);
    }

    [Fact]
    public async Task TheTriggerHashIsTheDatasetVersionRegistrationComputesFromTheSameBatch()
    {
        await UploadBatchAsync("reg", Content());
        var result = await Triggers().StartForUploadAsync(durable.Client, blobs, container, PipelineTriggers.BatchPrefix("reg"));
        var input = (PipelineSpec)durable.Starts.Single().Input!;

        var activity = new RegisterDatasetActivity(
            new ConnectionStringStorageClients(_ => Task.FromResult(connection)),
            Options.Create(new DatasetOptions()),
            NullLogger<RegisterDatasetActivity>.Instance);
        var registered = await activity.RunAsync(input.RegisterInput() with { Name = "mnist-trigger-" + container[^8..] }, new ActivityCall(ActivityNames.RegisterDataset, "t", default));

        Assert.Equal(result.ContentHash, registered.Dataset.ContentHash);
        Assert.StartsWith("mnist-" + registered.Dataset.Version, result.InstanceId);
        Assert.DoesNotContain(registered.Files, f => f.Name == PipelineTriggers.SuccessMarker);
    }

    [Fact]
    public async Task UploadWatcherOnAzuritePicksUpANewBatchOnceAndNotAgainAfterARestart()
    {
        var watcher = Watcher(pollSeconds: 0.2);
        await watcher.StartAsync(default);
        try
        {
            await UploadBatchAsync("watched", Content());
            await Eventually.GetAsync(() => Task.FromResult(durable.Starts.Count), n => n == 1, TimeSpan.FromSeconds(30), "the watcher's start");
            var marker = blobs.GetBlobContainerClient(container).GetBlobClient("datasets/mnist/watched/_SUCCESS");
            var handled = await Eventually.GetAsync(
                async () => (await marker.GetPropertiesAsync()).Value.Metadata,
                m => m.ContainsKey(UploadWatcher.HandledMetadata),
                TimeSpan.FromSeconds(30),
                "the marker's metadata");
            Assert.Equal(durable.Starts[0].InstanceId, handled[UploadWatcher.HandledMetadata]);

            // The same content under another name: seen, but it names the same run.
            await UploadBatchAsync("watched-copy", Content());
            var copy = blobs.GetBlobContainerClient(container).GetBlobClient("datasets/mnist/watched-copy/_SUCCESS");
            await Eventually.GetAsync(async () => (await copy.GetPropertiesAsync()).Value.Metadata, m => m.ContainsKey(UploadWatcher.HandledMetadata), TimeSpan.FromSeconds(30), "the copy's metadata");
        }
        finally
        {
            await watcher.StopAsync(default);
        }

        // A restarted host lists the marked markers and starts nothing.
        Assert.Empty(await Watcher().PollOnceAsync(durable.Client, blobs, default));
        Assert.Single(durable.Starts);
    }

    [Fact]
    public async Task UploadWatcherIgnoresAMissingContainerAndNonMarkerBlobs()
    {
        var watcher = Watcher(container: "uploads-missing-" + Guid.NewGuid().ToString("N")[..8]);
        Assert.Empty(await watcher.PollOnceAsync(durable.Client, blobs, default));

        var c = blobs.GetBlobContainerClient(container);
        await c.UploadBlobAsync("datasets/mnist/_SUCCESS", BinaryData.Empty);
        await c.UploadBlobAsync("datasets/mnist/a/b/_SUCCESS", BinaryData.Empty);
        await c.UploadBlobAsync("datasets/other/x/_SUCCESS", BinaryData.Empty);
        Assert.Empty(await Watcher().PollOnceAsync(durable.Client, blobs, default));
        Assert.Empty(durable.Starts);
    }

    [Fact]
    public async Task ScheduledDoubleFireIsOneRun()
    {
        var triggers = Triggers(o => o.DataDirectories = ["../shared/datasets/mnist-train", "../shared/datasets/mnist-t10k"]);
        var fire = new DateTime(2025, 3, 2, 3, 0, 0, DateTimeKind.Utc);

        var first = await triggers.StartScheduledAsync(durable.Client, blobs, fire);
        var again = await triggers.StartScheduledAsync(durable.Client, blobs, fire.AddSeconds(20));
        var next = await triggers.StartScheduledAsync(durable.Client, blobs, fire.AddDays(7));

        Assert.Equal((TriggerOutcome.Started, "mnist-scheduled-202503020300"), (first.Outcome, first.InstanceId));
        Assert.Equal((TriggerOutcome.Duplicate, first.InstanceId), (again.Outcome, again.InstanceId));
        Assert.Equal((TriggerOutcome.Started, "mnist-scheduled-202503090300"), (next.Outcome, next.InstanceId));
        Assert.Equal(2, durable.Starts.Count);
        var input = (PipelineSpec)durable.Starts[0].Input!;
        Assert.Equal(OrchestrationNames.TrainingPipeline, durable.Starts[0].Name);
        Assert.Equal("timer", input.Trigger);
        Assert.Equal(["../shared/datasets/mnist-train", "../shared/datasets/mnist-t10k"], input.Dataset.SourceDirectories);
        Assert.Null(input.Dataset.SourceContainer);
    }

    [Fact]
    public async Task ScheduledRunWithoutDataFoldersUsesTheLatestCompleteUploadOrSkips()
    {
        var triggers = Triggers();
        var fire = new DateTime(2025, 3, 2, 3, 0, 0, DateTimeKind.Utc);
        var skipped = await triggers.StartScheduledAsync(durable.Client, blobs, fire);
        Assert.Equal(TriggerOutcome.Skipped, skipped.Outcome);
        Assert.Contains("DataDirectories", skipped.Reason);

        await UploadBatchAsync("old", Content());
        await Task.Delay(1100); // Blob times have one-second resolution.
        await UploadBatchAsync("new", Content());
        await UploadBatchAsync("newest-but-incomplete", Content(), marker: false);

        var started = await triggers.StartScheduledAsync(durable.Client, blobs, fire.AddHours(1));
        Assert.Equal(TriggerOutcome.Started, started.Outcome);
        var input = (PipelineSpec)durable.Starts.Single().Input!;
        Assert.Equal((container, "datasets/mnist/new", "timer"), (input.Dataset.SourceContainer, input.Dataset.SourcePrefix, input.Trigger));
    }

    [Fact]
    public void CronScheduleComputesTheNextOccurrencesInUtc()
    {
        var from = new DateTime(2025, 3, 1, 12, 0, 0, DateTimeKind.Utc); // a Saturday

        Assert.Equal(
            [new DateTime(2025, 3, 2, 3, 0, 0), new DateTime(2025, 3, 9, 3, 0, 0), new DateTime(2025, 3, 16, 3, 0, 0)],
            PipelineSchedule.Parse("0 0 3 * * 0").NextOccurrences(from, 3));
        Assert.Equal(
            [new DateTime(2025, 3, 1, 12, 0, 30), new DateTime(2025, 3, 1, 12, 15, 30), new DateTime(2025, 3, 1, 12, 30, 30)],
            PipelineSchedule.Parse("30 */15 * * * *").NextOccurrences(from, 3));

        // Five fields: no seconds, as cron; weekdays only.
        Assert.Equal(
            [new DateTime(2025, 3, 3, 2, 30, 0), new DateTime(2025, 3, 4, 2, 30, 0)],
            PipelineSchedule.Parse("30 2 * * 1-5").NextOccurrences(from, 2));

        // A fire that runs late, or twice, belongs to the occurrence before it.
        var weekly = PipelineSchedule.Parse("0 0 3 * * 0");
        Assert.Equal(new DateTime(2025, 3, 2, 3, 0, 0), weekly.LatestAtOrBefore(new DateTime(2025, 3, 2, 3, 1, 5, DateTimeKind.Utc)));
        Assert.Equal(new DateTime(2025, 3, 2, 3, 0, 0), weekly.LatestAtOrBefore(new DateTime(2025, 3, 2, 3, 0, 0, DateTimeKind.Utc)));
        Assert.Null(weekly.LatestAtOrBefore(new DateTime(2025, 3, 5, 0, 0, 0, DateTimeKind.Utc)));
        Assert.Null(PipelineSchedule.Parse("0 0 0 30 2 *").NextAfter(from));
    }

    [Theory]
    [InlineData("")]
    [InlineData("* * *")]
    [InlineData("0 0 25 * * *")]
    [InlineData("00:05:00")]
    public void BadSchedulesAreClearErrors(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => PipelineSchedule.Parse(text));
        Assert.Contains("schedule", e.Message);
    }

    [Fact]
    public async Task ScheduledRetrainingFiresOnTheCronAndEachOccurrenceOnce()
    {
        // Every second; instance ids are per minute, so the fires within one minute are one run.
        var triggers = Triggers(o =>
        {
            o.Schedule = "* * * * * *";
            o.DataDirectories = ["data"];
        });
        var service = new ScheduledRetraining(() => durable.Client, Storage(), triggers, TimeProvider.System, NullLogger<ScheduledRetraining>.Instance);
        await service.StartAsync(default);
        try
        {
            await Eventually.GetAsync(() => Task.FromResult(durable.Starts.Count), n => n >= 1, TimeSpan.FromSeconds(10), "a scheduled start");
            await Task.Delay(2500);
        }
        finally
        {
            await service.StopAsync(default);
        }

        Assert.All(durable.Starts, s => Assert.StartsWith("mnist-scheduled-", s.InstanceId));
        Assert.Equal(durable.Starts.Count, durable.Starts.Select(s => s.InstanceId).Distinct().Count());
        Assert.InRange(durable.Starts.Count, 1, 2);
    }

    [Fact]
    public async Task ScheduledRetrainingIsOffWithoutOrWithABadSchedule()
    {
        foreach (var schedule in new[] { null, "not a cron" })
        {
            var service = new ScheduledRetraining(() => durable.Client, Storage(), Triggers(o => o.Schedule = schedule), TimeProvider.System, NullLogger<ScheduledRetraining>.Instance);
            await service.StartAsync(default);
            await service.ExecuteTask!.WaitAsync(TimeSpan.FromSeconds(10));
            await service.StopAsync(default);
        }

        Assert.Empty(durable.Starts);
    }

    private static Dictionary<string, byte[]> Content() =>
        MnistFiles.Select((name, i) => (name, bytes: Enumerable.Range(0, 64 + i).Select(b => (byte)(b * (i + 3))).ToArray())).ToDictionary(x => x.name, x => x.bytes);

    private async Task UploadBatchAsync(string batch, IReadOnlyDictionary<string, byte[]> files, bool marker = true)
    {
        var c = blobs.GetBlobContainerClient(container);
        foreach (var (name, bytes) in files)
        {
            await c.GetBlobClient($"datasets/mnist/{batch}/{name}").UploadAsync(BinaryData.FromBytes(bytes), overwrite: true);
        }

        if (marker)
        {
            // Written last: the marker says the batch is complete.
            await c.GetBlobClient($"datasets/mnist/{batch}/_SUCCESS").UploadAsync(BinaryData.Empty, new BlobUploadOptions());
        }
    }

    private PipelineTriggers Triggers(Action<PipelineTriggerOptions>? configure = null, string? container = null)
    {
        var options = new PipelineTriggerOptions { UploadsContainer = container ?? this.container };
        configure?.Invoke(options);
        return new PipelineTriggers(Options.Create(options), NullLogger<PipelineTriggers>.Instance);
    }

    private UploadWatcher Watcher(double pollSeconds = 10, string? container = null) =>
        new(() => durable.Client, Storage(), Triggers(o => o.PollSeconds = pollSeconds, container), NullLogger<UploadWatcher>.Instance);

    private ConnectionStringStorageClients Storage() => new(_ => Task.FromResult(connection));
}
