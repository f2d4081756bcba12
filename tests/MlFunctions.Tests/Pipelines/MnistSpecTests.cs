using System.Globalization;
using System.Text.Json;
using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;
using MlFunctions.Orchestrations.Pipelines;
using MlFunctions.Tests.Infrastructure;
using Xunit;

namespace MlFunctions.Tests.Pipelines;

/// <summary>
/// The built-in MNIST spec (examples/pipelines/mnist.json, embedded in Core) against the MnistPipeline orchestration it
/// replaced: the same sweep (space, objectives, nStartup, budget) for the default and quick budgets and for the legacy
/// HTTP input, the same validation rules and recipe; then TrainingPipeline running it over a mocked context.
/// </summary>
public sealed class MnistSpecTests
{
    private static readonly PreparedDataRef Data = new("prepared", "mnist/v1/r", "prepared-hash");

    private static readonly RegisterDatasetInput Folders = new() { Name = "mnist", SourceDirectories = ["/data/mnist-train", "/data/mnist"] };

    /// <summary>
    /// MnistPipeline.SweepSpecFor and Template as they were before the orchestration was deleted (commit 3aee94e), frozen
    /// here as the reference the spec must reproduce.
    /// </summary>
    private static SweepSpec OldSweepSpecFor(MnistPipelineInput input, PreparedDataRef data)
    {
        var s = input.Sweep;
        List<ParameterSpec> parameters =
        [
            ParameterSpec.Double("learningRate", 3e-4, 5e-3, ParameterScale.Log),
            ParameterSpec.Categorical("batchSize", "64", "128", "256"),
            ParameterSpec.Double("dropout", 0, 0.4),
            ParameterSpec.Int("hiddenSize", 64, 512, ParameterScale.Log),
            ParameterSpec.Categorical("batchNorm", "true", "false"),
        ];
        if (s.IncludeCnn)
        {
            parameters.Insert(0, ParameterSpec.Categorical("model", "mlp", "cnn"));
            parameters.Add(ParameterSpec.Int("channels", 16, 32, ParameterScale.Log));
            parameters.Add(ParameterSpec.Double("augment", 0, 1));
        }

        TrainingJob Template() => new()
        {
            JobId = "template",
            Model = "mlp",
            Hyperparameters = new HyperParameters { Seed = s.Seed, LrSchedule = "cosine" },
            Data = data,
        };

        return new SweepSpec
        {
            Name = $"{input.ModelName}-sweep",
            Parameters = parameters,
            Algorithm = s.Algorithm,
            AlgorithmSettings = s.Algorithm is "tpe" or "gp" ? new Dictionary<string, string> { ["nStartup"] = Math.Max(2, s.MaxTrials / 2).ToString(CultureInfo.InvariantCulture) } : null,
            Objective = new SweepObjective(TrialMetrics.ValAccuracy, ObjectiveDirection.Maximize, AdditionalMetrics: [TrialMetrics.ValLoss, TrialMetrics.TrainLoss]),
            SecondaryObjective = new SecondaryObjective(TrialMetrics.ParameterCount, ObjectiveDirection.Minimize),
            ParallelTrialCount = s.ParallelTrials,
            MaxTrialCount = s.MaxTrials,
            MaxFailedTrialCount = Math.Max(1, s.MaxTrials / 3),
            TrialTimeoutSeconds = 6 * 3600,
            Seed = s.Seed,
            Trial = new TrialTemplate
            {
                Job = Template() with { ExportOnnx = false, Hyperparameters = Template().Hyperparameters with { Epochs = s.Epochs, MaxTrainSamples = s.MaxTrainSamples } },
                MaxAttempts = 2,
                HeartbeatTimeoutSeconds = 600,
            },
        };
    }

    /// <summary>The quick input the <c>mnist --quick</c> command built before it ran the spec's quick budget.</summary>
    private static readonly MnistPipelineInput OldQuick = new()
    {
        Dataset = Folders,
        Sweep = new MnistSweepSettings { Algorithm = "random", MaxTrials = 2, ParallelTrials = 2, Epochs = 1, MaxTrainSamples = 3000, IncludeCnn = false },
        RetrainEpochs = 2,
        RetrainMaxSamples = 20_000,
    };

    private static string Json(object value) => JsonSerializer.Serialize(value, MlJson.Options);

