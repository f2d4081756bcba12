using System.Diagnostics;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Recommenders;
using MlFunctions.Core.Training;
using MlFunctions.GpuWorker.Data;
using MlFunctions.GpuWorker.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Training;

/// <summary>A held-out pass: the loss, the primary metric (higher is better; reported as ValAccuracy) and every metric by name.</summary>
public sealed record EvaluationResult(double Loss, double Primary, IReadOnlyDictionary<string, double>? Metrics);

/// <summary>
/// A training task as the worker runs it: it owns the batch shape (what the model's input and target tensors hold,
/// built from the prepared splits), the loss and the held-out metrics (computed by the shared Core/Metrics classes).
/// The runner around it (checkpoints, resume, events, export) is the same for every task. To add a task (regression,
/// image-to-image denoising): implement this interface, add its name to <see cref="TrainingObjectives"/> and a case
/// to <see cref="TrainingObjective.Create"/>.
/// </summary>
public interface ITrainingObjective : IDisposable
{
    string Task { get; }

    string Loss { get; }

    /// <summary>What the model is built for.</summary>
    ModelInputs Inputs { get; }

    /// <summary>Training samples per epoch (progress and samples/s).</summary>
    long TrainSamples { get; }

    (double Loss, double Seconds) TrainEpoch(nn.Module<Tensor, Tensor> model, OptimizerHelper optimizer, HyperParameters hp, int epoch, Action<long>? onBatch, CancellationToken cancellation);

    EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model);

    /// <summary>Up to <paramref name="limit"/> held-out model inputs for the ONNX parity check (the caller disposes).</summary>
    Tensor ParityBatch(int limit);

    /// <summary>Whether parity also requires identical per-row arg-max (classification logits).</summary>
    bool ParityArgmax { get; }

    /// <summary>The largest |Δ| between ONNX Runtime's and TorchSharp's outputs the export may show.</summary>
    double ParityLimit => Onnx.OnnxParityCheck.MaxAbsLogitDiffLimit;

    /// <summary>The hyperparameters the optimizer is built with (a task may take over a setting, e.g. weight decay as a per-batch penalty).</summary>
    HyperParameters OptimizerSettings(HyperParameters hp) => hp;
}

public static class TrainingObjective
{
    /// <summary>The objective for <paramref name="task"/> over these splits; throws <see cref="JobValidationException"/> for a task or loss this worker cannot train.</summary>
    public static ITrainingObjective Create(string task, PreparedDataset data, PreparedSplit train, PreparedSplit eval, PreparedSplit parity, HyperParameters hp, Device device)
    {
        string loss;
        try
        {
            loss = TrainingObjectives.LossFor(task, hp.Loss);
        }
        catch (ArgumentException e)
        {
            throw new JobValidationException(e.Message);
        }

        return TrainingObjectives.Normalize(task) switch
        {
            TrainingObjectives.Classification => new ClassificationObjective(loss, data, train, eval, parity, hp, device),
            TrainingObjectives.Ranking => new RankingObjective(loss, data, train, eval, parity, hp, device),
            TrainingObjectives.Denoise => new DenoiseObjective(loss, train, eval, parity, hp, device),
            TrainingObjectives.Regression => new RegressionObjective(loss, data, train, eval, parity, hp, device),
            var other => throw new JobValidationException($"task '{other}' is not trained by this worker yet (it trains {TrainingObjectives.Classification}, {TrainingObjectives.Regression}, {TrainingObjectives.Ranking} and {TrainingObjectives.Denoise})."),
        };
    }
}

/// <summary>Int class labels, logits out, cross-entropy (or one-vs-all BCE), accuracy: exactly the worker before tasks existed.</summary>
public sealed class ClassificationObjective : ITrainingObjective
{
    private readonly Tensor _trainX, _trainY, _evalX, _evalY;
    private readonly PreparedDataset _data;
    private readonly PreparedSplit _parity;
    private readonly Device _device;
    private readonly EpochTrainer.LossFunction _loss;

