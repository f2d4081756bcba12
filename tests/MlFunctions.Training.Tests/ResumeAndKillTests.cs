using System.Text.Json;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;
using MlFunctions.GpuWorker;
using MlFunctions.GpuWorker.Training;
using MlFunctions.Tests.Infrastructure;

namespace MlFunctions.Training.Tests;

/// <summary>
/// Checkpoint/resume: a worker process killed with SIGKILL mid-training and restarted finishes the job from its
/// newest checkpoint, runs no finished epoch again, and reproduces the uninterrupted run's per-epoch losses.
/// </summary>
public sealed class ResumeAndKillTests
{
    // CNN with dropout, BatchNorm and augmentation: the reproduction covers the shuffle, the dropout RNG, the
    // augmentation draws, BatchNorm's running statistics (a buffer in the checkpoint) and Adam's optimizer state.
    private static HyperParameters CnnHp => new()
    {
        BatchNorm = true,
        Augment = 0.5,
        Channels = [8, 16],
        HiddenSizes = [64],
        Dropout = 0.25,
        Epochs = 6,
        BatchSize = 64,
        LearningRate = 2e-3,
        Seed = 11,
    };

    [Fact]
    public async Task KilledWorkerProcessResumesFromCheckpointWithoutRerunningEpochsAndReproducesLosses()
    {
        var data = await PreparedMnist.UploadAsync();
        using var callbacks = new CallbackReceiver();
        var suffix = "kill" + Guid.NewGuid().ToString("N")[..6];
        // A 3 s visibility timeout (renewed every second) is far shorter than the job: without renewal the message would
        // reappear mid-training and the second worker's spare slot (JobsPerWorker 2) would start the job twice.
        var settings = await WorkerConfig.SettingsAsync(suffix, ("Worker:VisibilityTimeoutSeconds", "3"));

        // Reference: the same job uninterrupted (in-process, same thread count).
        var reference = Jobs.Mnist("cnn", data, callbacks.CallbackFor("ref"), CnnHp);
        Assert.Equal(0, await TrainingWorkerHost.RunSingleJobAsync(reference, WorkerConfig.Build(settings), CancellationToken.None));
        var expected = (await callbacks.WaitForAsync(reference.JobId, TrainingEvents.Completed)).Result!;
        Assert.True(expected.Parity!.MaxAbsLogitDiff <= 1e-4 && expected.Parity.ArgmaxIdentical, $"CNN parity {expected.Parity}");

        var job = Jobs.Mnist("cnn", data, callbacks.CallbackFor("kill"), CnnHp);
        var connection = await TestStorage.ConnectionStringAsync();
        var queue = new QueueClient(connection, settings["Worker:JobsQueue"], new QueueClientOptions { MessageEncoding = QueueMessageEncoding.Base64 });
        await queue.CreateIfNotExistsAsync();
        await queue.SendMessageAsync(JsonSerializer.Serialize(job, MlJson.Options));
        var checkpoints = new BlobServiceClient(connection).GetBlobContainerClient(TrainingStorage.CheckpointsContainer);

        int killedAfter;
        using (var first = WorkerProcess.Start(settings))
        {
            await Eventually.GetAsync(
                async () => first.HasExited ? throw new InvalidOperationException("worker exited:\n" + first.Output) : (await checkpoints.GetBlobClient($"jobs/{job.JobId}/epoch-0001/checkpoint.json").ExistsAsync()).Value,
                exists => exists,
                TimeSpan.FromSeconds(180),
                "epoch 1 checkpoint");
            first.KillHard();
            var status = await ReadStatusAsync(checkpoints, job.JobId);
            Assert.True(status.State == TrainingJobStates.Running, $"the job must still be running when killed, was {status.State}: make epochs longer\n{first.Output}");

            // Committed checkpoints are the truth (the status blob is written just after each one).
            killedAfter = 0;
            await foreach (var blob in checkpoints.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, $"jobs/{job.JobId}/epoch-", CancellationToken.None))
                killedAfter += blob.Name.EndsWith("/checkpoint.json", StringComparison.Ordinal) ? 1 : 0;
            Assert.InRange(killedAfter, 1, CnnHp.Epochs - 1);
        }