    /// <summary>
    /// MnistPipeline's rules, plus the images section every images spec now carries (PNG folders and pixel CSVs read
    /// it; the IDX reader ignores it). It changes the validate and transform steps' cache keys once, not what they do.
    /// </summary>
    private static readonly DatasetValidationRules MnistRulesNow = DatasetValidationRules.Mnist with { Images = new() };

    [Fact]
    public void TheEmbeddedSpecIsTheExampleFileAndHasNoProblemsInEitherBudget()
    {
        Assert.Equal(File.ReadAllText(Path.Combine(RepoPaths.Root, "examples", "pipelines", "mnist.json")), BuiltInPipelines.Text(BuiltInPipelines.MnistName));
        var mnist = BuiltInPipelines.Mnist;
        Assert.Empty(mnist.Problems());
        Assert.Empty(mnist.WithBudget("quick").Problems());
        Assert.Equal(["quick"], mnist.Budgets!.Keys);
        Assert.Null(mnist.WithBudget("quick").Budgets);
        var unknown = Assert.Throws<ArgumentException>(() => mnist.WithBudget("huge"));
        Assert.Contains("has no budget 'huge'; it has quick", unknown.Message);
    }

    [Fact]
    public void TheDefaultAndQuickBudgetsSweepExactlyAsMnistPipelineDid()
    {
        // Default: the CLI's default input (the record's defaults: 8 tpe trials over MLP+CNN, 2 epochs on 12k samples).
        var old = OldSweepSpecFor(new MnistPipelineInput { Dataset = Folders }, Data);
        var spec = BuiltInPipelines.Mnist.SweepSpecFor(Data);
        Assert.Equal(Json(old), Json(spec));
        Assert.Equal("4", spec.AlgorithmSettings!["nStartup"]);
        Assert.Equal(new SecondaryObjective("parameter_count", ObjectiveDirection.Minimize), spec.SecondaryObjective);
        Assert.Equal(["model", "learningRate", "batchSize", "dropout", "hiddenSize", "batchNorm", "channels", "augment"], spec.Parameters.Select(p => p.Name));
        Assert.Empty(spec.Validate());

        // Quick: 2 random MLP trials of 1 epoch on 3k samples, no start-up setting (random has none).
        var quick = BuiltInPipelines.Mnist.WithBudget("quick");
        Assert.Equal(Json(OldSweepSpecFor(OldQuick, Data)), Json(quick.SweepSpecFor(Data)));
        Assert.Null(quick.SweepSpecFor(Data).AlgorithmSettings);
        Assert.Equal((2, 20_000), (quick.RetrainEpochs, quick.RetrainMaxSamples));

        // The default budget retrains 10 epochs on everything (what measured ≥ 99.2% on t10k).
        Assert.Equal((10, 0), (BuiltInPipelines.Mnist.RetrainEpochs, BuiltInPipelines.Mnist.RetrainMaxSamples));
    }

    [Fact]
    public void TheSpaceSearchesBatchSizeBatchNormAndAugmentationAndTrialsGetThem()
    {
        var spec = BuiltInPipelines.Mnist.SweepSpecFor(Data);
        var suggestion = SuggestionAlgorithms.Get(spec.Algorithm).Suggest(new SuggestionRequest(new SearchSpace(spec.Parameters), ObjectiveDirection.Maximize, [], 1, 1, spec.AlgorithmSettings)).Suggestions.Single();
        var job = TrialJobs.ForTrial(spec.Trial.Job!, "t1", suggestion.Parameters, null, new Dictionary<string, string>());
        Assert.Equal(suggestion.Parameters["model"], job.Model);
        Assert.Equal(suggestion.Parameters.GetDouble("augment"), job.Hyperparameters.Augment);
        Assert.Equal(bool.Parse(suggestion.Parameters["batchNorm"]), job.Hyperparameters.BatchNorm);
        Assert.Equal(suggestion.Parameters.GetInt("batchSize"), job.Hyperparameters.BatchSize);
        Assert.Throws<ArgumentException>(() => TrialJobs.ForTrial(spec.Trial.Job!, "t2", new ParameterSet { ["batchNorm"] = "maybe" }, null, new Dictionary<string, string>()));

        // The quick budget's space has no image-only parameter.
        Assert.DoesNotContain(BuiltInPipelines.Mnist.WithBudget("quick").Sweep.Parameters!, p => MnistPipelineInput.CnnOnlyParameters.Contains(p.Name));
    }