    public ClassificationObjective(string loss, PreparedDataset data, PreparedSplit train, PreparedSplit eval, PreparedSplit parity, HyperParameters hp, Device device)
    {
        ImageAugmentation.Validate(hp.Augment, train.SampleShape);
        Loss = loss;
        _data = data;
        _parity = parity;
        _device = device;
        var classes = data.Classes;
        _loss = loss == TrainingObjectives.BinaryCrossEntropy
            ? (logits, labels, reduction) =>
            {
                using var targets = nn.functional.one_hot(labels, classes).to_type(ScalarType.Float32);
                var sum = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction: nn.Reduction.Sum) / classes;
                return reduction == nn.Reduction.Sum ? sum : sum / logits.shape[0];
            }
            : EpochTrainer.CrossEntropy;
        (_trainX, _trainY) = train.ToTensors(data.Transform, device, hp.MaxTrainSamples);
        if (hp.BatchNorm && hp.BatchSize > 1 && _trainX.shape[0] % hp.BatchSize == 1)
        {
            // A last batch of one sample has no batch variance: BatchNorm1d refuses it. Drop that one sample (of
            // the same prepared order every epoch, so runs stay reproducible) rather than fail the job.
            var keep = _trainX.shape[0] - 1;
            (_trainX, _trainY) = (Narrowed(_trainX, keep), Narrowed(_trainY, keep));
        }

        (_evalX, _evalY) = eval.ToTensors(data.Transform, device);
        Inputs = new ModelInputs(TrainingObjectives.Classification, train.SampleShape, data.Classes);
    }

    private static Tensor Narrowed(Tensor t, long count)
    {
        var kept = t.narrow(0, 0, count).clone();
        t.Dispose();
        return kept;
    }

    public string Task => TrainingObjectives.Classification;

    public string Loss { get; }

    public ModelInputs Inputs { get; }

    public long TrainSamples => _trainX.shape[0];

    public bool ParityArgmax => true;

    public (double Loss, double Seconds) TrainEpoch(nn.Module<Tensor, Tensor> model, OptimizerHelper optimizer, HyperParameters hp, int epoch, Action<long>? onBatch, CancellationToken cancellation)
    {
        using var augmentation = ImageAugmentation.ForEpoch(hp.Augment, hp.Seed, epoch);
        return EpochTrainer.TrainEpoch(model, optimizer, _trainX, _trainY, hp.BatchSize, hp.Seed, epoch, onBatch, cancellation, _loss, augmentation is null ? null : augmentation.Apply);
    }

    public EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model)
    {
        var (loss, accuracy) = EpochTrainer.Evaluate(model, _evalX, _evalY, lossFunction: _loss);
        return new EvaluationResult(loss, accuracy, _data.Classes == 2 ? BinaryMetrics(model) : null);
    }

    /// <summary>
    /// Two classes: ROC AUC and F1 of the held-out logits (<see cref="ClassificationMetrics"/>, as evaluation and the
    /// gate compute them), so cross-validation folds report AUC as <c>val_auc</c>. One extra forward pass over the
    /// held-out split (a few hundred rows for a text or tabular job); multi-class jobs (MNIST) skip it.
    /// </summary>
    private Dictionary<string, double> BinaryMetrics(nn.Module<Tensor, Tensor> model)
    {
        var n = _evalX.shape[0];
        var metrics = new ClassificationMetrics(2);
        if (n == 0)
            return new Dictionary<string, double>(StringComparer.Ordinal);
        model.eval();
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            var logits = model.forward(_evalX).to(CPU).to_type(ScalarType.Float32).data<float>().ToArray();
            var labels = _evalY.to(CPU).data<long>().ToArray();
            for (var i = 0; i < labels.Length; i++)
                metrics.Add(logits.AsSpan(i * 2, 2), (int)labels[i]);
        }

        return metrics.ToDictionary().Where(kv => kv.Key is MetricNames.Auc or MetricNames.F1).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
    }

    public Tensor ParityBatch(int limit)
    {
        var (x, y) = _parity.ToTensors(_data.Transform, _device, limit);
        y.Dispose();
        return x;
    }

    public void Dispose()
    {
        _trainX.Dispose();
        _trainY.Dispose();
        _evalX.Dispose();
        _evalY.Dispose();
    }
}

