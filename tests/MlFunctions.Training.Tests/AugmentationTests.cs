using MlFunctions.Core.Datasets;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;
using MlFunctions.GpuWorker.Data;
using PreparedSplit = MlFunctions.GpuWorker.Data.PreparedSplit;
using MlFunctions.GpuWorker.Models;
using MlFunctions.GpuWorker.Onnx;
using MlFunctions.GpuWorker.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MlFunctions.Training.Tests;

/// <summary>
/// Image augmentation: seeded by (seed, epoch) alone, applied to training batches only, never to evaluation or the
/// exported (served) model. Resume after kill -9 with augmentation is covered by <see cref="ResumeAndKillTests"/>.
/// </summary>
public sealed class AugmentationTests
{
    private static PreparedSplit Split(string name, string folder, string prefix, int skip, int count)
    {
        using var reader = IdxLabeledReader.OpenMnist(Path.Combine(PreparedMnist.DatasetsRoot, folder), prefix);
        reader.Skip(skip);
        var shard = reader.ReadShard(count);
        return new PreparedSplit(name, shard.SampleShape, shard.Features, shard.Labels);
    }

    [Fact]
    public void DrawsDependOnSeedAndEpochOnlyAndMoveThePixels()
    {
        set_num_threads(2);
        var transform = TransformSpec.Mnist();
        var (x, y) = Split("train", "mnist-train", "train", 0, 64).ToTensors(transform, CPU);
        using (x)
        using (y)
        {
            Assert.Null(ImageAugmentation.ForEpoch(0, 3, 1));
            using var a = ImageAugmentation.ForEpoch(1, 3, 1)!;
            using var b = ImageAugmentation.ForEpoch(1, 3, 1)!;
            using var c = ImageAugmentation.ForEpoch(1, 3, 2)!;
            using var first = a.Apply(x);
            using var again = b.Apply(x);
            using var otherEpoch = c.Apply(x);
            using var secondBatch = a.Apply(x);
            Assert.Equal(x.shape, first.shape);
            Assert.Equal(0, (first - again).abs().max().item<float>());
            Assert.True((first - otherEpoch).abs().max().item<float>() > 0.5, "epoch 2 must draw other transforms");
            Assert.True((first - secondBatch).abs().max().item<float>() > 0.5, "the next batch of an epoch must draw other transforms");

            // The digits move, but stay digits: most pixels change, the background (the border value) stays background.
            var changed = (first - x).abs().gt(1e-3).to_type(ScalarType.Float32).mean().item<float>();
            Assert.True(changed > 0.05, $"only {changed:P1} of the pixels changed");
            Assert.True(Math.Abs(first.min().item<float>() - x.min().item<float>()) < 1e-4, "border padding keeps the normalized background value");
        }

        Assert.Throws<JobValidationException>(() => ImageAugmentation.Validate(1.5, [1, 28, 28]));
        Assert.Throws<JobValidationException>(() => ImageAugmentation.Validate(0.5, [3]));
        ImageAugmentation.Validate(0, [3]);
    }

    [Fact]
    public void AugmentationTrainsButEvaluationAndTheExportedModelSeeTheImagesUnchanged()
    {
        set_num_threads(2);
        var transform = TransformSpec.Mnist();
        var train = Split("train", "mnist-train", "train", 0, 512);
        var eval = Split("val", "mnist", "t10k", 0, 200);
        var data = new PreparedDataset(transform, new Dictionary<string, PreparedSplit> { ["train"] = train, ["val"] = eval }, 10);
        var plain = new HyperParameters { Channels = [4, 8], HiddenSizes = [32], BatchNorm = true, BatchSize = 64, Seed = 4 };
        var augmented = plain with { Augment = 1 };
        var definition = ModelZoo.Get("cnn");

        nn.Module<Tensor, Tensor> Trained(HyperParameters hp)
        {
            manual_seed(hp.Seed);
            var model = definition.BuildModule(hp, new ModelInputs(TrainingObjectives.Classification, [1, 28, 28], 10));
            using var objective = TrainingObjective.Create(TrainingObjectives.Classification, data, train, eval, eval, hp, CPU);
            using var optimizer = EpochTrainer.CreateOptimizer(model, hp);
            objective.TrainEpoch(model, optimizer, hp, 1, null, CancellationToken.None);
            return model;
        }

        using var withAugment = Trained(augmented);
        using var without = Trained(plain);

        // Training did see augmented batches: the same seed and data gave other weights.
        var a = withAugment.parameters().First();
        var b = without.parameters().First();
        Assert.True((a - b).abs().max().item<float>() > 1e-4, "augment 1 must change what the model trains on");

        // Evaluation: the objective's held-out pass equals a plain pass over the unchanged images, twice.
        using var objective = TrainingObjective.Create(TrainingObjectives.Classification, data, train, eval, eval, augmented, CPU);
        var first = objective.Evaluate(withAugment);
        var second = objective.Evaluate(withAugment);
        var (evalX, evalY) = eval.ToTensors(transform, CPU);
        using (evalX)
        using (evalY)
        {
            var (loss, accuracy) = EpochTrainer.Evaluate(withAugment, evalX, evalY);
            Assert.Equal(first.Loss, second.Loss);
            Assert.Equal(first.Primary, second.Primary);
            Assert.Equal(loss, first.Loss, 6);
            Assert.Equal(accuracy, first.Primary, 6);

            // Serving: the exported ONNX model (what the registry serves) gives the eval-mode logits of the raw held-out
            // images, so nothing of the augmentation (or of BatchNorm's batch statistics) is in it.
            var onnx = OnnxExporter.ToModelBytes(definition.ExportModule(withAugment, objective.Inputs), 10, "cnn");
            var proto = global::Onnx.ModelProto.Parser.ParseFrom(onnx);
            Assert.DoesNotContain(proto.Graph.Node, n => n.OpType is "GridSample" or "AffineGrid" or "RandomUniform");
            using var batch = objective.ParityBatch(64);
            var parity = OnnxParityCheck.Run(onnx, withAugment, batch);
            Assert.True(parity.MaxAbsLogitDiff <= 1e-4 && parity.ArgmaxIdentical, $"parity {parity}");
            Console.WriteLine($"augment 1, 1 epoch on 512 images: held-out accuracy {accuracy:P1}, parity max |Δlogit| {parity.MaxAbsLogitDiff:E2}");
        }
    }
}