        using (var second = WorkerProcess.Start(new Dictionary<string, string?>(settings) { ["Worker:JobsPerWorker"] = "2" }))
        {
            var completed = await callbacks.WaitForAsync(job.JobId, TrainingEvents.Completed, TimeSpan.FromSeconds(240));
            var result = completed.Result!;

            // Same per-epoch losses as the uninterrupted run (float tolerance; CPU kernels are deterministic here).
            Assert.Equal(expected.History.Select(h => h.Epoch), result.History.Select(h => h.Epoch));
            foreach (var (a, b) in expected.History.Zip(result.History))
            {
                Assert.True(Math.Abs(a.TrainLoss - b.TrainLoss) <= 1e-5, $"epoch {a.Epoch} train loss {a.TrainLoss} vs resumed {b.TrainLoss}");
                Assert.True(Math.Abs(a.ValLoss - b.ValLoss) <= 1e-5, $"epoch {a.Epoch} val loss {a.ValLoss} vs resumed {b.ValLoss}");
            }

            // The journal: every epoch finished exactly once; the second process resumed after the last checkpoint and
            // started no epoch at or below it.
            var journal = (await checkpoints.GetBlobClient($"jobs/{job.JobId}/journal.log").DownloadContentAsync()).Value.Content.ToString()
                .Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => JsonSerializer.Deserialize<JournalEntry>(l, MlJson.Options)!)
                .ToList();
            var workers = journal.Select(e => e.Worker).Distinct().ToList();
            Assert.Equal(2, workers.Count);
            for (var epoch = 1; epoch <= CnnHp.Epochs; epoch++)
                Assert.Single(journal, e => e.Entry == "epoch-end" && e.Epoch == epoch);
            var resumed = Assert.Single(journal, e => e.Entry == "resume");
            Assert.Equal(workers[1], resumed.Worker);
            Assert.True(resumed.Epoch >= killedAfter, $"resumed after epoch {resumed.Epoch}, but epoch {killedAfter} was checkpointed");
            Assert.DoesNotContain(journal, e => e.Worker == workers[1] && e.Entry == "epoch-start" && e.Epoch <= resumed.Epoch);
            Assert.Single(journal, e => e.Entry == "job-completed");
            Assert.Single(journal, e => e.Entry == "job-start" && e.Worker == workers[1]);

            // The message is gone (deleted on completion) and nothing was poisoned.
            await Eventually.GetAsync(async () => (await queue.PeekMessagesAsync(1)).Value.Length, n => n == 0, TimeSpan.FromSeconds(20), "job message deleted");
            var poison = new QueueClient(connection, settings["Worker:PoisonQueue"]);
            Assert.Empty((await poison.PeekMessagesAsync(1)).Value);
            Assert.Empty(callbacks.For(job.JobId, TrainingEvents.Failed));
            Assert.Equal(TrainingJobStates.Completed, (await ReadStatusAsync(checkpoints, job.JobId)).State);
        }
    }

    [Fact]
    public async Task InterruptedRunResumesFromNewestCheckpointWithSgdMomentum()
    {
        var data = await PreparedMnist.UploadAsync();
        using var callbacks = new CallbackReceiver();
        var config = WorkerConfig.Build(await WorkerConfig.SettingsAsync("resume"));
        var hp = new HyperParameters { HiddenSizes = [256, 256], Dropout = 0.3, Optimizer = "sgd", Momentum = 0.9, LearningRate = 0.05, WeightDecay = 1e-4, Epochs = 6, BatchSize = 32, Seed = 5 };

        var reference = Jobs.Mnist("mlp", data, callbacks.CallbackFor("ref"), hp, exportOnnx: false);
        Assert.Equal(0, await TrainingWorkerHost.RunSingleJobAsync(reference, config, CancellationToken.None));
        var expected = (await callbacks.WaitForAsync(reference.JobId, TrainingEvents.Completed)).Result!;

        // Interrupt (cancel = shutdown) as soon as the first checkpoint exists, then run the same job id again.
        var job = Jobs.Mnist("mlp", data, callbacks.CallbackFor("resume"), hp, exportOnnx: false);
        var checkpoints = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient(TrainingStorage.CheckpointsContainer);
        using (var cts = new CancellationTokenSource())
        {
            var run = TrainingWorkerHost.RunSingleJobAsync(job, config, cts.Token);
            while (!(await checkpoints.GetBlobClient($"jobs/{job.JobId}/epoch-0001/checkpoint.json").ExistsAsync()).Value && !run.IsCompleted)
                await Task.Delay(20);
            await cts.CancelAsync();
            Assert.Equal(1, await run);
        }

        Assert.Empty(callbacks.For(job.JobId, TrainingEvents.Completed));
        Assert.Equal(0, await TrainingWorkerHost.RunSingleJobAsync(job, config, CancellationToken.None));
        var result = (await callbacks.WaitForAsync(job.JobId, TrainingEvents.Completed)).Result!;
        Assert.Equal(hp.Epochs, result.History.Count);
        foreach (var (a, b) in expected.History.Zip(result.History))
            Assert.True(Math.Abs(a.TrainLoss - b.TrainLoss) <= 1e-5 && Math.Abs(a.ValLoss - b.ValLoss) <= 1e-5, $"epoch {a.Epoch}: {a} vs {b}");

        // Redelivering a finished job re-reports its result without training again.
        Assert.Equal(0, await TrainingWorkerHost.RunSingleJobAsync(job, config, CancellationToken.None));
        await Eventually.GetAsync(() => Task.FromResult(callbacks.For(job.JobId, TrainingEvents.Completed).Count), n => n == 2, TimeSpan.FromSeconds(30), "second Completed");
        var journal = (await checkpoints.GetBlobClient($"jobs/{job.JobId}/journal.log").DownloadContentAsync()).Value.Content.ToString();
        Assert.Contains("job-already-finished", journal);
        Assert.Equal(hp.Epochs, journal.Split('\n').Count(l => l.Contains("\"epoch-end\"", StringComparison.Ordinal)));
    }

    private static async Task<TrainingJobStatus> ReadStatusAsync(BlobContainerClient checkpoints, string jobId) =>
        (await checkpoints.GetBlobClient(TrainingStorage.StatusBlob(jobId)).DownloadContentAsync()).Value.Content.ToObjectFromJson<TrainingJobStatus>(MlJson.Options)!;
}