/// <summary>
/// Implicit-feedback ranking. Splits hold float rows (user, item, weight); the model maps int64 (user, item) pairs
/// to a score. Each step takes a batch of observed pairs and <see cref="HyperParameters.Negatives"/> uniformly
/// sampled items per pair for the same user (seeded by seed and epoch): BPR, −log σ(s⁺ − s⁻); sampled BCE, positives
/// 1 and negatives 0 on σ(s); or MSE on the same targets. Held out: HR@k and NDCG@k of each held-out user's items
/// over the full catalogue with the training items excluded (<see cref="RankingMetrics"/>).
/// </summary>
public sealed class RankingObjective : ITrainingObjective
{
    private const int NegativeStream = 3;
    private const int ScoreBatchUsers = 64;
    private readonly Tensor _pairs;
    private readonly Tensor _evalPairs;
    private readonly Tensor _parityPairs;
    private readonly RankingProblem _problem;
    private readonly int _negatives;
    private readonly int _k;
    private readonly long _seed;

    public RankingObjective(string loss, PreparedDataset data, PreparedSplit train, PreparedSplit eval, PreparedSplit parity, HyperParameters hp, Device device)
    {
        if (data.Transform.Interactions is not { } ids)
            throw new InvalidDataException("ranking needs prepared interactions: the transform has no user and item id maps.");
        if (!train.SampleShape.SequenceEqual([3]) || train.Floats is null)
            throw new InvalidDataException($"ranking needs interaction rows (user, item, weight); split '{train.Name}' has samples of [{string.Join(",", train.SampleShape)}].");
        Loss = loss;
        _negatives = Math.Max(1, hp.Negatives);
        _k = Math.Max(1, hp.TopK);
        _seed = hp.Seed;
        var trainRows = Rows(train, hp.MaxTrainSamples);
        var evalRows = Rows(eval, 0);
        _problem = new RankingProblem(ids.Users.Count, ids.Items.Count, trainRows, evalRows.Select(r => (r.User, r.Item)).ToList());
        _pairs = ToPairs(trainRows.Select(r => (r.User, r.Item)), device);
        _evalPairs = ToPairs(evalRows.Select(r => (r.User, r.Item)), device);
        _parityPairs = ToPairs(Rows(parity, 0).Select(r => (r.User, r.Item)), device);
        Inputs = new ModelInputs(TrainingObjectives.Ranking, [2], 1, ids.Users.Count, ids.Items.Count);
    }

    public string Task => TrainingObjectives.Ranking;

    public string Loss { get; }

    public ModelInputs Inputs { get; }

    public long TrainSamples => _pairs.shape[0];

    public bool ParityArgmax => false;

    /// <summary>Weight decay becomes the per-batch embedding penalty (<see cref="IPairRegularized"/>) of models that have one.</summary>
    public HyperParameters OptimizerSettings(HyperParameters hp) => hp with { WeightDecay = 0 };

    private static List<(int User, int Item, float Weight)> Rows(PreparedSplit split, int limit)
    {
        var n = limit > 0 ? Math.Min(limit, split.Count) : split.Count;
        var f = split.Floats ?? [];
        var rows = new List<(int, int, float)>(n);
        for (var i = 0; i < n; i++)
            rows.Add(((int)f[3 * i], (int)f[(3 * i) + 1], f[(3 * i) + 2]));
        return rows;
    }

    private static Tensor ToPairs(IEnumerable<(int User, int Item)> pairs, Device device)
    {
        var flat = pairs.SelectMany(p => new long[] { p.User, p.Item }).ToArray();
        return tensor(flat, [flat.Length / 2, 2]).to(device);
    }

    /// <summary>The loss of a batch of observed pairs against sampled negatives.</summary>
    private Tensor BatchLoss(nn.Module<Tensor, Tensor> model, Tensor positives, Generator generator, double regularization = 0)
    {
        var b = positives.shape[0];
        var users = positives.select(1, 0).repeat_interleave(_negatives);
        var negativeItems = randint(0, Inputs.Items, [b * _negatives], generator: generator, dtype: ScalarType.Int64).to(positives.device);
        var negatives = stack([users, negativeItems], 1);
        var all = cat([positives, negatives], 0);
        var scores = model.forward(all);
        var penalty = regularization > 0 && model is IPairRegularized r ? r.Penalty(all) * (regularization / b) : null;
        var loss = RankingLoss(scores, b);
        return penalty is null ? loss : loss + penalty;
    }

