using System.Globalization;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Core.Pipelines;

/// <summary>The kinds of data a pipeline spec can name.</summary>
public static class DatasetKinds
{
    /// <summary>CSV files with a header (or c0..cN-1 without): named numeric and categorical columns and a label.</summary>
    public const string Tabular = "tabular";

    /// <summary>Labeled images: IDX arrays ({prefix}-images-idx3-ubyte with {prefix}-labels-idx1-ubyte), PNG folders
    /// ({split?}/{label}/*.png) or a CSV of pixels (label,p0,p1,…); spec section <c>images</c>.</summary>
    public const string Images = "images";

    /// <summary>(user, item, weight, time) rows, or a transaction log such as UCI Online Retail: a recommender.</summary>
    public const string Interactions = "interactions";

    /// <summary>Labeled documents: a CSV with text columns (columns.text), or mbox archives (*.mbox), read into one row per
    /// non-bot thread start with the text and metadata fields and the label "answered" (see <c>MailingListTable</c>).</summary>
    public const string Text = "text";

    /// <summary>CT slice pairs (#14): PNG16 low/full-dose pairs with JSON sidecars, read or simulated (spec section <c>ct</c>); a denoiser.</summary>
    public const string Ct = "ct";

    public static IReadOnlyList<string> All { get; } = [Tabular, Images, Text, Interactions, Ct];

    /// <summary>Kinds whose data is a table of named fields (encoded by a <see cref="TabularTransform"/>).</summary>
    public static bool IsTable(string kind) => kind is Tabular or Text;
}

/// <summary>Where a pipeline's data is and what it is.</summary>
public sealed record PipelineDataset
{
    public string Kind { get; init; } = DatasetKinds.Tabular;

    /// <summary>The registered dataset's name (default: the pipeline's).</summary>
    public string? Name { get; init; }

    public IReadOnlyList<string> SourceDirectories { get; init; } = [];

    public string? SourceContainer { get; init; }

    public string? SourcePrefix { get; init; }

    /// <summary>Several folders of <see cref="SourceContainer"/> as one dataset (set by an upload trigger when <see cref="Accumulate"/>).</summary>
    public IReadOnlyList<string> SourcePrefixes { get; init; } = [];

    /// <summary>
    /// Upload triggers (<c>uploads/datasets/{pipeline}/{batch}/_SUCCESS</c>) train on every complete batch so far, by
    /// batch name up to and including this one, instead of this batch alone: a day's transactions (#13) are a new
    /// slice of one history, not a new dataset.
    /// </summary>
    public bool Accumulate { get; init; }

    public IReadOnlyList<string> Include { get; init; } = [];

    /// <summary>Images: the IDX prefix of the pool that is split (e.g. "train").</summary>
    public string Source { get; init; } = "train";

    /// <summary>Images: the IDX prefix of an official test set (e.g. "t10k"); null splits test off the pool.</summary>
    public string? TestSource { get; init; }

    /// <summary>Use only the first N rows/samples (0 = all): small, fast slices.</summary>
    public int MaxSamples { get; init; }

    /// <summary>Images: use only the first N samples of the official test set <see cref="TestSource"/> (0 = all).</summary>
    public int MaxTestSamples { get; init; }
}

/// <summary>How train/val/test are cut (seeded, stratified by the label).</summary>
public sealed record PipelineSplit(double Train = 0.7, double Val = 0.15, double Test = 0.15, long Seed = 1)
{
    /// <summary>Tables: the test split is stratified fold <c>Fold.Index</c> of <c>Fold.Count</c> (cross-validation runs); null cuts by the fractions.</summary>
    public CrossValidationFold? Fold { get; init; }
}

/// <summary>The sweep a pipeline runs over the model family.</summary>
public sealed record PipelineSweep
{
    public string Algorithm { get; init; } = "tpe";

    public int MaxTrials { get; init; } = 6;

    public int ParallelTrials { get; init; } = 2;

    public int Epochs { get; init; } = 10;

    /// <summary>Training samples per trial epoch (0 = all).</summary>
    public int MaxTrainSamples { get; init; }

    /// <summary>The search space; null takes the model family's default (<see cref="PipelineSpec.DefaultSpace"/>).</summary>
    public IReadOnlyList<ParameterSpec>? Parameters { get; init; }

    public long Seed { get; init; } = 1;

    /// <summary>Scores every trial by k-fold cross-validation of train+val (the sweep's <c>crossValidationFolds</c>) instead of the val split; null: the val split.</summary>
    public int? CrossValidationFolds { get; init; }

