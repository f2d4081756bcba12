using Azure.Storage.Blobs;
using Microsoft.ML.OnnxRuntime;
using MlFunctions.Activities.Datasets;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;
using MlFunctions.GpuWorker;
using MlFunctions.GpuWorker.Data;
using MlFunctions.GpuWorker.Models;
using MlFunctions.GpuWorker.Onnx;
using MlFunctions.GpuWorker.Training;
using MlFunctions.Tests.Infrastructure;
using TorchSharp;
using PreparedSplit = MlFunctions.GpuWorker.Data.PreparedSplit;
using static TorchSharp.torch;

namespace MlFunctions.Training.Tests;

/// <summary>The denoise task in the worker: the DnCNN residual denoiser, its fully convolutional ONNX export, and training on simulated 1/10-dose CT.</summary>
public sealed class DenoiseTests
{
    /// <summary>Small simulated scans, 64×64 at 1/10 dose; subjects split into train, validation and test.</summary>
    private static readonly Lazy<(IReadOnlyList<CtSlicePair> Train, IReadOnlyList<CtSlicePair> Val, IReadOnlyList<CtSlicePair> Test)> Scans = new(() =>
    {
        var spec = new CtSimulationSpec
        {
            Protocol = new CtProtocol { Size = 64, PixelSpacingMm = 4.0, Angles = 96, LowDoseFraction = 0.1 },
            Subjects = 6,
            SlicesPerSubject = 2,
            Seed = 5,
        };
        var pairs = CtSimulator.Simulate(spec, noiseless: false).Select(s => s.Pair).ToList();
        var split = CtSplits.Assign(pairs.Select(p => p.Subject), validation: 1, test: 1, seed: spec.Seed);
        return CtSplits.Partition(pairs, split);
    });

    private static PreparedSplit SplitOf(string name, PreparedShard shard) => PreparedSplit.Concat(name, [shard]);

    private static PreparedDataset Prepared(int patches = 384)
    {
        var (train, val, test) = Scans.Value;
        var splits = new Dictionary<string, PreparedSplit>
        {
            ["train"] = SplitOf("train", CtDenoiseSamples.Patches(train, patch: 32, count: patches, seed: 1)),
            ["val"] = SplitOf("val", CtDenoiseSamples.Slices(val)),
            ["test"] = SplitOf("test", CtDenoiseSamples.Slices(test)),
        };
        return new PreparedDataset(new TransformSpec(), splits, 1, TrainingObjectives.Denoise);
    }

    [Fact]
    public void DnCnnExportsConvReluSubWithADynamicHeightAndWidthAndMatchesTorchSharp()
    {
        torch.manual_seed(7);
        var definition = ModelZoo.Get("dncnn", TrainingObjectives.Denoise);
        var inputs = new ModelInputs(TrainingObjectives.Denoise, [1, 32, 32], 1);
        using var model = definition.BuildModule(new HyperParameters { Channels = [8, 8, 8] }, inputs);
        Assert.Equal(4, ((DnCnnModule)model).Depth);

        // Perturb the near-identity start so the residual branch carries weight in the comparison.
        using (no_grad())
        {
            foreach (var p in model.parameters())
                p.add_(randn_like(p) * 0.05);
        }

        var graph = definition.ExportModule(model, inputs);
        Assert.Equal(["Conv", "Relu", "Conv", "Relu", "Conv", "Relu", "Conv", "Sub"], graph.Nodes.Select(n => n.OpType));
        var onnx = OnnxExporter.ToModelBytes(graph, 1, "dncnn");

        using (var session = new InferenceSession(onnx))
        {
            var dims = session.InputMetadata[OnnxGraph.InputName].Dimensions;
            Assert.Equal([-1, 1, -1, -1], dims);
        }

        // Patch-sized, slice-sized and non-square inputs through the same graph.
        foreach (var shape in new long[][] { [3, 1, 32, 32], [1, 1, 64, 64], [2, 1, 24, 40] })
        {
            using var x = randn(shape) * 0.5;
            var parity = OnnxParityCheck.Run(onnx, model, x, compareArgmax: false);
            Assert.True(parity.MaxAbsLogitDiff <= DenoiseObjective.ParityTolerance, $"[{string.Join(",", shape)}]: max |Δ| {parity.MaxAbsLogitDiff:G3}");
        }
    }

