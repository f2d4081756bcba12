using MlFunctions.Core.Training;

namespace MlFunctions.Core.Sweeps;

/// <summary>
/// Turns a suggestion into the training job of a trial: the one place where search-space parameter
/// names meet <see cref="HyperParameters"/>.
/// </summary>
public static class TrialJobs
{
    /// <summary>Parameter names a real (training) trial understands.</summary>
    public static readonly IReadOnlyList<string> Parameters =
    [
        "model", "learningRate", "batchSize", "dropout", "weightDecay", "momentum", "optimizer", "epochs",
        "hiddenSize", "hiddenLayers", "channels", "embeddingSize", "negatives", "loss",
        "batchNorm", "augment",
        "depth", "width", "patchSize",
    ];

    /// <summary>
    /// The template job with the trial's parameters applied. <paramref name="budget"/> (Hyperband's
    /// epochs) overrides the epochs. <c>hiddenSize</c>×<c>hiddenLayers</c> gives the MLP's widths and
    /// <c>channels</c> the CNN's first block (the second doubles it), so a search space stays a few scalars.
    /// </summary>
    public static TrainingJob ForTrial(TrainingJob template, string jobId, ParameterSet p, int? budget, IReadOnlyDictionary<string, string> labels)
    {
        var hp = template.Hyperparameters;
        if (p.ContainsKey("learningRate"))
            hp = hp with { LearningRate = p.GetDouble("learningRate") };
        if (p.ContainsKey("batchSize"))
            hp = hp with { BatchSize = p.GetInt("batchSize") };
        if (p.ContainsKey("dropout"))
            hp = hp with { Dropout = p.GetDouble("dropout") };
        if (p.ContainsKey("weightDecay"))
            hp = hp with { WeightDecay = p.GetDouble("weightDecay") };
        if (p.ContainsKey("momentum"))
            hp = hp with { Momentum = p.GetDouble("momentum") };
        if (p.TryGetValue("optimizer", out var optimizer))
            hp = hp with { Optimizer = optimizer };
        if (p.ContainsKey("epochs"))
            hp = hp with { Epochs = p.GetInt("epochs") };
        if (p.ContainsKey("hiddenSize") || p.ContainsKey("hiddenLayers"))
        {
            var width = p.ContainsKey("hiddenSize") ? p.GetInt("hiddenSize") : hp.HiddenSizes.FirstOrDefault(128);
            var layers = p.ContainsKey("hiddenLayers") ? p.GetInt("hiddenLayers") : Math.Max(1, hp.HiddenSizes.Count);
            hp = hp with { HiddenSizes = Enumerable.Repeat(width, layers).ToArray() };
        }

        if (p.ContainsKey("channels"))
        {
            var c = p.GetInt("channels");
            hp = hp with { Channels = [c, 2 * c] };
        }

        // The DnCNN denoiser (#14): depth counts convs, so depth d has d − 1 hidden widths; patchSize crops the prepared patches.
        if (p.ContainsKey("depth") || p.ContainsKey("width"))
        {
            var width = p.ContainsKey("width") ? p.GetInt("width") : hp.Channels.FirstOrDefault(32);
            var depth = p.ContainsKey("depth") ? p.GetInt("depth") : hp.Channels.Count + 1;
            hp = hp with { Channels = Enumerable.Repeat(width, Math.Max(1, depth - 1)).ToArray() };
        }

        if (p.ContainsKey("patchSize"))
            hp = hp with { PatchSize = p.GetInt("patchSize") };

        if (p.ContainsKey("embeddingSize"))
            hp = hp with { EmbeddingSize = p.GetInt("embeddingSize") };
        if (p.ContainsKey("negatives"))
            hp = hp with { Negatives = p.GetInt("negatives") };
        if (p.TryGetValue("loss", out var loss))
            hp = hp with { Loss = loss };

        if (p.TryGetValue("batchNorm", out var batchNorm))
            hp = hp with { BatchNorm = bool.TryParse(batchNorm, out var on) ? on : throw new ArgumentException($"parameter batchNorm must be true or false, got '{batchNorm}'") };
        if (p.ContainsKey("augment"))
            hp = hp with { Augment = p.GetDouble("augment") };

        if (budget is { } epochs)
            hp = hp with { Epochs = epochs };

        var merged = new Dictionary<string, string>(template.Labels, StringComparer.Ordinal);
        foreach (var (k, v) in labels)
            merged[k] = v;

        return template with
        {
            JobId = jobId,
            Model = p.TryGetValue("model", out var model) ? model : template.Model,
            Hyperparameters = hp,
            Labels = merged,
            Attempt = 1,
            CallbackUri = null,
        };
    }
}

/// <summary>Metric names, the same in trials, tracking and the sweep spec (MLflow-style snake_case keys).</summary>
public static class TrialMetrics
{
    public const string TrainLoss = "train_loss";
    public const string ValLoss = "val_loss";
    public const string ValAccuracy = "val_accuracy";
    public const string SamplesPerSecond = "samples_per_second";
    public const string ParameterCount = "parameter_count";
    public const string EpochSeconds = "epoch_seconds";

    public static readonly IReadOnlyList<string> TrainingMetricNames = [TrainLoss, ValLoss, ValAccuracy, SamplesPerSecond, ParameterCount, EpochSeconds];

    /// <summary>One epoch's metrics as named values.</summary>
    public static IReadOnlyDictionary<string, double> Of(EpochMetrics m)
    {
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            [TrainLoss] = m.TrainLoss,
            [ValLoss] = m.ValLoss,
            [ValAccuracy] = m.ValAccuracy,
            [SamplesPerSecond] = m.SamplesPerSecond,
            [EpochSeconds] = m.Seconds,
        };

        // Task metrics (hr@10, ndcg@10, rmse …) under "val_{name}", so a sweep can target any of them.
        foreach (var (name, value) in m.ValMetrics ?? new Dictionary<string, double>())
            metrics.TryAdd($"val_{name}", value);
        return metrics;
    }

    /// <summary>A finished training job as a trial outcome: per-epoch history, final metrics, artifacts.</summary>
    public static TrialOutcome FromTraining(string trialId, TrainingResult r)
    {
        var history = r.History.Select(h => new MetricStep(h.Epoch, Of(h))).ToList();
        var final = new Dictionary<string, double>(history.LastOrDefault()?.Metrics ?? new Dictionary<string, double>(), StringComparer.Ordinal)
        {
            [ParameterCount] = r.ParameterCount,
        };
        var artifacts = new Dictionary<string, string>(StringComparer.Ordinal);
        if (r.CheckpointUri is not null)
            artifacts["checkpoint"] = r.CheckpointUri;
        if (r.OnnxUri is not null)
            artifacts["onnx"] = r.OnnxUri;
        if (r.OnnxSha256 is not null)
            artifacts["onnx_sha256"] = r.OnnxSha256;
        return new TrialOutcome(trialId, r.StoppedEarly ? TrialState.EarlyStopped : TrialState.Succeeded, final, history, artifacts)
        {
            Device = r.Device,
        };
    }
}