    /// <summary>The trial metric the sweep maximizes: null is <c>val_accuracy</c>; <c>val_auc</c> for binary classifiers (the worker reports it per epoch).</summary>
    public string? Objective { get; init; }

    /// <summary>
    /// tpe, gp and cmaes: the share of <see cref="MaxTrials"/> drawn at random before the model-based search starts
    /// (their <c>nStartup</c> = max(2, ⌊maxTrials × fraction⌋)); null keeps the algorithm's own default. MNIST's 0.5:
    /// with 8 trials, 4 random draws cover both families before TPE narrows in.
    /// </summary>
    public double? StartupFraction { get; init; }

    /// <summary>A second trial metric (e.g. <c>parameter_count</c>, minimized): the sweep then also reports the Pareto front of both.</summary>
    public SecondaryObjective? SecondaryObjective { get; init; }

    /// <summary>The algorithms with a random start-up phase that <see cref="StartupFraction"/> sizes.</summary>
    public static IReadOnlyList<string> StartupAlgorithms { get; } = ["tpe", "gp", "cmaes"];
}

/// <summary>
/// What the validation step checks on an images dataset (null fields take the images defaults: at least 1 sample per
/// part, pixel values in 0..255, a class imbalance of at most 10). Tables check their columns, CT and interactions
/// their own formats.
/// </summary>
public sealed record PipelineValidation
{
    /// <summary>The shape of one sample, e.g. [28, 28]; null: any.</summary>
    public int[]? SampleShape { get; init; }

    /// <summary>Labels lie in [0, numClasses) and every class occurs; null: not checked.</summary>
    public int? NumClasses { get; init; }

    /// <summary>The largest ratio of the most to the least frequent class.</summary>
    public double? MaxClassImbalance { get; init; }

    public long? MinSamples { get; init; }

    public double? MinValue { get; init; }

    public double? MaxValue { get; init; }

    public IEnumerable<string> Problems()
    {
        if (SampleShape is { } shape && (shape.Length is < 1 or > 3 || shape.Any(d => d < 1)))
            yield return $"validation.sampleShape must be 1 to 3 positive sizes, got [{string.Join(", ", shape)}]";
        if (NumClasses is < 2)
            yield return $"validation.numClasses must be at least 2, got {NumClasses}";
        if (MaxClassImbalance is < 1)
            yield return string.Create(CultureInfo.InvariantCulture, $"validation.maxClassImbalance is a ratio of the most to the least frequent class, at least 1, got {MaxClassImbalance}");
        if (MinSamples is < 1)
            yield return $"validation.minSamples must be at least 1, got {MinSamples}";
        if ((MinValue ?? 0) > (MaxValue ?? 255))
            yield return string.Create(CultureInfo.InvariantCulture, $"validation.minValue ({MinValue ?? 0}) must not exceed validation.maxValue ({MaxValue ?? 255})");
    }

    public DatasetValidationRules Rules() => new()
    {
        SampleShape = SampleShape,
        NumClasses = NumClasses,
        MaxClassImbalance = MaxClassImbalance ?? 10,
        MinSamples = MinSamples ?? 1,
        MinValue = MinValue ?? 0,
        MaxValue = MaxValue ?? 255,
    };
}

/// <summary>The promotion rule: the candidate must beat the champion on <see cref="Metric"/> by <see cref="Margin"/>.</summary>
public sealed record PipelineGate(string? Metric = null, double Margin = 0);

/// <summary>
/// A pipeline as data: the dataset and its columns, the transform, the model family and its search space, the
/// budget, the metric, the gate and the registered model's name. <c>TrainingPipeline</c> runs any spec; users
/// bring their own data and models without writing an orchestration. Serialized with <see cref="Json.MlJson"/>.
/// </summary>
public sealed record PipelineSpec
{
    /// <summary>The pipeline's name: routes, upload prefixes and run ids use it.</summary>
    public string Name { get; init; } = "";

    public PipelineDataset Dataset { get; init; } = new();

    /// <summary>Tabular: which column is the label, and optionally which are numeric, categorical or ignored.</summary>
    public TabularColumns? Columns { get; init; }

    /// <summary>
    /// Tables: <c>classification</c> (null, the default: the label's values are classes) or <c>regression</c> (the label
    /// is a number: MSE on the train-standardized target, rmse/mae/r2, served in the label's units).
    /// </summary>
    public string? Task { get; init; }

    /// <summary>Whether the spec trains a regressor (<see cref="Task"/>, or <c>columns.task</c>).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsRegression => TrainingObjectives.Normalize(Task ?? Columns?.Task) == TrainingObjectives.Regression;

