using MlFunctions.Core.Imaging;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Training;
using MlFunctions.GpuWorker.Data;
using MlFunctions.GpuWorker.Models;
using MlFunctions.GpuWorker.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Training;

/// <summary>
/// Image-to-image denoising (<see cref="TrainingObjectives.Denoise"/>). Splits hold float samples [2, H, W]
/// (<see cref="CtDenoiseSamples"/>: channel 0 the noisy input, channel 1 the clean target, HU × 1e-3); the model maps
/// [n, 1, H, W] to [n, 1, H, W]; the loss is the MSE in those units. Held out: PSNR (primary) and SSIM through
/// <see cref="CtEvaluation"/> (body mask of the target, [−1000, 1000] HU window) and RMSE in HU over the same mask,
/// each the mean over held-out samples; the input's own scores (<c>lowdose_psnr</c>, …) are reported beside them so a
/// run shows what the model gained. Train and held-out samples may differ in H×W (patches vs slices).
/// </summary>
public sealed class DenoiseObjective : ITrainingObjective
{
    /// <summary>Parity bound on |Δ| between ONNX Runtime and TorchSharp: 1e-5 of the data's scale (HU × 1e-3, so ±1).</summary>
    public const double ParityTolerance = 1e-5;

    private const int EvalBatch = 16;
    private readonly Tensor _trainX, _trainY, _evalX, _evalY, _parityX;
    private readonly double _huScale;
    private readonly IReadOnlyList<(HuImage Low, HuImage Full)> _evalPairs;
    private readonly CtScore _inputScore;
    private readonly double _inputRmse;

    public DenoiseObjective(string loss, PreparedSplit train, PreparedSplit eval, PreparedSplit parity, HyperParameters hp, Device device, double huScale = CtPatches.DefaultHuScale)
    {
        Loss = loss;
        _huScale = huScale;
        (_trainX, _trainY) = Split(train, hp.MaxTrainSamples, device);
        (_evalX, _evalY) = Split(eval, 0, device);
        var (px, py) = Split(parity, 0, device);
        py.Dispose();
        _parityX = px;
        var (h, w) = (eval.SampleShape[1], eval.SampleShape[2]);
        _evalPairs = Enumerable.Range(0, eval.Count).Select(i => CtDenoiseSamples.Pair(eval.Floats!, i, h, w, huScale)).ToList();
        _inputScore = _evalPairs.Count == 0 ? default : CtEvaluation.Score(_evalPairs.Select(p => (p.Low, p.Full)));
        _inputRmse = _evalPairs.Count == 0 ? 0 : _evalPairs.Average(p => ImageMetrics.Rmse(p.Low, p.Full, ImageMetrics.BodyMask(p.Full)));
        Inputs = new ModelInputs(TrainingObjectives.Denoise, [1, train.SampleShape[1], train.SampleShape[2]], 1);
    }

    public string Task => TrainingObjectives.Denoise;

    public string Loss { get; }

    public ModelInputs Inputs { get; }

    public long TrainSamples => _trainX.shape[0];

    public bool ParityArgmax => false;

    public double ParityLimit => ParityTolerance;

    /// <summary>The low-dose input's own held-out scores: what the model must beat.</summary>
    public CtScore InputScore => _inputScore;

    /// <summary>A split of [n, 2, H, W] floats as (input [n, 1, H, W], target [n, 1, H, W]).</summary>
    private static (Tensor X, Tensor Y) Split(PreparedSplit split, int limit, Device device)
    {
        if (split.SampleShape.Length != 3 || split.SampleShape[0] != 2 || split.Floats is null)
            throw new InvalidDataException($"denoise needs float samples [2, H, W] (input and target channels); split '{split.Name}' has {(split.Floats is null ? "uint8" : "float")} samples of [{string.Join(",", split.SampleShape)}].");
        var n = limit > 0 ? Math.Min(limit, split.Count) : split.Count;
        var (h, w) = (split.SampleShape[1], split.SampleShape[2]);
        using var all = tensor(split.Floats.AsSpan(0, n * 2 * h * w).ToArray(), [n, 2, h, w]);
        return (all.narrow(1, 0, 1).contiguous().to(device), all.narrow(1, 1, 1).contiguous().to(device));
    }

