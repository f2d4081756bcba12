using Azure.Storage.Blobs;
using MlFunctions.Core.Training;
using MlFunctions.GpuWorker;
using MlFunctions.GpuWorker.Training;
using MlFunctions.Tests.Infrastructure;

namespace MlFunctions.Training.Tests;

/// <summary>PBT's exploit step in the worker: a job with WarmStartFrom continues another job's newest checkpoint under its own hyperparameters.</summary>
public sealed class WarmStartTests
{
    [Fact]
    public async Task AWarmStartedJobContinuesItsParentsCheckpointWithItsOwnHyperparameters()
    {
        var data = await PreparedMnist.UploadAsync();
        using var callbacks = new CallbackReceiver();
        var config = WorkerConfig.Build(await WorkerConfig.SettingsAsync("warm"));
        var hp = new HyperParameters { HiddenSizes = [64], Epochs = 2, BatchSize = 64, LearningRate = 2e-3, Seed = 3 };

        var parent = Jobs.Mnist("mlp", data, callbacks.CallbackFor("parent"), hp, exportOnnx: false);
        Assert.Equal(0, await TrainingWorkerHost.RunSingleJobAsync(parent, config, CancellationToken.None));
        var parentResult = (await callbacks.WaitForAsync(parent.JobId, TrainingEvents.Completed)).Result!;

        // The child: an explored learning rate and dropout, two more epochs; it starts after the parent's epoch 2.
        var child = Jobs.Mnist("mlp", data, callbacks.CallbackFor("child"), hp with { Epochs = 4, LearningRate = 1.6e-3, Dropout = 0.1 }, exportOnnx: false) with { WarmStartFrom = parent.JobId };
        Assert.Equal(0, await TrainingWorkerHost.RunSingleJobAsync(child, config, CancellationToken.None));
        var result = (await callbacks.WaitForAsync(child.JobId, TrainingEvents.Completed)).Result!;
        Assert.Equal([1, 2, 3, 4], result.History.Select(h => h.Epoch));
        Assert.Equal(parentResult.History.Select(h => h.ValLoss), result.History.Take(2).Select(h => h.ValLoss));
        Assert.Equal([3, 4], callbacks.For(child.JobId, TrainingEvents.Progress).Select(e => e.Metrics!.Epoch));

        // It trained on from the parent's weights: epoch 3's training loss is near the parent's last one, far below a fresh epoch 1's.
        Assert.True(result.History[2].TrainLoss < parentResult.History[0].TrainLoss * 0.9, $"epoch 3 train loss {result.History[2].TrainLoss} vs a fresh epoch 1 {parentResult.History[0].TrainLoss}");
        var checkpoints = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient(TrainingStorage.CheckpointsContainer);
        var journal = (await checkpoints.GetBlobClient($"jobs/{child.JobId}/journal.log").DownloadContentAsync()).Value.Content.ToString();
        Assert.Contains("\"warm-start\"", journal);
        Assert.Contains($"from {parent.JobId}", journal);

        // A parent without a checkpoint, or of another model, fails the job with the reason.
        var orphan = Jobs.Mnist("mlp", data, callbacks.CallbackFor("orphan"), hp, exportOnnx: false) with { WarmStartFrom = "no-such-job" };
        await TrainingWorkerHost.RunSingleJobAsync(orphan, config, CancellationToken.None);
        Assert.Contains("no checkpoint", (await callbacks.WaitForAsync(orphan.JobId, TrainingEvents.Failed)).Error);
        var other = Jobs.Mnist("cnn", data, callbacks.CallbackFor("other"), hp, exportOnnx: false) with { WarmStartFrom = parent.JobId };
        await TrainingWorkerHost.RunSingleJobAsync(other, config, CancellationToken.None);
        Assert.Contains("'mlp', not 'cnn'", (await callbacks.WaitForAsync(other.JobId, TrainingEvents.Failed)).Error);
    }
}