    [Theory]
    [InlineData("tpe", 8, true)]
    [InlineData("tpe", 7, true)] // nStartup max(2, 7/2) = 3
    [InlineData("gp", 3, true)] // nStartup max(2, 1) = 2
    [InlineData("random", 2, false)]
    [InlineData("sobol", 4, true)]
    public void ALegacyMnistPipelineInputMapsOntoTheSameSweep(string algorithm, int trials, bool cnn)
    {
        var input = new MnistPipelineInput
        {
            Dataset = Folders,
            Sweep = new MnistSweepSettings { Algorithm = algorithm, MaxTrials = trials, Epochs = 3, MaxTrainSamples = 5000, IncludeCnn = cnn, Seed = 7 },
            ModelName = "digits-legacy",
        };
        var spec = input.ToSpec();
        Assert.Empty(spec.Problems());
        Assert.Equal(Json(OldSweepSpecFor(input, Data)), Json(spec.SweepSpecFor(Data)));
    }

    [Fact]
    public void ALegacyInputKeepsItsDataRecipeRetrainGateAndNames()
    {
        var input = new MnistPipelineInput
        {
            Dataset = Folders with { Include = ["t10k*"] },
            Recipe = new PreparationRecipe { Source = "train", TestSource = "t10k", TrainFraction = 0.9, ValFraction = 0.1, TestFraction = 0, MaxSamples = 3000, MaxTestSamples = 500 },
            RetrainMaxSamples = 1000,
            GateMargin = 0.002,
            ModelName = "m2",
            Cache = false,
            SmokeImageIndex = 3,
            Trigger = "timer",
        };
        var spec = input.ToSpec();
        Assert.Equal(Json(input.Recipe with { Images = new() }), Json(spec.Recipe()));
        Assert.Equal(Json(input.Dataset with { Recursive = true }), Json(spec.RegisterInput())); // images specs register subfolders (PNG {label}/ folders)
        Assert.Equal(Json(MnistRulesNow), Json(spec.ValidationRules()));
        Assert.Equal((12, 1000, 0.002, "accuracy"), (spec.RetrainEpochs, spec.RetrainMaxSamples, spec.Gate.Margin, spec.GateMetric));
        Assert.Equal(("m2", "champion", false, 3, "timer"), (spec.RegisteredModel, spec.Alias, spec.Cache, spec.SmokeIndex, spec.Trigger));
        Assert.Null(spec.Budgets);
    }

    [Fact]
    public void TheBuiltInSpecValidatesAndPreparesAsMnistPipelineDid()
    {
        var mnist = BuiltInPipelines.Mnist;
        Assert.Equal(Json(MnistRulesNow), Json(mnist.ValidationRules()));
        var oldRecipe = new PreparationRecipe { Source = "train", TestSource = "t10k", TrainFraction = 0.9, ValFraction = 0.1, TestFraction = 0 };
        Assert.Equal(Json(oldRecipe with { Images = new() }), Json(mnist.Recipe()));
        Assert.Equal(("mnist", "mnist", "champion", "accuracy", 0.0, 0), (mnist.Name, mnist.RegisteredModel, mnist.Alias, mnist.GateMetric, mnist.Gate.Margin, mnist.SmokeIndex));
        Assert.Equal(["train-images-idx3-ubyte.part*", "train-labels-idx1-ubyte.part*", "t10k-images-idx3-ubyte*", "t10k-labels-idx1-ubyte*"], mnist.Dataset.Include);
    }