    /// <summary>The worker's epoch line: a denoiser's primary metric is PSNR in dB, not a percentage ("val acc 4,467.85 %").</summary>
    [Fact]
    public void TheEpochLogShowsADenoisersPsnrInDecibelsAndOtherTasksAccuracyAsAPercentage()
    {
        Assert.Equal("val psnr 44.68 dB", TrainingJobRunner.DescribePrimary(TrainingObjectives.Denoise, 44.6785));
        Assert.Equal("val acc 97.12 %", TrainingJobRunner.DescribePrimary(TrainingObjectives.Classification, 0.97123));
        Assert.Equal("val acc 50.00 %", TrainingJobRunner.DescribePrimary("", 0.5));
    }

    [Fact]
    public void DnCnnRejectsMultiChannelInputsAndBadWidths()
    {
        var definition = ModelZoo.Get("dncnn");
        Assert.Contains("one-channel", Assert.Throws<JobValidationException>(() => definition.BuildModule(new HyperParameters(), new ModelInputs(TrainingObjectives.Denoise, [3, 32, 32], 1))).Message);
        Assert.Contains("channels", Assert.Throws<JobValidationException>(() => definition.BuildModule(new HyperParameters { Channels = [] }, new ModelInputs(TrainingObjectives.Denoise, [1, 32, 32], 1))).Message);
        Assert.Contains("denoise", Assert.Throws<JobValidationException>(() => ModelZoo.Get("dncnn", TrainingObjectives.Classification)).Message);
        Assert.Equal(TrainingObjectives.MeanSquaredError, TrainingObjectives.LossFor(TrainingObjectives.Denoise, null));
        Assert.Throws<ArgumentException>(() => TrainingObjectives.LossFor(TrainingObjectives.Denoise, TrainingObjectives.CrossEntropy));
    }

    [Fact]
    public void DenoiseSamplesKeepEachLowFullPairTogetherAndRoundTripToHu()
    {
        var (_, val, _) = Scans.Value;
        var shard = CtDenoiseSamples.Slices(val);
        Assert.Equal([2, 64, 64], shard.SampleShape);
        Assert.Equal(val.Count, shard.Count);
        for (var i = 0; i < val.Count; i++)
        {
            var (low, full) = CtDenoiseSamples.Pair(shard.FloatFeatures!, i, 64, 64);
            Assert.Equal(val[i].Low.Pixels, low.Pixels, (a, b) => Math.Abs(a - b) < 1e-2f);
            Assert.Equal(val[i].Full.Pixels, full.Pixels, (a, b) => Math.Abs(a - b) < 1e-2f);
        }

        var patches = CtDenoiseSamples.Patches(val, patch: 16, count: 5, seed: 2);
        Assert.Equal([2, 16, 16], patches.SampleShape);
        Assert.Equal(5 * 2 * 256, patches.FloatFeatures!.Length);
    }

    [Fact]
    public void TheDenoiseObjectiveRejectsSamplesThatAreNotInputTargetPairs()
    {
        var bytes = new PreparedSplit("train", [1, 8, 8], new byte[2 * 64], [0, 0]);
        var data = new PreparedDataset(new TransformSpec(), new Dictionary<string, PreparedSplit> { ["train"] = bytes }, 1, TrainingObjectives.Denoise);
        var e = Assert.Throws<InvalidDataException>(() => TrainingObjective.Create(TrainingObjectives.Denoise, data, bytes, bytes, bytes, new HyperParameters(), CPU));
        Assert.Contains("[2, H, W]", e.Message);
    }