    public (double Loss, double Seconds) TrainEpoch(nn.Module<Tensor, Tensor> model, OptimizerHelper optimizer, HyperParameters hp, int epoch, Action<long>? onBatch, CancellationToken cancellation)
    {
        var stored = (int)_trainX.shape[2];
        if (hp.PatchSize <= 0 || hp.PatchSize >= stored)
            return EpochTrainer.TrainEpoch(model, optimizer, _trainX, _trainY, hp.BatchSize, hp.Seed, epoch, onBatch, cancellation, Mse);
        if (hp.PatchSize < 8)
            throw new JobValidationException($"patchSize {hp.PatchSize} is below 8 pixels");

        // The sweep's patch size: a fresh random crop of every stored patch each epoch (seeded by epoch, so a resumed
        // job sees the same crops), so a smaller patch also acts as augmentation.
        var (x, y) = Crop(_trainX, _trainY, hp.PatchSize, Seeds.ForEpoch(hp.Seed, epoch, Seeds.ShuffleStream) ^ 0x5eed);
        using (x)
        using (y)
            return EpochTrainer.TrainEpoch(model, optimizer, x, y, hp.BatchSize, hp.Seed, epoch, onBatch, cancellation, Mse);
    }

    /// <summary>One random k×k crop of each [n, 1, H, W] input/target pair, at the same place in both.</summary>
    internal static (Tensor X, Tensor Y) Crop(Tensor x, Tensor y, int k, long seed)
    {
        var (n, h, w) = (x.shape[0], x.shape[2], x.shape[3]);
        var random = new Random(unchecked((int)seed));
        var xs = new Tensor[n];
        var ys = new Tensor[n];
        try
        {
            for (long i = 0; i < n; i++)
            {
                var (dy, dx) = (random.Next((int)(h - k + 1)), random.Next((int)(w - k + 1)));
                xs[i] = x[i].narrow(1, dy, k).narrow(2, dx, k);
                ys[i] = y[i].narrow(1, dy, k).narrow(2, dx, k);
            }

            return (stack(xs), stack(ys));
        }
        finally
        {
            foreach (var t in xs.Concat(ys))
                t?.Dispose();
        }
    }

    private static Tensor Mse(Tensor outputs, Tensor targets, nn.Reduction reduction) => nn.functional.mse_loss(outputs, targets, reduction);

    /// <summary>The model's outputs for inputs [n, 1, H, W], in batches, as HU slices.</summary>
    public static IReadOnlyList<HuImage> Denoise(nn.Module<Tensor, Tensor> model, Tensor inputs, double huScale = CtPatches.DefaultHuScale)
    {
        model.eval();
        using var noGrad = no_grad();
        var (n, h, w) = (inputs.shape[0], (int)inputs.shape[2], (int)inputs.shape[3]);
        var images = new List<HuImage>((int)n);
        for (long start = 0; start < n; start += EvalBatch)
        {
            using var scope = NewDisposeScope();
            var count = Math.Min(EvalBatch, n - start);
            var output = model.forward(inputs.narrow(0, start, count)).cpu().contiguous().data<float>().ToArray();
            for (var i = 0; i < count; i++)
                images.Add(CtPatches.FromTensor(output.AsSpan(i * h * w, h * w), w, h, huScale));
        }

        return images;
    }

    public EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model)
    {
        var n = _evalX.shape[0];
        if (n == 0)
            return new EvaluationResult(0, 0, null);
        double lossSum = 0;
        model.eval();
        using (no_grad())
        {
            for (long start = 0; start < n; start += EvalBatch)
            {
                using var scope = NewDisposeScope();
                var count = Math.Min(EvalBatch, n - start);
                lossSum += Mse(model.forward(_evalX.narrow(0, start, count)), _evalY.narrow(0, start, count), nn.Reduction.Sum).item<float>();
            }
        }

        var outputs = Denoise(model, _evalX, _huScale);
        var score = CtEvaluation.Score(outputs.Select((o, i) => (o, _evalPairs[i].Full)));
        var rmse = outputs.Select((o, i) => ImageMetrics.Rmse(o, _evalPairs[i].Full, ImageMetrics.BodyMask(_evalPairs[i].Full))).Average();
        var metrics = new Dictionary<string, double>
        {
            ["psnr"] = score.Psnr,
            ["ssim"] = score.Ssim,
            ["rmse_hu"] = rmse,
            ["lowdose_psnr"] = _inputScore.Psnr,
            ["lowdose_ssim"] = _inputScore.Ssim,
            ["lowdose_rmse_hu"] = _inputRmse,
        };
        return new EvaluationResult(lossSum / _evalX.numel(), score.Psnr, metrics);
    }

    public Tensor ParityBatch(int limit) => _parityX.narrow(0, 0, Math.Min(limit > 0 ? limit : _parityX.shape[0], _parityX.shape[0])).clone();

    public void Dispose()
    {
        _trainX.Dispose();
        _trainY.Dispose();
        _evalX.Dispose();
        _evalY.Dispose();
        _parityX.Dispose();
    }
}
