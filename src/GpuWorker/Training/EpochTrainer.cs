using System.Diagnostics;
using MlFunctions.Core.Training;
using MlFunctions.GpuWorker.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Training;

/// <summary>One epoch of training and one evaluation pass: the hot loop, free of storage and messaging.</summary>
public static class EpochTrainer
{
    public static OptimizerHelper CreateOptimizer(nn.Module model, HyperParameters hp) =>
        hp.Optimizer.ToLowerInvariant() switch
        {
            // PyTorch's defaults (betas 0.9/0.999, eps 1e-8) spelled out: TorchSharp's own defaults differ.
            "adam" => optim.Adam(model.parameters(), hp.LearningRate, 0.9, 0.999, 1e-8, hp.WeightDecay),
            "sgd" => optim.SGD(model.parameters(), hp.LearningRate, hp.Momentum, 0, hp.WeightDecay),
            _ => throw new JobValidationException($"Unknown optimizer '{hp.Optimizer}': use 'adam' or 'sgd' (with momentum)."),
        };

    /// <summary>The learning rate for 1-based <paramref name="epoch"/> under the job's schedule.</summary>
    public static double LearningRateAt(HyperParameters hp, int epoch) =>
        hp.LrSchedule.ToLowerInvariant() switch
        {
            "constant" => hp.LearningRate,
            "cosine" => hp.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * (epoch - 1) / Math.Max(1, hp.Epochs))),
            _ => throw new JobValidationException($"Unknown lrSchedule '{hp.LrSchedule}': use 'constant' or 'cosine'."),
        };

    /// <summary>Sets every parameter group's learning rate (the optimizer's own schedulers keep state a checkpoint would have to carry).</summary>
    public static void SetLearningRate(OptimizerHelper optimizer, double learningRate)
    {
        foreach (var group in optimizer.ParamGroups)
        {
            group.LearningRate = learningRate;
        }
    }

    /// <summary>
    /// Trains one epoch over <paramref name="features"/>/<paramref name="labels"/> (already on the model's device) in
    /// the order of a permutation seeded by (seed, epoch), each batch through <paramref name="augment"/> when given
    /// (training only: <see cref="Evaluate"/> never augments). Returns the sample-weighted mean loss and the wall time.
    /// </summary>
    public static (double Loss, double Seconds) TrainEpoch(
        nn.Module<Tensor, Tensor> model,
        OptimizerHelper optimizer,
        Tensor features,
        Tensor labels,
        int batchSize,
        long seed,
        int epoch,
        Action<long>? onBatch = null,
        CancellationToken cancellation = default,
        LossFunction? lossFunction = null,
        Func<Tensor, Tensor>? augment = null)
    {
        lossFunction ??= CrossEntropy;
        var device = features.device;
        var n = features.shape[0];
        manual_seed(Seeds.ForEpoch(seed, epoch, Seeds.DropoutStream));
        if (device.type == DeviceType.CUDA)
            torch.cuda.manual_seed_all(Seeds.ForEpoch(seed, epoch, Seeds.DropoutStream));

        using var generator = new Generator((ulong)Seeds.ForEpoch(seed, epoch, Seeds.ShuffleStream));
        using var permutation = randperm(n, generator: generator).to(device);

        // The running loss stays on the device: reading it back every batch would synchronize a GPU each step.
        // It has the loss's own dtype: a float64 sum would add a type-promoting kernel to every step, which
        // measurably slowed small models (bench/training: worker/bare 0.81 for the MLP with it).
        using var lossSum = zeros(1, dtype: ScalarType.Float32, device: device);
        var onCpu = device.type == DeviceType.CPU;
        double cpuLossSum = 0;
        model.train();
        var clock = Stopwatch.StartNew();
        for (long start = 0; start < n; start += batchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var count = Math.Min(batchSize, n - start);
            var index = permutation.narrow(0, start, count);
            var x = features.index_select(0, index);
            if (augment is not null)
                x = augment(x);
            var y = labels.index_select(0, index);
            optimizer.zero_grad();
            var loss = lossFunction(model.forward(x), y, nn.Reduction.Mean);
            loss.backward();
            optimizer.step();
            if (onCpu)
            {
                // On the CPU a read-back synchronizes nothing and is one native call, cheaper than a detach
                // plus an in-place add on every step.
                cpuLossSum += loss.item<float>() * count;
            }
            else
            {
                lossSum.add_(loss.detach(), alpha: count);
            }

            onBatch?.Invoke(start + count);
        }

        var mean = (onCpu ? cpuLossSum : lossSum.item<float>()) / n;
        return (mean, clock.Elapsed.TotalSeconds);
    }

    /// <summary>A loss of (model outputs, targets) under a reduction (Mean for training, Sum for evaluation).</summary>
    public delegate Tensor LossFunction(Tensor outputs, Tensor targets, nn.Reduction reduction);

    /// <summary>Cross-entropy of logits against int64 class labels (the classification default).</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, nn.Reduction reduction) => nn.functional.cross_entropy(logits, labels, reduction: reduction);

    /// <summary>Mean loss (the classification default: cross-entropy) and accuracy, in eval mode (dropout off), without gradients.</summary>
    public static (double Loss, double Accuracy) Evaluate(nn.Module<Tensor, Tensor> model, Tensor features, Tensor labels, int batchSize = 1000, LossFunction? lossFunction = null)
    {
        lossFunction ??= CrossEntropy;
        var n = features.shape[0];
        if (n == 0)
            return (0, 0);
        model.eval();
        using var noGrad = no_grad();
        double lossSum = 0;
        long correct = 0;
        for (long start = 0; start < n; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var count = Math.Min(batchSize, n - start);
            var x = features.narrow(0, start, count);
            var y = labels.narrow(0, start, count);
            var logits = model.forward(x);
            lossSum += lossFunction(logits, y, nn.Reduction.Sum).item<float>();
            correct += logits.argmax(1).eq(y).sum().item<long>();
        }

        return (lossSum / n, (double)correct / n);
    }

    public static long ParameterCount(nn.Module model) => model.parameters().Sum(p => p.numel());
}
