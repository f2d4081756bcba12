using MlFunctions.Core.Transforms;

namespace MlFunctions.Core.Training;

/// <summary>
/// The message on the <c>training-jobs</c> queue. It crosses a process boundary (orchestration →
/// worker), so it is versioned: add fields with defaults, bump <see cref="SchemaVersion"/> when the
/// meaning of a field changes. Redelivering the same <see cref="JobId"/> resumes from its newest checkpoint.
/// </summary>
public sealed record TrainingJob
{
    public const int CurrentSchemaVersion = 1;

    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    /// <summary>Stable across redeliveries and re-dispatches; names the checkpoint folder.</summary>
    public required string JobId { get; init; }

    /// <summary>Model zoo key, e.g. "mlp" or "cnn".</summary>
    public required string Model { get; init; }

    public required HyperParameters Hyperparameters { get; init; }

    /// <summary>The prepared (transformed, split) dataset the worker trains on.</summary>
    public required PreparedDataRef Data { get; init; }

    /// <summary>
    /// The waiting orchestration's <c>sendEventPostUri</c> (Durable HTTP API, with its <c>{eventName}</c>
    /// placeholder): the worker POSTs <see cref="TrainingEvents"/> there. The same contract in Azure
    /// Functions and in the local host. The worker replaces <c>{eventName}</c> with
    /// <see cref="TrainingEvents.EventName"/>.
    /// </summary>
    public string? CallbackUri { get; init; }

    /// <summary>Which dispatch attempt this is (1-based); the worker reports it back.</summary>
    public int Attempt { get; init; } = 1;

    /// <summary>Tracking labels (pipeline run, sweep trial); copied to results and Kubernetes labels.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>Train on train+val (final retrain) instead of holding val out.</summary>
    public bool TrainOnValidation { get; init; }

    /// <summary>Export ONNX at the end (sweep trials may skip it).</summary>
    public bool ExportOnnx { get; init; } = true;

    /// <summary>
    /// k-fold cross-validation: train on train+val without this fold, validate on the fold. Null trains
    /// on train and validates on val.
    /// </summary>
    public CrossValidationFold? Fold { get; init; }

    /// <summary>
    /// The <see cref="TrainingObjectives"/> task ("classification", "ranking"); null takes the prepared data's
    /// (its manifest's <c>objective</c>), and data without one is classification, as before tasks existed.
    /// </summary>
    public string? Objective { get; init; }

    /// <summary>
    /// Population-based training's exploit step: when this job has no checkpoint of its own yet, it starts from the
    /// newest checkpoint of job <see cref="WarmStartFrom"/> (weights, optimizer state, epochs done and their history)
    /// with its own hyperparameters, instead of from a fresh network. The two must build the same network.
    /// </summary>
    public string? WarmStartFrom { get; init; }
}

/// <summary>
/// Fold <see cref="Index"/> (0-based) of <see cref="Count"/> over train+val (train's samples, then val's).
/// The assignment is stratified (<see cref="Datasets.StratifiedSplitter.Folds"/>, seed <see cref="AssignmentSeed"/>):
/// prepared splits keep the source's row order (a mailing list's is by month), so i mod k would not keep each fold's
/// class balance. The worker's folds and the pipeline's baselines both call <see cref="Assign"/>, so they are the same folds.
/// </summary>
public sealed record CrossValidationFold(int Index, int Count)
{
    public const long AssignmentSeed = 1;

    /// <summary>The fold of every sample, from the labels of train+val in order.</summary>
    public int[] Assign(ReadOnlySpan<int> labels) => Datasets.StratifiedSplitter.Folds(labels, Count, AssignmentSeed);
}

/// <summary>Model hyperparameters. Fields a model does not use are ignored by it.</summary>
public sealed record HyperParameters
{
    /// <summary>MLP hidden layer widths.</summary>
    public IReadOnlyList<int> HiddenSizes { get; init; } = [128];

    /// <summary>CNN convolution channels per block.</summary>
    public IReadOnlyList<int> Channels { get; init; } = [16, 32];

    public double Dropout { get; init; }

    public double LearningRate { get; init; } = 1e-3;

    public int BatchSize { get; init; } = 64;

    /// <summary>"adam" or "sgd" (SGD uses <see cref="Momentum"/>).</summary>
    public string Optimizer { get; init; } = "adam";

    public double Momentum { get; init; } = 0.9;

    public double WeightDecay { get; init; }

    public int Epochs { get; init; } = 2;

    /// <summary>
    /// "constant", or "cosine": the learning rate follows a half cosine from <see cref="LearningRate"/> to
    /// near zero over <see cref="Epochs"/>, set at each epoch's start from the epoch number alone, so a
    /// job resumed from a checkpoint continues on the same schedule.
    /// </summary>
    public string LrSchedule { get; init; } = "constant";

    public long Seed { get; init; } = 1;

    /// <summary>
    /// BatchNorm after each convolution (CNN) or hidden linear layer (MLP, CNN's hidden layer): batch statistics
    /// in training, the running statistics in evaluation, export and serving (ONNX BatchNormalization).
    /// </summary>
    public bool BatchNorm { get; init; }

    /// <summary>
    /// Image augmentation strength, 0 (off) to 1: each training batch gets a random affine transform per image of up
    /// to ±12°·s rotation, ±10%·s scale and ±3·s pixels shift on 28 px (scaled with the image). Drawn from a
    /// generator seeded by (seed, epoch), so a resumed job sees the same batches; never applied in evaluation or serving.
    /// </summary>
    public double Augment { get; init; }

