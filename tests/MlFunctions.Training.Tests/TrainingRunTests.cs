using System.Security.Cryptography;
using Azure.Storage.Blobs;
using Microsoft.ML.OnnxRuntime;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;
using MlFunctions.GpuWorker;
using MlFunctions.Tests.Infrastructure;

namespace MlFunctions.Training.Tests;

/// <summary>Real training runs through the worker's single-job entry point, on a 2,000-image MNIST slice.</summary>
public sealed class TrainingRunTests
{
    [Fact]
    public async Task CnnReaches90PercentValAccuracyIn2EpochsAndExportsOnnxThatMatchesOnnxRuntime()
    {
        var data = await PreparedMnist.UploadAsync();

        // The first two callback POSTs are refused with 503: events still arrive (retried with backoff).
        using var callbacks = new CallbackReceiver(failFirst: 2);
        var job = Jobs.Mnist("cnn", data, callbacks.CallbackFor("cnn-run"), new HyperParameters { Channels = [16, 32], HiddenSizes = [128], Epochs = 2, BatchSize = 32, LearningRate = 2e-3, Seed = 7 });
        var config = WorkerConfig.Build(await WorkerConfig.SettingsAsync("run"));

        Assert.Equal(0, await TrainingWorkerHost.RunSingleJobAsync(job, config, CancellationToken.None));

        var completed = await callbacks.WaitForAsync(job.JobId, TrainingEvents.Completed);
        var result = completed.Result!;
        Assert.Equal([1, 2], result.History.Select(h => h.Epoch));
        Assert.True(result.History[^1].ValAccuracy >= 0.90, $"val accuracy after 2 epochs: {result.History[^1].ValAccuracy:P2}");
        Assert.All(result.History, h => Assert.True(h.SamplesPerSecond > 0 && h.TrainLoss > 0 && h.ValLoss > 0));
        Assert.Equal(TrainingEvents.EventName, Assert.Single(callbacks.Events, e => e.Event.Kind == TrainingEvents.Completed).EventName);
        Assert.Equal([1, 2], callbacks.For(job.JobId, TrainingEvents.Progress).Select(e => e.Metrics!.Epoch));
        Assert.Empty(callbacks.For(job.JobId, TrainingEvents.Failed));
        Assert.Contains(result.Device, new[] { "cpu", "cuda" });
        Assert.Equal((16 * 9) + 16 + (32 * 16 * 9) + 32 + (32 * 7 * 7 * 128) + 128 + (128 * 10) + 10, result.ParameterCount);
        Assert.Equal(TransformSpec.Mnist().Mean, result.Transform!.Mean);
        Assert.Equal("tests", result.Labels["run"]);
        Assert.False(result.StoppedEarly);
        Assert.EndsWith($"jobs/{job.JobId}/epoch-0002/checkpoint.json", result.CheckpointUri);

        // Parity recorded by the worker: ORT vs TorchSharp on 64 held-out samples.
        Assert.NotNull(result.Parity);
        Assert.Equal(64, result.Parity!.BatchSize);
        Assert.True(result.Parity.MaxAbsLogitDiff <= 1e-4, $"max |Δlogit| {result.Parity.MaxAbsLogitDiff}");
        Assert.True(result.Parity.ArgmaxIdentical);

        // The artifact: sha256 as recorded, opset >= 17, symbolic batch, and it classifies raw test images on its own
        // (a batch of 100, not the 64 used for parity) once the recorded transform is applied.
        var blobs = new BlobServiceClient(await TestStorage.ConnectionStringAsync());
        var onnx = (await blobs.GetBlobContainerClient(TrainingStorage.ModelsContainer).GetBlobClient($"artifacts/{job.JobId}/model.onnx").DownloadContentAsync()).Value.Content.ToArray();
        Assert.Equal(result.OnnxSha256, Convert.ToHexStringLower(SHA256.HashData(onnx)));
        var proto = Onnx.ModelProto.Parser.ParseFrom(onnx);
        Assert.True(proto.OpsetImport.Single().Version >= 17);
        Assert.Equal("batch", proto.Graph.Input[0].Type.TensorType.Shape.Dim[0].DimParam);

        using var reader = IdxLabeledReader.OpenMnist(Path.Combine(PreparedMnist.DatasetsRoot, "mnist"), "t10k");
        reader.Skip(1000);
        var shard = reader.ReadShard(100);
        var input = shard.Features.Select(b => (float)b).ToArray();
        result.Transform.Apply(input);
        using var session = new InferenceSession(onnx);
        using var value = OrtValue.CreateTensorValueFromMemory(input, [100, 1, 28, 28]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["input"], [value], ["logits"]);
        var logits = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        var correct = Enumerable.Range(0, 100).Count(i => Array.IndexOf(logits, logits.Skip(i * 10).Take(10).Max(), i * 10, 10) - (i * 10) == shard.Labels[i]);
        Assert.True(correct >= 85, $"ONNX model classified {correct}/100 unseen images correctly");

        var status = (await blobs.GetBlobContainerClient(TrainingStorage.CheckpointsContainer).GetBlobClient(TrainingStorage.StatusBlob(job.JobId)).DownloadContentAsync())
            .Value.Content.ToObjectFromJson<TrainingJobStatus>(MlJson.Options)!;
        Assert.Equal(TrainingJobStates.Completed, status.State);
        Assert.Equal(2, status.EpochsDone);
        Assert.Equal(result.OnnxSha256, status.Result!.OnnxSha256);
    }

    [Fact]
    public async Task StopMarkerEndsTheJobAtTheNextEpochBoundaryAndReportsStoppedEarly()
    {
        var data = await PreparedMnist.UploadAsync();
        using var callbacks = new CallbackReceiver();
        var job = Jobs.Mnist("mlp", data, callbacks.CallbackFor("stop"), new HyperParameters { HiddenSizes = [64], Epochs = 50, BatchSize = 64, Seed = 3, MaxTrainSamples = 1000 });
        var config = WorkerConfig.Build(await WorkerConfig.SettingsAsync("stop"));
        var run = TrainingWorkerHost.RunSingleJobAsync(job, config, CancellationToken.None);

        await callbacks.WaitForAsync(job.JobId, TrainingEvents.Progress);
        var blobs = new BlobServiceClient(await TestStorage.ConnectionStringAsync());
        await blobs.GetBlobContainerClient(TrainingStorage.CheckpointsContainer).GetBlobClient(TrainingStorage.StopBlob(job.JobId)).UploadAsync(BinaryData.FromString("stop"), overwrite: true);

        Assert.Equal(0, await run);
        var stopped = await callbacks.WaitForAsync(job.JobId, TrainingEvents.Stopped);
        Assert.Equal("stopped early", stopped.Error);
        Assert.True(stopped.Result!.StoppedEarly);
        Assert.InRange(stopped.Result.History.Count, 1, 49);
        Assert.Null(stopped.Result.OnnxUri);
        Assert.Empty(callbacks.For(job.JobId, TrainingEvents.Completed));
        Assert.Equal(stopped.Result.History.Count, callbacks.For(job.JobId, TrainingEvents.Progress).Count);
    }
}