    /// <summary>The columns with the spec's task in them, as validation and the transform read them.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public TabularColumns? TableColumns => Columns is null || Task is null ? Columns : Columns with { Task = Task };

    public TabularTransformOptions Transform { get; init; } = new();

    /// <summary>Interactions: the columns (or the online_retail format) and leave-last-k-out; null takes the defaults.</summary>
    public InteractionsRecipe? Interactions { get; init; }

    /// <summary>CT: simulate or ingest, and the training patches; null takes the defaults (ingest, 48² patches).</summary>
    public Imaging.CtDatasetSpec? Ct { get; init; }

    /// <summary>Images from PNG folders or a CSV of pixels: size, channels, label column, pixel range; null takes the defaults (<see cref="PipelineImages"/>).</summary>
    public ImagesRecipe? Images { get; init; }

    public PipelineSplit Split { get; init; } = new();

    /// <summary>The worker's model family (the model zoo's key: "mlp", "cnn", ...).</summary>
    public string Model { get; init; } = "mlp";

    /// <summary>Fixed hyperparameters; the sweep's parameters override them per trial.</summary>
    public HyperParameters Hyperparameters { get; init; } = new() { LrSchedule = "cosine" };

    public PipelineSweep Sweep { get; init; } = new();

    /// <summary>Epochs of the final retrain of the best configuration on train+val.</summary>
    public int RetrainEpochs { get; init; } = 20;

    /// <summary>Training samples per retrain epoch (0 = all of train+val): a quick budget's cheaper retrain.</summary>
    public int RetrainMaxSamples { get; init; }

    /// <summary>Images: what the validation step checks (shape, classes, balance, value range); null takes the images defaults.</summary>
    public PipelineValidation? Validation { get; init; }

    /// <summary>Index in the test split of the sample the smoke inference sends through serving.</summary>
    public int SmokeIndex { get; init; }

    /// <summary>
    /// Named budgets, each a JSON merge patch (RFC 7386) over this spec's sweep, retrain and sample limits:
    /// <c>"budgets": {"quick": {"sweep": {"maxTrials": 2}, "retrainEpochs": 2}}</c>. <see cref="WithBudget"/> applies one
    /// (the CLI's <c>--quick</c> applies <c>quick</c>); a null in a patch removes the field (takes its default).
    /// </summary>
    public IReadOnlyDictionary<string, System.Text.Json.JsonElement>? Budgets { get; init; }

    private readonly string? _metric;

    /// <summary>The test metric reported and gated on: accuracy, auc (two classes), f1 or loss; rmse (the regression default), mae, r2.</summary>
    public string Metric { get => _metric ?? (IsRegression ? MetricNames.Rmse : MetricNames.Accuracy); init => _metric = value; }

    public PipelineGate Gate { get; init; } = new();

    /// <summary>The registered model (default: the pipeline's name).</summary>
    public string? ModelName { get; init; }

    public string Alias { get; init; } = "champion";

    public bool Cache { get; init; } = true;

    /// <summary>
    /// Tables, two classes: after the sweep, the best configuration is cross-validated on this many stratified folds of
    /// train+val (k worker runs of <see cref="RetrainEpochs"/>: <c>cv_auc</c>, <c>cv_auc_std</c>, …) and the majority-class
    /// and logistic-regression baselines are fitted on the same folds (<c>baseline_auc</c>, <c>logreg_auc</c>). 0: neither.
    /// </summary>
    public int CrossValidationFolds { get; init; }

    /// <summary>What started the run: http, blob or timer (recorded in lineage and the report).</summary>
    public string Trigger { get; init; } = "http";

    public string DatasetName => Dataset.Name ?? Name;

    public string RegisteredModel => ModelName ?? Name;

    public string GateMetric => Gate.Metric ?? Metric;

    /// <summary>Names that routes reserve, so a pipeline cannot shadow them.</summary>
    public static readonly IReadOnlyList<string> ReservedNames = ["runs", "schedules"];