    private Tensor RankingLoss(Tensor scores, long b)
    {
        var positive = scores.narrow(0, 0, b);
        var negative = scores.narrow(0, b, b * _negatives);
        switch (Loss)
        {
            case TrainingObjectives.Bpr:
                return -nn.functional.logsigmoid(positive.repeat_interleave(_negatives) - negative).mean();
            default:
            {
                var targets = cat([ones(b, device: scores.device), zeros(b * _negatives, device: scores.device)]);
                return Loss == TrainingObjectives.MeanSquaredError
                    ? nn.functional.mse_loss(scores, targets)
                    : nn.functional.binary_cross_entropy_with_logits(scores, targets);
            }
        }
    }

    public (double Loss, double Seconds) TrainEpoch(nn.Module<Tensor, Tensor> model, OptimizerHelper optimizer, HyperParameters hp, int epoch, Action<long>? onBatch, CancellationToken cancellation)
    {
        var n = _pairs.shape[0];
        manual_seed(Seeds.ForEpoch(hp.Seed, epoch, Seeds.DropoutStream));
        using var shuffle = new Generator((ulong)Seeds.ForEpoch(hp.Seed, epoch, Seeds.ShuffleStream));
        using var sampler = new Generator((ulong)Seeds.ForEpoch(hp.Seed, epoch, NegativeStream));
        using var permutation = randperm(n, generator: shuffle).to(_pairs.device);
        double lossSum = 0;
        model.train();
        var clock = Stopwatch.StartNew();
        for (long start = 0; start < n; start += hp.BatchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var count = Math.Min(hp.BatchSize, n - start);
            var batch = _pairs.index_select(0, permutation.narrow(0, start, count));
            optimizer.zero_grad();
            var loss = BatchLoss(model, batch, sampler, hp.WeightDecay);
            loss.backward();
            optimizer.step();
            lossSum += loss.item<float>() * count;
            onBatch?.Invoke(start + count);
        }

        return (n == 0 ? 0 : lossSum / n, clock.Elapsed.TotalSeconds);
    }

    public EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model)
    {
        model.eval();
        using var noGrad = no_grad();
        double loss = 0;
        if (_evalPairs.shape[0] > 0)
        {
            // Negatives fixed by the seed alone: the held-out loss of two epochs compares the same sample.
            using var sampler = new Generator((ulong)Seeds.ForEpoch(_seed, 0, NegativeStream));
            using var scope = NewDisposeScope();
            loss = BatchLoss(model, _evalPairs, sampler).item<float>();
        }

        var scores = ScoreUsers(model, _problem.HeldOut.Keys.Order().ToArray(), Inputs.Items, _evalPairs.device);
        var metrics = _problem.Evaluate(_k, u => scores[u]);
        return new EvaluationResult(loss, metrics.HitRate, metrics.ToDictionary());
    }

    /// <summary>Every item's score for each of <paramref name="users"/>, in batches of users (the full-catalogue ranking input).</summary>
    public static Dictionary<int, float[]> ScoreUsers(nn.Module<Tensor, Tensor> model, IReadOnlyList<int> users, int items, Device device)
    {
        model.eval();
        using var noGrad = no_grad();
        var result = new Dictionary<int, float[]>(users.Count);
        using var itemIndex = arange(items, dtype: ScalarType.Int64, device: device);
        for (var start = 0; start < users.Count; start += ScoreBatchUsers)
        {
            using var scope = NewDisposeScope();
            var chunk = users.Skip(start).Take(ScoreBatchUsers).ToArray();
            var u = tensor(chunk.Select(x => (long)x).ToArray(), device: device).repeat_interleave(items);
            var i = itemIndex.repeat(chunk.Length);
            var all = model.forward(stack([u, i], 1)).cpu().data<float>().ToArray();
            for (var c = 0; c < chunk.Length; c++)
                result[chunk[c]] = all.AsSpan(c * items, items).ToArray();
        }

        return result;
    }

    public Tensor ParityBatch(int limit) => _parityPairs.narrow(0, 0, Math.Min(limit > 0 ? limit : _parityPairs.shape[0], _parityPairs.shape[0])).clone();

    public void Dispose()
    {
        _pairs.Dispose();
        _evalPairs.Dispose();
        _parityPairs.Dispose();
    }
}