    /// <summary>Cap on training samples per epoch (0 = all); keeps CI runs small.</summary>
    public int MaxTrainSamples { get; init; }

    /// <summary>The loss (<see cref="TrainingObjectives"/>: cross_entropy, bce, bpr, sampled_bce, mse); empty = the task's default.</summary>
    public string Loss { get; init; } = "";

    /// <summary>Recommenders: user and item embedding width.</summary>
    public int EmbeddingSize { get; init; } = 32;

    /// <summary>Recommenders: sampled negative items per observed pair (BPR and sampled BCE).</summary>
    public int Negatives { get; init; } = 4;

    /// <summary>Recommenders: k of the HR@k / NDCG@k reported each epoch (the first is the primary metric).</summary>
    public int TopK { get; init; } = 10;

    /// <summary>Denoisers: train on random crops of this size from the prepared patches (0 = the patches as prepared).</summary>
    public int PatchSize { get; init; }
}

/// <summary>Where a prepared dataset lives: its manifest is <c>{Container}/{Prefix}/manifest.json</c>.</summary>
public sealed record PreparedDataRef(string Container, string Prefix, string ContentHash);

/// <summary>
/// Metrics after one epoch, as the worker reports them. <see cref="ValAccuracy"/> is the task's primary held-out
/// metric, higher is better: accuracy for classification, HR@k for ranking (so sweeps over
/// <c>val_accuracy</c> work for every task); <see cref="ValMetrics"/> has every held-out metric by its
/// <see cref="Metrics.MetricNames"/> name (null from workers before tasks existed).
/// </summary>
public sealed record EpochMetrics(
    int Epoch,
    double TrainLoss,
    double ValLoss,
    double ValAccuracy,
    double SamplesPerSecond,
    double Seconds,
    IReadOnlyDictionary<string, double>? ValMetrics = null);

/// <summary>ONNX Runtime vs TorchSharp on a held-out batch.</summary>
public sealed record OnnxParity(double MaxAbsLogitDiff, bool ArgmaxIdentical, int BatchSize);

/// <summary>What a finished (or early-stopped) job produced.</summary>
public sealed record TrainingResult
{
    public required string JobId { get; init; }

    public required string Model { get; init; }

    /// <summary>The device actually used ("cuda" or "cpu").</summary>
    public required string Device { get; init; }

    public required IReadOnlyList<EpochMetrics> History { get; init; }

    public bool StoppedEarly { get; init; }

    /// <summary>Blob URI of the newest checkpoint.</summary>
    public string? CheckpointUri { get; init; }

    public string? OnnxUri { get; init; }

    public string? OnnxSha256 { get; init; }

    public OnnxParity? Parity { get; init; }

    /// <summary>Transform of the training data: serving applies it to raw inputs.</summary>
    public TransformSpec? Transform { get; init; }

    public long ParameterCount { get; init; }

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
}

/// <summary>
/// Worker → orchestration events. Every event is raised under the ONE Durable event name
/// <see cref="EventName"/> (POST to sendEventPostUri with {eventName} = "TrainingEvent"), and its body is a
/// <see cref="TrainingEvent"/> whose <see cref="TrainingEvent.Kind"/> is one of the constants below. One
/// name keeps the events in order in one queue, and the orchestration needs a single waiter.
/// </summary>
public static class TrainingEvents
{
    /// <summary>The Durable external-event name for everything about a training job.</summary>
    public const string EventName = "TrainingEvent";

    /// <summary>After each epoch: metrics so far (also a heartbeat).</summary>
    public const string Progress = "TrainingProgress";

    /// <summary>Sent during long epochs so the orchestration's deadline does not expire.</summary>
    public const string Heartbeat = "TrainingHeartbeat";

    public const string Completed = "TrainingCompleted";

    public const string Failed = "TrainingFailed";

    /// <summary>Honoured a stop request at an epoch boundary; carries the result so far.</summary>
    public const string Stopped = "TrainingStopped";

    /// <summary>Sent by a parent (e.g. a sweep's early stopping) to the TrainModel orchestration, not by the worker.</summary>
    public const string StopRequested = "StopRequested";
}

/// <summary>One event from the worker. Exactly the fields that belong to its kind are set.</summary>
public sealed record TrainingEvent
{
    public required string JobId { get; init; }

    public required string Kind { get; init; }

    public int Attempt { get; init; } = 1;

    public EpochMetrics? Metrics { get; init; }

    public TrainingResult? Result { get; init; }

    /// <summary>A reason a person can act on, for Failed.</summary>
    public string? Error { get; init; }

    public DateTimeOffset At { get; init; } = DateTimeOffset.UtcNow;
}

/// <summary>Queue and blob names shared by the dispatcher, the worker and the deployment manifests.</summary>
public static class TrainingStorage
{
    public const string JobsQueue = "training-jobs";
    public const string PoisonQueue = "training-jobs-poison";
    public const string CheckpointsContainer = "checkpoints";
    public const string ModelsContainer = "models";

    /// <summary>Per-job folder in the checkpoints container: epochs, status and the stop marker.</summary>
    public static string JobFolder(string jobId) => $"jobs/{jobId}";

    public static string StatusBlob(string jobId) => $"{JobFolder(jobId)}/status.json";

    /// <summary>Written by the orchestration (activity) to ask the worker to stop at the next epoch boundary.</summary>
    public static string StopBlob(string jobId) => $"{JobFolder(jobId)}/stop";
}