    /// <summary>Every problem with the spec, at once (the HTTP starter answers 400 with all of them).</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (!DatasetLayout.IsValidName(DatasetName))
            problems.Add($"dataset.name '{DatasetName}' must be 1-63 characters of a-z, 0-9, '-', '_' or '.'");
        if (!DatasetLayout.IsValidName(Name) || ReservedNames.Contains(Name))
            problems.Add($"name must be 1-63 characters of a-z, 0-9, '-', '_' or '.', starting with a letter or digit, and not {string.Join("/", ReservedNames)}; got '{Name}'");
        if (!RegistryNames.IsValid(RegisteredModel))
            problems.Add($"modelName '{RegisteredModel}' is not a valid model name");
        if (!RegistryNames.IsValid(Alias))
            problems.Add($"alias '{Alias}' is not a valid alias name");
        if (!DatasetKinds.All.Contains(Dataset.Kind))
            problems.Add($"dataset.kind must be one of {string.Join(", ", DatasetKinds.All)}, got '{Dataset.Kind}'");
        var dirs = Dataset.SourceDirectories.Count > 0;
        var blobs = !string.IsNullOrEmpty(Dataset.SourceContainer);
        var simulated = Dataset.Kind == DatasetKinds.Ct && Ct?.Simulate is not null;
        if (simulated && (dirs || blobs))
            problems.Add("a ct pipeline either simulates (ct.simulate) or reads sourceDirectories/sourceContainer, not both");
        if (Ct is not null && Dataset.Kind != DatasetKinds.Ct)
            problems.Add($"the ct section is for dataset.kind \"ct\", not \"{Dataset.Kind}\"");
        problems.AddRange(PipelineImages.Problems(this));
        if (Dataset.Kind == DatasetKinds.Ct)
        {
            problems.AddRange((Ct ?? new()).Problems());
            if (!string.Equals(Model, "dncnn", StringComparison.OrdinalIgnoreCase))
                problems.Add($"a ct pipeline trains the denoiser model \"dncnn\", got \"{Model}\"");
            if (Split.Test <= 0)
                problems.Add("split.test must be positive: the gate scores on test subjects");
        }

        if (dirs == blobs && !simulated)
            problems.Add("dataset needs either sourceDirectories (folders on the host) or sourceContainer (+ sourcePrefix) for uploaded blobs, not both");
        if (Dataset.MaxSamples < 0)
            problems.Add($"dataset.maxSamples must be 0 (all) or positive, got {Dataset.MaxSamples}");
        if (DatasetKinds.IsTable(Dataset.Kind))
        {
            if (Columns is null)
                problems.Add($"a {Dataset.Kind} pipeline needs columns: {{\"label\": \"<column to predict>\"}}");
            else
                problems.AddRange(TableColumns!.Problems().Select(p => "columns: " + p));
        }

        if (IsRegression && Dataset.Kind != DatasetKinds.Tabular)
            problems.Add($"task regression is for dataset.kind \"tabular\", not \"{Dataset.Kind}\"");
        if (IsRegression && CrossValidationFolds != 0)
            problems.Add("crossValidationFolds (the AUC baselines) is for classifiers, not task regression");

        if (Dataset.Kind == DatasetKinds.Text && Columns is { Text: null or { Count: 0 } })
            problems.Add("a text pipeline needs columns.text: the free-text fields (e.g. [\"subject\", \"body\"])");
        if (Transform.Text is { } text)
            problems.AddRange(text.Problems());
        if (Split.Fold is { } fold && (fold.Count is < 2 or > 20 || fold.Index < 0 || fold.Index >= fold.Count))
            problems.Add($"split.fold must have 2 <= count <= 20 and 0 <= index < count, got index {fold.Index} of {fold.Count}");
        if (Split.Fold is not null && !DatasetKinds.IsTable(Dataset.Kind))
            problems.Add("split.fold is for tabular and text datasets");

