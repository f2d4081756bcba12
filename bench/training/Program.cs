// Samples/s of one training epoch, MNIST, batch 64, Adam, for the worker's loop (EpochTrainer.TrainEpoch) and a
// bare TorchSharp loop doing the same work (per-epoch randperm, index_select batches, zero_grad/forward/
// cross-entropy/backward/step). Prints "RATE <model> <impl> <samples/s>" lines for run.sh to aggregate.
// Usage: MlFunctions.Bench.Training <datasets dir> <mlp samples> <cnn samples> <threads> <impl,impl...>
// The MLP is timed over 4 epochs (one is too short to time on a shared machine), the CNN over one.
using System.Diagnostics;
using System.Globalization;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;
using MlFunctions.GpuWorker.Models;
using MlFunctions.GpuWorker.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

var datasets = args[0];
var samples = new Dictionary<string, int> { ["mlp"] = int.Parse(args[1], CultureInfo.InvariantCulture), ["cnn"] = int.Parse(args[2], CultureInfo.InvariantCulture) };
var threads = int.Parse(args[3], CultureInfo.InvariantCulture);
var impls = args[4].Split(',');
const int BatchSize = 64;

set_num_threads(threads);
PreparedShard shard;
using (var reader = IdxLabeledReader.OpenMnist(Path.Combine(datasets, "mnist-train"), "train"))
    shard = reader.ReadShard(samples.Values.Max());

foreach (var model in new[] { "mlp", "cnn" })
{
    var n = samples[model];
    var buffer = shard.Features.Take(n * 784).Select(b => (float)b).ToArray();
    TransformSpec.Mnist().Apply(buffer);
    using var x = tensor(buffer, [n, 1, 28, 28]);
    using var y = tensor(shard.Labels.Take(n).Select(l => (long)l).ToArray());
    var hp = new HyperParameters { HiddenSizes = [128], Channels = [16, 32], LearningRate = 1e-3, BatchSize = BatchSize, Seed = 1 };
    foreach (var impl in impls)
    {
        manual_seed(1);
        using var net = ModelZoo.Get(model).Build(hp, [1, 28, 28], 10);
        using var optimizer = EpochTrainer.CreateOptimizer(net, hp);

        // Warm-up epoch on a slice: first-call allocations and kernel selection stay out of the timing.
        using (var wx = x.narrow(0, 0, Math.Min(n, 640)))
        using (var wy = y.narrow(0, 0, Math.Min(n, 640)))
            Run(impl, net, optimizer, wx, wy, 0);
        var epochs = model == "mlp" ? 4 : 1;
        var clock = Stopwatch.StartNew();
        for (var e = 1; e <= epochs; e++)
            Run(impl, net, optimizer, x, y, e);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RATE {model} {impl} {epochs * n / clock.Elapsed.TotalSeconds:F1}"));
    }
}

static void Run(string impl, Sequential net, OptimizerHelper optimizer, Tensor x, Tensor y, int epoch)
{
    if (impl == "worker")
    {
        EpochTrainer.TrainEpoch(net, optimizer, x, y, BatchSize, 1, epoch);
        return;
    }

    // The bare loop.
    net.train();
    var n = x.shape[0];
    using var generator = new Generator(42);
    using var perm = randperm(n, generator: generator);
    for (long start = 0; start < n; start += BatchSize)
    {
        using var scope = NewDisposeScope();
        var index = perm.narrow(0, start, Math.Min(BatchSize, n - start));
        optimizer.zero_grad();
        var loss = nn.functional.cross_entropy(net.forward(x.index_select(0, index)), y.index_select(0, index));
        loss.backward();
        optimizer.step();
    }
}
