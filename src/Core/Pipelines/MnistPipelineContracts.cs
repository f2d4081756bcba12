using MlFunctions.Core.Datasets;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Core.Pipelines;

/// <summary>The sweep settings of the legacy <see cref="MnistPipelineInput"/> (the old MnistPipeline orchestration's input).</summary>
public sealed record MnistSweepSettings
{
    public string Algorithm { get; init; } = "tpe";

    public int MaxTrials { get; init; } = 8;

    public int ParallelTrials { get; init; } = 2;

    /// <summary>Epochs per trial (short: the sweep ranks configurations; the retrain trains for real).</summary>
    public int Epochs { get; init; } = 2;

    /// <summary>Training samples per trial epoch (0 = all): trials rank on a subsample to stay cheap.</summary>
    public int MaxTrainSamples { get; init; } = 12_000;

    /// <summary>False: the MLP space alone (no <c>model</c>, <c>channels</c> or <c>augment</c> parameter).</summary>
    public bool IncludeCnn { get; init; } = true;

    public long Seed { get; init; } = 1;
}

/// <summary>
/// The input of the former <c>MnistPipeline</c> orchestration, still accepted by <c>POST api/orchestrators/MnistPipeline</c>
/// so existing clients keep working: <see cref="ToSpec"/> maps it onto <see cref="BuiltInPipelines.Mnist"/>, and the run is a
/// <c>TrainingPipeline</c> (its output a <see cref="PipelineRunResult"/>). Its defaults are the old ones (12 retrain
/// epochs, where the built-in spec's default budget has 10), so an old request trains what it trained before.
/// </summary>
public sealed record MnistPipelineInput
{
    /// <summary>Where the raw IDX files are: folders on the host, or blobs (an upload).</summary>
    public required RegisterDatasetInput Dataset { get; init; }

    /// <summary>How train/val/test are made: by default MNIST's train pool split 90/10, and t10k as the test set.</summary>
    public PreparationRecipe Recipe { get; init; } = new() { Source = "train", TestSource = "t10k", TrainFraction = 0.9, ValFraction = 0.1, TestFraction = 0 };

    public MnistSweepSettings Sweep { get; init; } = new();

    /// <summary>Epochs of the final retrain on train+val.</summary>
    public int RetrainEpochs { get; init; } = 12;

    /// <summary>Training samples per retrain epoch (0 = all).</summary>
    public int RetrainMaxSamples { get; init; }

    /// <summary>The candidate must beat the champion's test accuracy by at least this much to be promoted.</summary>
    public double GateMargin { get; init; }

    public string ModelName { get; init; } = "mnist";

    /// <summary>Step caching for this run (off: every step runs).</summary>
    public bool Cache { get; init; } = true;

    /// <summary>Index in the test split of the image the smoke inference classifies.</summary>
    public int SmokeImageIndex { get; init; }

    /// <summary>What started the run: http, blob or timer (recorded in lineage and the report).</summary>
    public string Trigger { get; init; } = "http";

    /// <summary>The parameters only the CNN family reads: left out of the space when <see cref="MnistSweepSettings.IncludeCnn"/> is false.</summary>
    public static IReadOnlyList<string> CnnOnlyParameters { get; } = ["model", "channels", "augment"];

    /// <summary>The built-in MNIST spec with this input's data, recipe, budget, gate and names.</summary>
    public PipelineSpec ToSpec()
    {
        var mnist = BuiltInPipelines.Mnist;
        var space = mnist.Sweep.Parameters ?? [];
        return mnist with
        {
            Dataset = mnist.Dataset with
            {
                Name = Dataset.Name,
                SourceDirectories = Dataset.SourceDirectories,
                SourceContainer = Dataset.SourceContainer,
                SourcePrefix = Dataset.SourcePrefix,
                SourcePrefixes = Dataset.SourcePrefixes,
                Include = Dataset.Include,
                Source = Recipe.Source,
                TestSource = Recipe.TestSource,
                MaxSamples = Recipe.MaxSamples,
                MaxTestSamples = Recipe.MaxTestSamples,
            },
            Split = new PipelineSplit(Recipe.TrainFraction, Recipe.ValFraction, Recipe.TestFraction, Recipe.Seed),
            Sweep = mnist.Sweep with
            {
                Algorithm = Sweep.Algorithm,
                MaxTrials = Sweep.MaxTrials,
                ParallelTrials = Sweep.ParallelTrials,
                Epochs = Sweep.Epochs,
                MaxTrainSamples = Sweep.MaxTrainSamples,
                Seed = Sweep.Seed,
                Parameters = Sweep.IncludeCnn ? space : space.Where(p => !CnnOnlyParameters.Contains(p.Name)).ToList(),

                // MnistPipeline sized the random start-up of tpe and gp only.
                StartupFraction = Sweep.Algorithm is "tpe" or "gp" ? mnist.Sweep.StartupFraction : null,
            },
            RetrainEpochs = RetrainEpochs,
            RetrainMaxSamples = RetrainMaxSamples,
            Gate = mnist.Gate with { Margin = GateMargin },
            ModelName = ModelName,
            Cache = Cache,
            SmokeIndex = SmokeImageIndex,
            Trigger = Trigger,
            Budgets = null,
        };
    }
}