        var testFraction = Dataset.Kind == DatasetKinds.Interactions ? Split.Test : Dataset.Kind == DatasetKinds.Images && Dataset.TestSource is not null ? 0 : Split.Test;
        if (Split.Fold is not null)
            testFraction = 1 - Split.Train - Split.Val;
        if (Split.Train <= 0 || Split.Val <= 0 || testFraction < 0 || Math.Abs(Split.Train + Split.Val + testFraction - 1) > 1e-9)
            problems.Add(string.Create(CultureInfo.InvariantCulture, $"split fractions must be positive and sum to 1 (train {Split.Train} + val {Split.Val} + test {testFraction})"));
        if (DatasetKinds.IsTable(Dataset.Kind) && Split.Test <= 0 && Split.Fold is null)
            problems.Add("split.test must be positive: the gate scores on the test split");
        var metricNames = Dataset.Kind == DatasetKinds.Interactions ? MetricNames.Ranking : Dataset.Kind == DatasetKinds.Ct ? MetricNames.Image : IsRegression ? MetricNames.Regression : MetricNames.Classification;
        if (!metricNames.Contains(Metric))
            problems.Add($"metric must be one of {string.Join(", ", metricNames)}, got '{Metric}'");
        if (!metricNames.Contains(GateMetric))
            problems.Add($"gate.metric must be one of {string.Join(", ", metricNames)}, got '{GateMetric}'");
        if (Interactions is { HoldOut: < 1 })
            problems.Add($"interactions.holdOut must be at least 1, got {Interactions.HoldOut}");
        if (Gate.Margin is < 0 or > 1)
            problems.Add($"gate.margin must be between 0 and 1, got {Gate.Margin}");
        if (RetrainEpochs is < 1 or > 500)
            problems.Add($"retrainEpochs must be between 1 and 500, got {RetrainEpochs}");
        if (Sweep.MaxTrials is < 1 or > 500)
            problems.Add($"sweep.maxTrials must be between 1 and 500, got {Sweep.MaxTrials}");
        if (Sweep.ParallelTrials < 1)
            problems.Add($"sweep.parallelTrials must be at least 1, got {Sweep.ParallelTrials}");
        if (Sweep.Epochs is < 1 or > 500)
            problems.Add($"sweep.epochs must be between 1 and 500, got {Sweep.Epochs}");
        if (CrossValidationFolds != 0 && (CrossValidationFolds is < 2 or > 20 || !DatasetKinds.IsTable(Dataset.Kind)))
            problems.Add($"crossValidationFolds is 0 (off) or 2..20 folds of a tabular or text dataset, got {CrossValidationFolds} for '{Dataset.Kind}'");
        if (Sweep.Objective is { } objective && !objective.StartsWith("val_", StringComparison.Ordinal))
            problems.Add($"sweep.objective must be a held-out trial metric (val_accuracy, val_auc, val_f1, val_loss …), got '{objective}'");
        if (string.IsNullOrWhiteSpace(Model))
            problems.Add("model (the model family, e.g. \"mlp\") is required");
        if (Sweep.StartupFraction is { } startup)
        {
            if (startup is not (> 0 and <= 1))
                problems.Add(string.Create(CultureInfo.InvariantCulture, $"sweep.startupFraction is the share of maxTrials drawn at random first, in (0, 1], got {startup}"));
            if (!PipelineSweep.StartupAlgorithms.Contains(Sweep.Algorithm))
                problems.Add($"sweep.startupFraction sizes the random start-up of {string.Join(", ", PipelineSweep.StartupAlgorithms)}; algorithm '{Sweep.Algorithm}' has none (remove it, or set it to null in a budget)");
        }

        if (Sweep.SecondaryObjective is { } secondary)
        {
            if (!(TrialMetrics.TrainingMetricNames.Contains(secondary.Metric) || secondary.Metric?.StartsWith("val_", StringComparison.Ordinal) == true))
                problems.Add($"sweep.secondaryObjective.metric must be a trial metric ({string.Join(", ", TrialMetrics.TrainingMetricNames)} or val_*), got '{secondary.Metric}'");
            else if (secondary.Metric == SweepObjectiveMetric)
                problems.Add($"sweep.secondaryObjective.metric must differ from the objective '{SweepObjectiveMetric}'");
        }

        if (RetrainMaxSamples < 0)
            problems.Add($"retrainMaxSamples must be 0 (all) or positive, got {RetrainMaxSamples}");
        if (SmokeIndex < 0)
            problems.Add($"smokeIndex must not be negative, got {SmokeIndex}");
        if (Dataset.MaxTestSamples < 0)
            problems.Add($"dataset.maxTestSamples must be 0 (all) or positive, got {Dataset.MaxTestSamples}");
        else if (Dataset.MaxTestSamples > 0 && (Dataset.Kind != DatasetKinds.Images || Dataset.TestSource is null))
            problems.Add("dataset.maxTestSamples limits the official test set (dataset.testSource) of an images dataset; cut other test splits with split.test or dataset.maxSamples");
        if (Validation is { } validation)
        {
            if (Dataset.Kind != DatasetKinds.Images)
                problems.Add($"validation is for dataset.kind \"images\"; a {Dataset.Kind} dataset is checked by its own rules (columns, interactions or ct)");
            problems.AddRange(validation.Problems());
        }