    [Fact]
    public void EveryNewSpecFieldIsCheckedWithAClearMessage()
    {
        var mnist = BuiltInPipelines.Mnist;
        var problems = (mnist with
        {
            RetrainMaxSamples = -1,
            SmokeIndex = -2,
            Dataset = mnist.Dataset with { MaxTestSamples = -3 },
            Validation = new PipelineValidation { SampleShape = [28, 0], NumClasses = 1, MaxClassImbalance = 0.5, MinSamples = 0, MinValue = 10, MaxValue = 5 },
            Sweep = mnist.Sweep with { StartupFraction = 1.5, SecondaryObjective = new SecondaryObjective("test_accuracy") },
        }).Problems();
        Assert.Contains("retrainMaxSamples must be 0 (all) or positive, got -1", problems);
        Assert.Contains("smokeIndex must not be negative, got -2", problems);
        Assert.Contains("dataset.maxTestSamples must be 0 (all) or positive, got -3", problems);
        Assert.Contains("validation.sampleShape must be 1 to 3 positive sizes, got [28, 0]", problems);
        Assert.Contains("validation.numClasses must be at least 2, got 1", problems);
        Assert.Contains(problems, p => p.StartsWith("validation.maxClassImbalance is a ratio", StringComparison.Ordinal));
        Assert.Contains("validation.minSamples must be at least 1, got 0", problems);
        Assert.Contains("validation.minValue (10) must not exceed validation.maxValue (5)", problems);
        Assert.Contains("sweep.startupFraction is the share of maxTrials drawn at random first, in (0, 1], got 1.5", problems);
        Assert.Contains(problems, p => p.StartsWith("sweep.secondaryObjective.metric must be a trial metric", StringComparison.Ordinal) && p.EndsWith("got 'test_accuracy'", StringComparison.Ordinal));

        Assert.Contains("sweep.secondaryObjective.metric must differ from the objective 'val_accuracy'", (mnist with { Sweep = mnist.Sweep with { SecondaryObjective = new SecondaryObjective("val_accuracy") } }).Problems());
        Assert.Contains(
            "sweep.startupFraction sizes the random start-up of tpe, gp, cmaes; algorithm 'random' has none (remove it, or set it to null in a budget)",
            (mnist with { Sweep = mnist.Sweep with { Algorithm = "random" }, Budgets = null }).Problems());

        // Images-only fields on a table.
        var table = new PipelineSpec
        {
            Name = "loans",
            Dataset = new PipelineDataset { SourceDirectories = ["x"], MaxTestSamples = 10 },
            Columns = new TabularColumns { Label = "y" },
            Validation = new PipelineValidation(),
        };
        var tableProblems = table.Problems();
        Assert.Contains(tableProblems, p => p.StartsWith("dataset.maxTestSamples limits the official test set", StringComparison.Ordinal));
        Assert.Contains(tableProblems, p => p.StartsWith("validation is for dataset.kind \"images\"", StringComparison.Ordinal));
    }

