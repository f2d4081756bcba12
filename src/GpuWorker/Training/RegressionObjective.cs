using MlFunctions.Core.Metrics;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;
using MlFunctions.GpuWorker.Data;
using MlFunctions.GpuWorker.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Training;

/// <summary>
/// Regression on a table (<see cref="TrainingObjectives.Regression"/>). A prepared sample is [F + 1] floats: the
/// features encoded by the fitted <see cref="TabularTransform"/>, then the target standardized on the train split
/// (<see cref="TargetScaling"/>). The model maps [n, F] to [n, 1]; the loss is the MSE of the standardized target, so
/// a learning rate that suits one table suits another whatever the label's units. Held out: RMSE, MAE and R² in the
/// label's units (<see cref="RegressionMetrics"/>, predictions un-standardized first), reported per epoch as
/// <c>val_rmse</c>, <c>val_mae</c>, <c>val_r2</c>; the primary (higher is better, reported as ValAccuracy) is R².
/// </summary>
public sealed class RegressionObjective : ITrainingObjective
{
    private readonly Tensor _trainX, _trainY, _evalX, _evalY, _parityX;
    private readonly TargetScaling _target;

    public RegressionObjective(string loss, PreparedDataset data, PreparedSplit train, PreparedSplit eval, PreparedSplit parity, HyperParameters hp, Device device)
    {
        if (data.Transform.Tabular is not { Target: { } target } table)
            throw new InvalidDataException("regression needs a prepared table with a fitted target scaling (a tabular transform with \"target\"); prepare the data with task regression.");
        var width = table.FeatureCount;
        if (train.Floats is null || !train.SampleShape.SequenceEqual([width + 1]))
            throw new InvalidDataException($"regression needs float samples [features + target] = [{width + 1}]; split '{train.Name}' has {(train.Floats is null ? "uint8" : "float")} samples of [{string.Join(",", train.SampleShape)}].");
        Loss = loss;
        _target = target;
        (_trainX, _trainY) = Split(train, data.Transform, width, device, hp.MaxTrainSamples);
        if (hp.BatchNorm && hp.BatchSize > 1 && _trainX.shape[0] % hp.BatchSize == 1)
        {
            // As for classification: BatchNorm1d refuses a last batch of one sample, so that one sample is dropped.
            var keep = _trainX.shape[0] - 1;
            (_trainX, _trainY) = (Narrowed(_trainX, keep), Narrowed(_trainY, keep));
        }

        (_evalX, _evalY) = Split(eval, data.Transform, width, device, 0);
        (_parityX, var parityY) = Split(parity, data.Transform, width, device, 0);
        parityY.Dispose();
        Inputs = new ModelInputs(TrainingObjectives.Regression, [width], 1);
    }

    public string Task => TrainingObjectives.Regression;

    public string Loss { get; }

    public ModelInputs Inputs { get; }

    public long TrainSamples => _trainX.shape[0];

    public bool ParityArgmax => false;

    /// <summary>(features [n, F], standardized target [n, 1]) of a split of [n, F + 1].</summary>
    private static (Tensor X, Tensor Y) Split(PreparedSplit split, TransformSpec transform, int width, Device device, int limit)
    {
        if (split.Count > 0 && (split.Floats is null || !split.SampleShape.SequenceEqual([width + 1])))
            throw new InvalidDataException($"regression split '{split.Name}' has samples of [{string.Join(",", split.SampleShape)}], not [{width + 1}].");
        if (split.Count == 0)
            return (zeros(0, width, device: device), zeros(0, 1, device: device));
        var (all, labels) = split.ToTensors(transform, CPU, limit);
        labels.Dispose();
        using (all)
            return (all.narrow(1, 0, width).contiguous().to(device), all.narrow(1, width, 1).contiguous().to(device));
    }

    private static Tensor Narrowed(Tensor t, long count)
    {
        var kept = t.narrow(0, 0, count).clone();
        t.Dispose();
        return kept;
    }

    private static Tensor Mse(Tensor outputs, Tensor targets, nn.Reduction reduction) => nn.functional.mse_loss(outputs, targets, reduction);

    public (double Loss, double Seconds) TrainEpoch(nn.Module<Tensor, Tensor> model, OptimizerHelper optimizer, HyperParameters hp, int epoch, Action<long>? onBatch, CancellationToken cancellation) =>
        EpochTrainer.TrainEpoch(model, optimizer, _trainX, _trainY, hp.BatchSize, hp.Seed, epoch, onBatch, cancellation, Mse);

    public EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model)
    {
        var n = _evalX.shape[0];
        var metrics = new RegressionMetrics();
        if (n == 0)
            return new EvaluationResult(0, 0, metrics.ToDictionary());
        model.eval();
        float[] predicted, actual;
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            predicted = model.forward(_evalX).to(CPU).to_type(ScalarType.Float32).data<float>().ToArray();
            actual = _evalY.to(CPU).data<float>().ToArray();
        }

        double standardizedSquares = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            var d = (double)predicted[i] - actual[i];
            standardizedSquares += d * d;
            metrics.Add(_target.Unstandardize(predicted[i]), _target.Unstandardize(actual[i]));
        }

        // The loss stays in the units the model trains in (standardized), comparable with train_loss.
        return new EvaluationResult(standardizedSquares / actual.Length, metrics.R2, metrics.ToDictionary());
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