        problems.AddRange(SweepSpecFor(new PreparedDataRef("prepared", "x", "x")).Validate().Select(p => "sweep: " + p));
        problems.AddRange(BudgetProblems());
        return problems;
    }

    /// <summary>The top-level fields a budget may patch: how much is searched and trained, never what data or what gate.</summary>
    public static IReadOnlyList<string> BudgetFields { get; } = ["sweep", "retrainEpochs", "retrainMaxSamples", "hyperparameters", "dataset"];

    /// <summary>The dataset fields a budget may patch (sample limits only).</summary>
    public static IReadOnlyList<string> BudgetDatasetFields { get; } = ["maxSamples", "maxTestSamples"];

    /// <summary>
    /// This spec with budget <paramref name="name"/> merged in (RFC 7386) and no budgets left: the spec that runs. An
    /// unknown name, or a patch that cannot make a spec, throws <see cref="ArgumentException"/> naming the budgets there are.
    /// </summary>
    public PipelineSpec WithBudget(string name)
    {
        if (Budgets is null || !Budgets.TryGetValue(name, out var patch))
            throw new ArgumentException($"pipeline '{Name}' has no budget '{name}'; it has {(Budgets is { Count: > 0 } ? string.Join(", ", Budgets.Keys) : "none")}");
        var node = System.Text.Json.JsonSerializer.SerializeToNode(this with { Budgets = null }, MlJson.Options)!;
        var merged = JsonMergePatch.Apply(node, System.Text.Json.Nodes.JsonNode.Parse(patch.GetRawText()));
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize<PipelineSpec>(merged, MlJson.Options) ?? throw new ArgumentException($"budget '{name}' makes the spec null");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new ArgumentException($"budget '{name}' does not make a valid spec: {e.Message}", e);
        }
    }

    private IEnumerable<string> BudgetProblems()
    {
        foreach (var (name, patch) in Budgets ?? new Dictionary<string, System.Text.Json.JsonElement>())
        {
            var where = $"budgets.{name}";
            if (!DatasetLayout.IsValidName(name))
            {
                yield return $"{where}: a budget's name must be 1-63 characters of a-z, 0-9, '-', '_' or '.'";
                continue;
            }

            if (patch.ValueKind != System.Text.Json.JsonValueKind.Object)
            {
                yield return $"{where} must be an object (a merge patch such as {{\"sweep\": {{\"maxTrials\": 2}}}}), got {patch.ValueKind}";
                continue;
            }

            var fieldProblems = new List<string>();
            foreach (var field in patch.EnumerateObject())
            {
                if (!BudgetFields.Contains(field.Name))
                    fieldProblems.Add($"{where}.{field.Name}: a budget patches only {string.Join(", ", BudgetFields)} (names as written in the spec, camelCase)");
                else if (field.Name == "dataset" && field.Value.ValueKind == System.Text.Json.JsonValueKind.Object)
                    fieldProblems.AddRange(field.Value.EnumerateObject().Where(f => !BudgetDatasetFields.Contains(f.Name)).Select(f => $"{where}.dataset.{f.Name}: a budget patches only the dataset's {string.Join(" and ", BudgetDatasetFields)}"));
                else if (field.Name == "sweep" && field.Value.ValueKind == System.Text.Json.JsonValueKind.Object)
                    fieldProblems.AddRange(field.Value.EnumerateObject().Where(f => !SweepFields.Contains(f.Name)).Select(f => $"{where}.sweep.{f.Name} is not a sweep field ({string.Join(", ", SweepFields)})"));
            }

            foreach (var p in fieldProblems)
                yield return p;
            if (fieldProblems.Count > 0)
                continue;

            PipelineSpec? applied = null;
            string? failed = null;
            try
            {
                applied = WithBudget(name);
            }
            catch (ArgumentException e)
            {
                failed = $"{where}: {e.Message}";
            }

            if (failed is not null)
                yield return failed;
            foreach (var p in applied?.Problems() ?? [])
                yield return $"{where}: {p}";
        }
    }

    private static readonly IReadOnlyList<string> SweepFields = typeof(PipelineSweep).GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance)
        .Select(p => System.Text.Json.JsonNamingPolicy.CamelCase.ConvertName(p.Name)).ToList();

    /// <summary>The default search space of a model family, over the parameters <see cref="TrialJobs"/> maps.</summary>
    public IReadOnlyList<ParameterSpec> DefaultSpace() => Model.ToLowerInvariant() switch
    {
        // Recommenders (#13): embedding size, learning rate, regularization (the per-batch embedding penalty) and
        // negatives. Centered on what measured best on Online Retail (MF-BPR, cosine schedule): 128, 0.01, 0.001, 16.
        "mf" or "ncf" =>
        [
            ParameterSpec.Double("learningRate", 5e-3, 2e-2, ParameterScale.Log),
            ParameterSpec.Int("embeddingSize", 64, 192, ParameterScale.Log),
            ParameterSpec.Double("weightDecay", 5e-4, 2e-3, ParameterScale.Log),
            ParameterSpec.Int("negatives", 8, 24),
        ],

        // Logistic regression on sparse TF-IDF: the step size and the L2 strength matter; dropout on inputs regularizes too.
        "linear" =>
        [
            ParameterSpec.Double("learningRate", 3e-3, 1e-1, ParameterScale.Log),
            ParameterSpec.Double("weightDecay", 1e-5, 1e-1, ParameterScale.Log),
            ParameterSpec.Double("dropout", 0, 0.5),
        ],

        // The CT denoiser (#14): depth and width of the DnCNN, the step size and the training patch (cropped from the
        // prepared patches). 1e-3 to 3e-3 trained well at 64² and 128²; deeper than ~8 barely moves at these budgets.
        "dncnn" =>
        [
            ParameterSpec.Double("learningRate", 7e-4, 3e-3, ParameterScale.Log),
            ParameterSpec.Int("depth", 4, 8),
            ParameterSpec.Categorical("width", "24", "32", "48"),
            ParameterSpec.Categorical("patchSize", "32", "48"),
        ],

        "cnn" =>
        [
            ParameterSpec.Double("learningRate", 3e-4, 5e-3, ParameterScale.Log),
            ParameterSpec.Categorical("batchSize", "64", "128"),
            ParameterSpec.Double("dropout", 0, 0.4),
            ParameterSpec.Int("channels", 8, 32, ParameterScale.Log),
        ],

        // Tabular MLPs: small tables want small, regularized networks and a larger learning rate than images.
        _ =>
        [
            ParameterSpec.Double("learningRate", 1e-3, 3e-2, ParameterScale.Log),
            ParameterSpec.Int("hiddenSize", 16, 256, ParameterScale.Log),
            ParameterSpec.Int("hiddenLayers", 1, 2),
            ParameterSpec.Double("dropout", 0, 0.3),
            ParameterSpec.Double("weightDecay", 1e-6, 1e-3, ParameterScale.Log),
        ],
    };

    /// <summary>How the transform step prepares this spec's data.</summary>
    public PreparationRecipe Recipe() => Dataset.Kind == DatasetKinds.Ct
        ? new PreparationRecipe { Source = "ct", TrainFraction = Split.Train, ValFraction = Split.Val, TestFraction = Split.Test, Seed = Split.Seed, Ct = (Ct ?? new()).Recipe(Split.Val, Split.Test, Split.Seed) }
        : Dataset.Kind == DatasetKinds.Interactions
        ? new PreparationRecipe { Source = "interactions", Interactions = Interactions ?? new InteractionsRecipe() }
        : Dataset.Kind == DatasetKinds.Images
        ? new PreparationRecipe
        {
            Source = Dataset.Source,
            TestSource = Dataset.TestSource,
            TrainFraction = Split.Train,
            ValFraction = Split.Val,
            TestFraction = Dataset.TestSource is null ? Split.Test : 0,
            Seed = Split.Seed,
            MaxSamples = Dataset.MaxSamples,
            MaxTestSamples = Dataset.MaxTestSamples,
            Images = Images ?? new(),
        }
        : new PreparationRecipe
        {
            Source = "table",
            TrainFraction = Split.Train,
            ValFraction = Split.Val,
            TestFraction = Split.Test,
            Seed = Split.Seed,
            MaxSamples = Dataset.MaxSamples,
            Tabular = new TabularRecipe { Columns = TableColumns ?? new(), Transform = Transform, TestFold = Split.Fold },
        };

    /// <summary>What the validation step checks.</summary>
    public DatasetValidationRules ValidationRules() => Dataset.Kind == DatasetKinds.Ct
        ? new DatasetValidationRules { Ct = new Imaging.CtValidationRules { Patch = (Ct ?? new()).Patch } }
        : Dataset.Kind == DatasetKinds.Interactions
        ? new DatasetValidationRules { Interactions = Interactions ?? new InteractionsRecipe() }
        : Dataset.Kind == DatasetKinds.Images
        ? ((Validation ?? new PipelineValidation()) with { MaxClassImbalance = Validation?.MaxClassImbalance ?? (Images ?? new()).MaxClassImbalance }).Rules() with { Images = Images ?? new() }
        : new DatasetValidationRules { Table = TableColumns, MinRows = 10 };

    public RegisterDatasetInput RegisterInput() => new()
    {
        Name = DatasetName,
        SourceDirectories = Dataset.SourceDirectories,
        SourceContainer = Dataset.SourceContainer,
        SourcePrefix = Dataset.SourcePrefix,
        SourcePrefixes = Dataset.SourcePrefixes,
        Include = Dataset.Include,
        Recursive = Dataset.Kind is DatasetKinds.Ct or DatasetKinds.Images, // PNG folders: {split?}/{label}/*.png
        SimulateCt = Dataset.Kind == DatasetKinds.Ct ? Ct?.Simulate : null,
    };

    /// <summary>The training job every trial and the retrain start from.</summary>
    public TrainingJob JobTemplate(PreparedDataRef data) => new()
    {
        JobId = "template",
        Model = Model,
        Hyperparameters = Hyperparameters with { Seed = Sweep.Seed },
        Data = data,
    };

    /// <summary>The trial metric the sweep optimizes: sweep.objective, else val_rmse for a regressor and val_accuracy otherwise.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string SweepObjectiveMetric => Sweep.Objective ?? (IsRegression ? "val_" + MetricNames.Rmse : TrialMetrics.ValAccuracy);

    /// <summary>The sweep over the family's space; trials rank on validation accuracy (what the worker reports per epoch), a regressor's on val_rmse (minimized).</summary>
    public SweepSpec SweepSpecFor(PreparedDataRef data)
    {
        var template = JobTemplate(data);
        return new SweepSpec
        {
            Name = $"{RegisteredModel}-sweep",
            Parameters = Sweep.Parameters ?? DefaultSpace(),
            Algorithm = Sweep.Algorithm,
            AlgorithmSettings = Sweep.StartupFraction is { } startup && PipelineSweep.StartupAlgorithms.Contains(Sweep.Algorithm)
                ? new Dictionary<string, string> { ["nStartup"] = Math.Max(2, (int)Math.Floor(Sweep.MaxTrials * startup)).ToString(CultureInfo.InvariantCulture) }
                : null,
            Objective = new SweepObjective(SweepObjectiveMetric, SweepObjectiveMetric.StartsWith("val_", StringComparison.Ordinal) && !MetricNames.HigherIsBetter(SweepObjectiveMetric["val_".Length..]) ? ObjectiveDirection.Minimize : ObjectiveDirection.Maximize, AdditionalMetrics: [TrialMetrics.ValLoss, TrialMetrics.TrainLoss]),
            SecondaryObjective = Sweep.SecondaryObjective,
            ParallelTrialCount = Sweep.ParallelTrials,
            MaxTrialCount = Sweep.MaxTrials,
            MaxFailedTrialCount = Math.Max(1, Sweep.MaxTrials / 3),
            CrossValidationFolds = Sweep.CrossValidationFolds,
            TrialTimeoutSeconds = 6 * 3600,
            Seed = Sweep.Seed,
            Trial = new TrialTemplate
            {
                Job = template with
                {
                    ExportOnnx = false,
                    Hyperparameters = template.Hyperparameters with { Epochs = Sweep.Epochs, MaxTrainSamples = Sweep.MaxTrainSamples },
                },
                MaxAttempts = 2,
                HeartbeatTimeoutSeconds = 600,
            },
        };
    }
}