    [Fact]
    public void ABudgetIsAMergePatchOverTheSweepRetrainAndSampleLimitsOnly()
    {
        JsonElement Patch(string json) => JsonDocument.Parse(json).RootElement.Clone();
        var mnist = BuiltInPipelines.Mnist with
        {
            Budgets = new Dictionary<string, JsonElement>
            {
                ["small"] = Patch("""{"sweep": {"maxTrials": 4}, "retrainEpochs": 3, "dataset": {"maxSamples": 6000}}"""),
                ["bad"] = Patch("""{"gate": {"margin": 0.5}, "dataset": {"testSource": "x"}, "sweep": {"maxTrails": 4}}"""),
                ["worse"] = Patch("""{"sweep": {"maxTrials": 0}}"""),
                ["typed"] = Patch("""{"retrainEpochs": "many"}"""),
                ["flat"] = Patch("""[1, 2]"""),
            },
        };

        var small = mnist.WithBudget("small");
        Assert.Equal((4, 3, 6000), (small.Sweep.MaxTrials, small.RetrainEpochs, small.Dataset.MaxSamples));
        Assert.Equal("2", small.SweepSpecFor(Data).AlgorithmSettings!["nStartup"]); // the fraction applies to the budget's trials
        Assert.Equal(Json(mnist.Sweep.Parameters!), Json(small.Sweep.Parameters!)); // untouched fields stay
        Assert.Equal(mnist.Dataset.TestSource, small.Dataset.TestSource);

        var problems = mnist.Problems();
        Assert.DoesNotContain(problems, p => p.StartsWith("budgets.small", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("budgets.bad.gate: a budget patches only sweep, retrainEpochs", StringComparison.Ordinal));
        Assert.Contains("budgets.bad.dataset.testSource: a budget patches only the dataset's maxSamples and maxTestSamples", problems);
        Assert.Contains(problems, p => p.StartsWith("budgets.bad.sweep.maxTrails is not a sweep field", StringComparison.Ordinal));
        Assert.Contains("budgets.worse: sweep.maxTrials must be between 1 and 500, got 0", problems);
        Assert.Contains(problems, p => p.StartsWith("budgets.typed: budget 'typed' does not make a valid spec", StringComparison.Ordinal));
        Assert.Contains("budgets.flat must be an object (a merge patch such as {\"sweep\": {\"maxTrials\": 2}}), got Array", problems);
    }

    private static OrchestrationHarness Harness(double candidateAccuracy, double? championAccuracy, List<(string Name, object? Input)> seen)
    {
        var h = new OrchestrationHarness("mnist-run");
        h.On<RegisterDatasetInput, RegisterDatasetResult>(ActivityNames.RegisterDataset, i => new RegisterDatasetResult(new DatasetRef(i.Name, "v1", "content"), false, 4, []));
        h.On<ValidateDatasetInput, ValidationReport>(ActivityNames.ValidateDataset, i =>
        {
            seen.Add(("validate", i.Rules));
            return new ValidationReport { Passed = true, Checks = [], Parts = [] };
        });
        h.On<TransformDatasetInput, TransformDatasetResult>(ActivityNames.TransformDataset, i =>
        {
            seen.Add(("transform", i.Recipe));
            return new TransformDatasetResult(Data, new TransformSpec(), [], false);
        });
        h.On<SweepInput, SweepResult>(OrchestrationNames.HyperparameterSweep, i =>
        {
            seen.Add(("sweep", i.Spec));
            var best = new TrialSummary("mnist-run-sweep-t003", new ParameterSet { ["model"] = "cnn", ["learningRate"] = "0.002", ["channels"] = "32", ["batchNorm"] = "true", ["augment"] = "0.4" }, TrialState.Succeeded, 0.987, null, null, null);
            return new SweepResult("mnist-run-sweep", SweepOutcomes.MaxTrialsReached, "budget", best, null, [best], 1);
        });
        h.On<TrainModelInput, TrainingResult>(OrchestrationNames.TrainModel, i => new TrainingResult
        {
            JobId = i.Job.JobId,
            Model = i.Job.Model,
            Device = "cpu",
            History = [],
            ParameterCount = 120_000,
            OnnxUri = "http://store/candidate.onnx",
            OnnxSha256 = new string('c', 64),
            Transform = new TransformSpec(),
        });
        h.On<EvaluateModelInput, EvaluateModelResult>(ActivityNames.EvaluateModel, i =>
        {
            var accuracy = i.OnnxSha256 == new string('c', 64) ? candidateAccuracy : championAccuracy!.Value;
            return new EvaluateModelResult(accuracy, 0.03, 10_000, [], "CPU") { Metrics = new Dictionary<string, double> { ["accuracy"] = accuracy, ["loss"] = 0.03 } };
        });
        h.On<GetModelAliasInput, ModelVersion?>(ActivityNames.GetModelAlias, i => championAccuracy is null ? null : new ModelVersion
        {
            Name = i.Model,
            Version = 5,
            ArtifactUri = "http://store/champion.onnx",
            Sha256 = new string('d', 64),
            Signature = new ModelSignature([], []),
            CreatedAt = DateTimeOffset.UnixEpoch,
        });
        h.On<ExportModelInput, ExportModelResult>(ActivityNames.ExportModel, i => new ExportModelResult("http://store/artifact.onnx", i.OnnxSha256, new ModelSignature([], []), 10));
        h.On<RegisterModelVersionInput, ModelVersion>(ActivityNames.RegisterModelVersion, i =>
        {
            seen.Add(("register", i.Draft));
            return ModelVersion.FromDraft(i.Model, 6, i.Draft, DateTimeOffset.UnixEpoch);
        });
        h.On<MoveModelAliasInput, ModelAlias>(ActivityNames.MoveModelAlias, i => ModelAlias.Move(i.Model, i.Alias, i.Version, null, DateTimeOffset.UnixEpoch));
        h.On<SmokeInferenceInput, SmokeInferenceResult>(ActivityNames.SmokeInference, i =>
        {
            seen.Add(("smoke", i));
            return new SmokeInferenceResult(i.ImageIndex, 2, 2, 0.99, i.Version, "CPU");
        });
        h.On<WriteRunReportInput, RunReportLocation>(ActivityNames.WriteRunReport, i =>
        {
            seen.Add(("report", i.Report));
            return new RunReportLocation("r.json", "r.md");
        });
        return h;
    }

    private static PipelineSpec Spec(bool quick = false)
    {
        var mnist = quick ? BuiltInPipelines.Mnist.WithBudget("quick") : BuiltInPipelines.Mnist;
        return mnist with { Dataset = mnist.Dataset with { SourceDirectories = Folders.SourceDirectories }, Gate = mnist.Gate with { Margin = 0.002 }, SmokeIndex = 7 };
    }

    [Theory]
    [InlineData(false, null)] // the first model: nothing to beat
    [InlineData(false, 0.990)] // 0.9951 beats 0.990 by more than the margin 0.002
    [InlineData(true, 0.990)]
    public async Task TrainingPipelineOnTheMnistSpecPromotesACandidateThatBeatsTheChampionByTheMargin(bool quick, double? champion)
    {
        var seen = new List<(string Name, object? Input)>();
        var h = Harness(0.9951, champion, seen);
        var spec = Spec(quick);
        var result = await h.RunAsync(c => TrainingPipeline.RunAsync(c, spec));

        Assert.Equal(MnistPipelineOutcomes.Promoted, result.Outcome);
        Assert.Equal((6, "accuracy", 0.9951, champion), (result.ModelVersion, result.Metric, result.Value, result.ChampionValue));
        Assert.Equal(1, h.CallsTo(ActivityNames.MoveModelAlias));

        // What MnistPipeline sent its steps: the MNIST rules, the t10k recipe, the sweep with its secondary objective.
        Assert.Equal(Json(MnistRulesNow), Json(seen.Single(s => s.Name == "validate").Input!));
        Assert.Equal("t10k", ((PreparationRecipe)seen.Single(s => s.Name == "transform").Input!).TestSource);
        var sweep = (SweepSpec)seen.Single(s => s.Name == "sweep").Input!;
        Assert.Equal(TrialMetrics.ParameterCount, sweep.SecondaryObjective!.Metric);
        Assert.Equal(Json(OldSweepSpecFor(quick ? OldQuick : new MnistPipelineInput { Dataset = Folders }, Data)), Json(sweep));

        // The retrain: the best CNN on train+val for the budget's epochs and samples, exported to ONNX.
        var retrain = (TrainModelInput)h.Calls.Single(c => c.Name == OrchestrationNames.TrainModel).Input!;
        Assert.True(retrain.Job.TrainOnValidation && retrain.Job.ExportOnnx);
        Assert.Equal(("cnn", quick ? 2 : 10, quick ? 20_000 : 0), (retrain.Job.Model, retrain.Job.Hyperparameters.Epochs, retrain.Job.Hyperparameters.MaxTrainSamples));
        Assert.Equal(("cosine", 1L), (retrain.Job.Hyperparameters.LrSchedule, retrain.Job.Hyperparameters.Seed));

        // Registered with MnistPipeline's metrics; the smoke test sends the spec's image; the champion alias moves.
        var draft = (ModelVersionDraft)seen.Single(s => s.Name == "register").Input!;
        Assert.Equal(0.987, draft.Metrics["sweep_best_val_accuracy"]);
        Assert.Equal(0.9951, draft.Metrics["test_accuracy"]);
        Assert.Equal(120_000.0, draft.Metrics["parameter_count"]);
        Assert.Equal("mnist/v1", draft.Lineage!.DatasetVersion);
        Assert.Equal(7, ((SmokeInferenceInput)seen.Single(s => s.Name == "smoke").Input!).ImageIndex);
        var move = (MoveModelAliasInput)h.Calls.Single(c => c.Name == ActivityNames.MoveModelAlias).Input!;
        Assert.Equal(("mnist", "champion", 6), (move.Model, move.Alias, move.Version));
        Assert.Equal("Promoted", ((PipelineReport)seen.Single(s => s.Name == "report").Input!).Outcome);
    }

    [Theory]
    [InlineData(0.9915)] // better than 0.990, but by less than the margin 0.002
    [InlineData(0.9850)]
    public async Task TrainingPipelineOnTheMnistSpecRejectsACandidateThatDoesNotBeatTheChampionByTheMargin(double candidate)
    {
        var seen = new List<(string Name, object? Input)>();
        var h = Harness(candidate, 0.990, seen);
        var result = await h.RunAsync(c => TrainingPipeline.RunAsync(c, Spec()));

        Assert.Equal(MnistPipelineOutcomes.GateRejected, result.Outcome);
        Assert.Null(result.ModelVersion);
        Assert.Contains("does not beat champion v5", result.Reason);
        foreach (var step in new[] { ActivityNames.ExportModel, ActivityNames.RegisterModelVersion, ActivityNames.MoveModelAlias, ActivityNames.SmokeInference })
            Assert.Equal(0, h.CallsTo(step));
        foreach (var step in new[] { "export-onnx", "register-model", "promote", "smoke-inference" })
            Assert.Contains(h.Persisted, r => r.Step == step && r.Status == StepStatus.Skipped);
        var report = (PipelineReport)seen.Single(s => s.Name == "report").Input!;
        Assert.Equal(("mnist", "GateRejected"), (report.Pipeline, report.Outcome));
        Assert.Equal(0.990, report.Metrics["champion_test_accuracy"]);
    }
}