    [Fact]
    public void TheDenoiserTrainedOnPatchesBeatsTheLowDoseInputOnHeldOutSlices()
    {
        var data = Prepared(patches: 1024);
        var hp = new HyperParameters { Channels = [24, 24, 24], Epochs = 8, BatchSize = 32, LearningRate = 1e-3, Seed = 3 };
        torch.manual_seed(hp.Seed);
        using var objective = TrainingObjective.Create(TrainingObjectives.Denoise, data, data.Splits["train"], data.Splits["test"], data.Splits["test"], hp, CPU);
        Assert.Equal([1, 32, 32], objective.Inputs.SampleShape);
        using var model = ModelZoo.Get("dncnn", TrainingObjectives.Denoise).BuildModule(hp, objective.Inputs);
        using var optimizer = EpochTrainer.CreateOptimizer(model, hp);

        var before = objective.Evaluate(model);
        var losses = new List<double>();
        EvaluationResult? after = null;
        for (var epoch = 1; epoch <= hp.Epochs; epoch++)
        {
            losses.Add(objective.TrainEpoch(model, optimizer, hp, epoch, null, CancellationToken.None).Loss);
            after = objective.Evaluate(model);
        }

        var m = after!.Metrics!;
        var report = $"train MSE {string.Join(", ", losses.Select(l => l.ToString("G3")))}; held-out MSE {before.Loss:G3} → {after.Loss:G3}; PSNR {m["psnr"]:F2} (input {m["lowdose_psnr"]:F2}), SSIM {m["ssim"]:F4} (input {m["lowdose_ssim"]:F4}), RMSE {m["rmse_hu"]:F1} HU (input {m["lowdose_rmse_hu"]:F1})";
        Console.WriteLine(report);
        Assert.True(losses[^1] < losses[0], report);
        Assert.True(after.Loss < before.Loss, report);
        Assert.Equal(after.Primary, m["psnr"]);
        Assert.True(m["psnr"] > m["lowdose_psnr"] + 2, report);
        Assert.True(m["ssim"] > m["lowdose_ssim"], report);
        Assert.True(m["rmse_hu"] < m["lowdose_rmse_hu"], report);

        // The scores are Core's: the same figure CtEvaluation gives the model's output slices.
        var (_, _, test) = Scans.Value;
        using var x = tensor(test.SelectMany(p => CtPatches.ToTensor(p.Low)).ToArray(), [test.Count, 1, 64, 64]);
        var outputs = DenoiseObjective.Denoise(model, x);
        Assert.Equal(CtEvaluation.Score(outputs.Select((o, i) => (o, test[i].Full))).Psnr, m["psnr"], 6);
        Assert.Equal(CtEvaluation.LowDose(test).Psnr, m["lowdose_psnr"], 6);

        // Above a 3×3 median on the same slices too (measured 43.51 dB, SSIM 0.9846; the case study tunes its width on validation).
        var median = CtEvaluation.Score(test.Select(p => (Core.Imaging.Baselines.ClassicalFilters.Median(p.Low, 1), p.Full)));
        Assert.True(m["psnr"] > median.Psnr + 1 && m["ssim"] > median.Ssim, $"{report}; median 3x3 {median}");
    }

    [Fact]
    public async Task ADenoiseJobTrainsOnPatchesAndExportsAFullyConvolutionalOnnxWithinTolerance()
    {
        var data = Prepared(patches: 128);
        var blobs = new BlobServiceClient(await TestStorage.ConnectionStringAsync());
        var container = blobs.GetBlobContainerClient(PreparedMnist.Container);
        await container.CreateIfNotExistsAsync();
        var prefix = "ct-" + Guid.NewGuid().ToString("N")[..8];
        var shards = data.Splits.ToDictionary(s => s.Key, s => new PreparedShard(s.Value.SampleShape, s.Value.Floats!, s.Value.Labels));
        var (manifest, _) = await PreparedDatasetWriter.WriteAsync(
            container, prefix, new DatasetRef("ct", prefix, prefix), new PreparationRecipe(), "slice", new TransformSpec(), 1, shards, CancellationToken.None, TrainingObjectives.Denoise);
        var reference = new PreparedDataRef(PreparedMnist.Container, prefix, manifest.ContentHash);

        using var callbacks = new CallbackReceiver();
        var job = Jobs.Mnist("dncnn", reference, callbacks.CallbackFor("dncnn-run"), new HyperParameters { Channels = [8, 8], Epochs = 2, BatchSize = 32, LearningRate = 2e-3, Seed = 3 });
        var config = WorkerConfig.Build(await WorkerConfig.SettingsAsync("ct"));
        var exit = await TrainingWorkerHost.RunSingleJobAsync(job, config, CancellationToken.None);
        Assert.True(exit == 0, $"exit {exit}: {string.Join("; ", callbacks.Events.Select(e => $"{e.EventName} {e.Event.Error}"))}");

        var result = (await callbacks.WaitForAsync(job.JobId, TrainingEvents.Completed)).Result!;
        Assert.Equal([1, 2], result.History.Select(h => h.Epoch));
        Assert.All(result.History, h => Assert.Equal(h.ValAccuracy, h.ValMetrics!["psnr"]));
        Assert.True(result.History[^1].ValMetrics!.ContainsKey("ssim"));
        Assert.True(result.Parity!.MaxAbsLogitDiff <= DenoiseObjective.ParityTolerance, $"parity {result.Parity.MaxAbsLogitDiff}");
        Assert.False(string.IsNullOrEmpty(result.OnnxUri));
    }
}