/// <summary>How a pipeline run ended (the name is historical: every TrainingPipeline run uses it).</summary>
public static class MnistPipelineOutcomes
{
    public const string Promoted = "Promoted";
    public const string GateRejected = "GateRejected";
}

/// <summary>The smoke inference: one named test image through the serving layer.</summary>
public sealed record SmokeInferenceResult(int ImageIndex, int TrueLabel, int Predicted, double Confidence, int ModelVersion, string Provider)
{
    /// <summary>A regressor's served prediction for the sample, in the label's units (null for a classifier).</summary>
    public double? Prediction { get; init; }

    /// <summary>A regressor's target for the sample, in the label's units (null for a classifier).</summary>
    public double? Target { get; init; }
}

/// <summary>
/// Input of <c>EvaluateModel</c>: an ONNX model scored through serving on one prepared split's raw inputs, with
/// <see cref="Transform"/> (a champion's own, from its registry record) or, when null, the prepared data's.
/// </summary>
public sealed record EvaluateModelInput(string OnnxUri, string OnnxSha256, PreparedDataRef Data, string Split = "test", int MaxSamples = 0, TransformSpec? Transform = null);

/// <summary>Accuracy and mean cross-entropy on the split, per-class accuracy, and the execution provider used.</summary>
public sealed record EvaluateModelResult(double Accuracy, double Loss, int Samples, IReadOnlyList<double> PerClassAccuracy, string Provider)
{
    /// <summary>Samples of each class in the evaluated split: a class with none has accuracy 0 there, which means "not measured".</summary>
    public IReadOnlyList<int> PerClassSamples { get; init; } = [];

    /// <summary>Every metric by its <see cref="Metrics.MetricNames"/> name: accuracy, loss, f1 and, for two classes, auc.</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    /// <summary>Pictures of evaluated samples for the run report (a CT denoiser's before/after slices); empty for other tasks.</summary>
    public IReadOnlyList<RunReportImage> Images { get; init; } = [];
}

/// <summary>
/// Input of <c>ExportModel</c>: the worker's ONNX export, copied into the model store under its content hash
/// (immutable, so a registry version never points at a checkpoint folder that retention may delete).
/// </summary>
public sealed record ExportModelInput(string Model, string OnnxUri, string OnnxSha256);

/// <summary>The exported artifact: its immutable URI, sha256 and signature as ONNX Runtime reads it.</summary>
public sealed record ExportModelResult(string ArtifactUri, string Sha256, ModelSignature Signature, long Bytes);

/// <summary>Input of <c>GetModelAlias</c>.</summary>
public sealed record GetModelAliasInput(string Model, string Alias);

/// <summary>Input of <c>RegisterModelVersion</c>. Idempotent: a version with the same sha256 and pipeline run is returned, not duplicated.</summary>
public sealed record RegisterModelVersionInput(string Model, ModelVersionDraft Draft);

/// <summary>Input of <c>MoveModelAlias</c>.</summary>
public sealed record MoveModelAliasInput(string Model, string Alias, int Version);

/// <summary>Input of <c>SmokeInference</c>: the test image at <see cref="ImageIndex"/> of <see cref="Split"/>, through the serving layer.</summary>
public sealed record SmokeInferenceInput(string Model, int Version, PreparedDataRef Data, string Split = "test", int ImageIndex = 0);

/// <summary>Input of <c>WriteRunReport</c>.</summary>
public sealed record WriteRunReportInput(string RunId, PipelineReport Report);

/// <summary>Where the report went.</summary>
public sealed record RunReportLocation(string JsonUri, string MarkdownUri);

/// <summary>The run report's content: outcome and metrics, the sweep table, lineage and timings.</summary>
public sealed record PipelineReport
{
    public required string RunId { get; init; }

    public required string Pipeline { get; init; }

    public required string Outcome { get; init; }

    public required string Reason { get; init; }

    public string Trigger { get; init; } = "http";

    public DateTime StartedAt { get; init; }

    public DateTime EndedAt { get; init; }

    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    public string? DatasetVersion { get; init; }

    public int? ModelVersion { get; init; }

    public SweepResult? Sweep { get; init; }

    public SmokeInferenceResult? Smoke { get; init; }

    public IReadOnlyList<StepRecord> Lineage { get; init; } = [];

    /// <summary>Pictures shown beside the metric table (the evaluate step's <see cref="EvaluateModelResult.Images"/>).</summary>
    public IReadOnlyList<RunReportImage> Images { get; init; } = [];
}

/// <summary>Custom status of a running pipeline: the current step and the numbers so far.</summary>
public sealed record PipelineProgress(string Step, int StepsRecorded, int StepsTotal, double? BestValAccuracy, double? TestAccuracy);