/// <summary>What a <c>TrainingPipeline</c> run did.</summary>
public sealed record PipelineRunResult
{
    public required string RunId { get; init; }

    public required string Pipeline { get; init; }

    /// <summary><see cref="MnistPipelineOutcomes.Promoted"/> or <see cref="MnistPipelineOutcomes.GateRejected"/>.</summary>
    public required string Outcome { get; init; }

    public required string Reason { get; init; }

    /// <summary>The gate metric's name and the candidate's and champion's test values.</summary>
    public required string Metric { get; init; }

    public double Value { get; init; }

    public double? ChampionValue { get; init; }

    /// <summary>Every test metric of the candidate (accuracy, loss, f1, auc).</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    public string? Model { get; init; }

    public int? ModelVersion { get; init; }

    public SweepResult? Sweep { get; init; }

    public SmokeInferenceResult? Smoke { get; init; }

    public PreparedDataRef? Data { get; init; }

    public string? ReportJsonUri { get; init; }

    public string? ReportMarkdownUri { get; init; }
}

/// <summary>Stored pipeline specs by name (<c>pipeline-specs/{name}.json</c>): a run can name one instead of carrying it.</summary>
public interface IPipelineSpecStore
{
    Task<PipelineSpec?> GetAsync(string name, CancellationToken ct = default);

    Task PutAsync(PipelineSpec spec, CancellationToken ct = default);

    Task<IReadOnlyList<string>> ListAsync(CancellationToken ct = default);
}
