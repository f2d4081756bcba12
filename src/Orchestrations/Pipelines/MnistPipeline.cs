using System.Globalization;
using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;
using MlFunctions.Orchestrations.Sweeps;
using static MlFunctions.Orchestrations.Pipelines.PipelineSteps;

namespace MlFunctions.Orchestrations.Pipelines;

/// <summary>
/// Kubeflow's whole model development life cycle on MNIST, as plain C#: register → validate → transform →
/// sweep (MLP and CNN spaces) → retrain the best on train+val → evaluate on the test split → gate against
/// the champion → export → register the version → move <c>champion</c> → smoke inference → run report
/// (the exit handler, so a failed run gets its report too). Every step's cache key is its input
/// <em>content</em>, so a re-run on unchanged data skips straight to the gate.
/// </summary>
public static class MnistPipeline
{
    public const string Champion = "champion";

    /// <summary>The weakest augmentation the sweep tries (see SweepSpecFor).</summary>
    public const double AugmentMin = 0;

    public static async Task<MnistPipelineResult> RunAsync(TaskOrchestrationContext context, MnistPipelineInput? input)
    {
        if (input?.Dataset is null)
        {
            throw new ArgumentException("MnistPipeline needs an input {\"dataset\": {\"name\": \"mnist\", \"sourceDirectories\": [...]}} (or sourceContainer/sourcePrefix)");
        }

        var problems = Problems(input);
        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid MnistPipeline input: " + string.Join("; ", problems));
        }

        var runId = context.InstanceId;
        var run = PipelineRun.Start(context, new PipelineRunOptions { Caching = input.Cache, MaxStaleness = TimeSpan.FromDays(30), StepDefaults = Io });
        var started = context.CurrentUtcDateTime;
        MnistPipelineResult? result = null;
        SweepResult? sweep = null;
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
        string? datasetVersion = null;

        void Progress(string step) => context.SetCustomStatus(new PipelineProgress(step, run.Lineage.Count, 12, sweep?.Best?.Objective, metrics.GetValueOrDefault("test_accuracy")));

        await run.RunWithExitHandlerAsync(
            async () =>
            {
                // 1-3: data in, validated, transformed.
                Progress("register-dataset");
                var registered = await run.StepAsync(Register, input.Dataset, Live);
                datasetVersion = registered.Dataset.Version;
                Progress("validate-dataset");
                var report = await run.StepAsync(Validate, new ValidateDatasetInput(registered.Dataset, DatasetValidationRules.Mnist));
                if (!report.Passed)
                {
                    var failed = report.Checks.Where(c => !c.Passed).Select(c => $"{c.Part}: {c.Check} ({c.Detail})");
                    throw new InvalidDataException($"dataset {registered.Dataset.Name} {registered.Dataset.Version} failed validation: {string.Join("; ", failed)}");
                }

                Progress("transform-dataset");
                var prepared = await run.StepAsync(Transform, new TransformDatasetInput(registered.Dataset, input.Recipe));

                // 4: the sweep over both model families.
                Progress("sweep");
                sweep = await run.StepAsync(Sweep, new SweepInput(SweepSpecFor(input, prepared.Data)), Child(InstanceIds.Sweep(runId)));
                var best = sweep.Best ?? throw new InvalidOperationException($"the sweep finished without a successful trial: {sweep.Reason}");
                metrics["sweep_best_val_accuracy"] = best.Objective ?? double.NaN;

                // 5: the best configuration retrained on train+val, exported to ONNX by the worker.
                Progress("retrain");
                var job = TrialJobs.ForTrial(Template(input, prepared.Data), InstanceIds.Retrain(runId), best.Parameters, null, new Dictionary<string, string> { ["pipelineRun"] = runId, ["pipeline"] = "mnist" });
                job = job with
                {
                    TrainOnValidation = true,
                    ExportOnnx = true,
                    Hyperparameters = job.Hyperparameters with { Epochs = input.RetrainEpochs, MaxTrainSamples = input.RetrainMaxSamples },
                };
                var trained = await run.StepAsync(Retrain, new TrainModelInput(job, 3, 600), Child(InstanceIds.Retrain(runId)));
                if (trained.OnnxUri is null || trained.OnnxSha256 is null)
                {
                    throw new InvalidOperationException($"the retrain job {trained.JobId} produced no ONNX export");
                }

                // 6: evaluated with ONNX Runtime on the test split: what will be served is what is scored.
                Progress("evaluate");
                var evaluation = await run.StepAsync(Evaluate, new EvaluateModelInput(trained.OnnxUri, trained.OnnxSha256, prepared.Data));
                metrics["test_accuracy"] = evaluation.Accuracy;
                metrics["test_loss"] = evaluation.Loss;
                metrics["parameter_count"] = trained.ParameterCount;

                // 7: the gate. The champion is re-scored on this run's test split, so both numbers mean the same.
                Progress("gate");
                var champion = await run.StepAsync(GetChampion, new GetModelAliasInput(input.ModelName, Champion), Live);
                double? championAccuracy = null;
                if (champion is not null)
                {
                    var scored = await run.StepAsync(EvaluateChampion, new EvaluateModelInput(champion.ArtifactUri, champion.Sha256, prepared.Data, Transform: champion.Transform));
                    championAccuracy = scored.Accuracy;
                    metrics["champion_test_accuracy"] = scored.Accuracy;
                }

                if (championAccuracy is { } bar && evaluation.Accuracy <= bar + input.GateMargin)
                {
                    var why = string.Create(CultureInfo.InvariantCulture, $"the candidate's test accuracy {evaluation.Accuracy:F4} does not beat champion v{champion!.Version} ({bar:F4}) by the margin {input.GateMargin:F4}; nothing promoted");
                    await run.SkipAsync(Export, why);
                    await run.SkipAsync(RegisterVersion, why);
                    await run.SkipAsync(Promote, why);
                    await run.SkipAsync(Smoke, why);

                    return result = new MnistPipelineResult
                    {
                        RunId = runId,
                        Outcome = MnistPipelineOutcomes.GateRejected,
                        Reason = why,
                        TestAccuracy = evaluation.Accuracy,
                        ChampionAccuracy = championAccuracy,
                        Model = input.ModelName,
                        Sweep = sweep,
                        Data = prepared.Data,
                    };
                }

                // 8-10: export, register, promote.
                Progress("export-onnx");
                var exported = await run.StepAsync(Export, new ExportModelInput(input.ModelName, trained.OnnxUri, trained.OnnxSha256));
                Progress("register-model");
                var version = await run.StepAsync(RegisterVersion, new RegisterModelVersionInput(input.ModelName, new ModelVersionDraft
                {
                    ArtifactUri = exported.ArtifactUri,
                    Sha256 = exported.Sha256,
                    Signature = exported.Signature,
                    Transform = trained.Transform ?? prepared.Transform,
                    Metrics = metrics,
                    Lineage = new ModelLineage
                    {
                        PipelineRunId = runId,
                        DatasetVersion = $"{registered.Dataset.Name}/{registered.Dataset.Version}",
                        Hyperparameters = new Dictionary<string, string>(best.Parameters) { ["epochs"] = input.RetrainEpochs.ToString(CultureInfo.InvariantCulture) },
                    },
                }), Live);
                Progress("promote");
                await run.StepAsync(Promote, new MoveModelAliasInput(input.ModelName, Champion, version.Version), Live);

                // 11: one named test image through the serving layer, as a client would send it.
                Progress("smoke-inference");
                var smoke = await run.StepAsync(Smoke, new SmokeInferenceInput(input.ModelName, version.Version, prepared.Data, ImageIndex: input.SmokeImageIndex), Live);
                return result = new MnistPipelineResult
                {
                    RunId = runId,
                    Outcome = MnistPipelineOutcomes.Promoted,
                    Reason = championAccuracy is { } previous
                        ? string.Create(CultureInfo.InvariantCulture, $"test accuracy {evaluation.Accuracy:F4} beats champion v{champion!.Version} ({previous:F4}) by at least {input.GateMargin:F4}")
                        : string.Create(CultureInfo.InvariantCulture, $"first {input.ModelName} model (test accuracy {evaluation.Accuracy:F4}); no champion to beat"),
                    TestAccuracy = evaluation.Accuracy,
                    ChampionAccuracy = championAccuracy,
                    ModelVersion = version.Version,
                    Model = input.ModelName,
                    Sweep = sweep,
                    Smoke = smoke,
                    Data = prepared.Data,
                };
            },
            async failure =>
            {
                // 12: the report, always — a failed run's report says where and why it failed.
                Progress("report");
                var outcome = failure is null ? result!.Outcome : "Failed";
                var reason = failure is null ? result!.Reason : $"step {failure.Step ?? "(pipeline)"} failed: {failure.Reason}";
                var location = await run.StepAsync(Report, new WriteRunReportInput(runId, new PipelineReport
                {
                    RunId = runId,
                    Pipeline = OrchestrationNames.MnistPipeline,
                    Outcome = outcome,
                    Reason = reason,
                    Trigger = input.Trigger,
                    StartedAt = started,
                    EndedAt = context.CurrentUtcDateTime,
                    Metrics = metrics,
                    DatasetVersion = datasetVersion,
                    ModelVersion = result?.ModelVersion,
                    Sweep = sweep,
                    Smoke = result?.Smoke,
                    Lineage = run.Lineage,
                }), Live);
                if (result is not null)
                {
                    result = result with { ReportJsonUri = location.JsonUri, ReportMarkdownUri = location.MarkdownUri };
                }

                Progress(failure is null ? "done" : "failed");
            });
        return result!;
    }

    /// <summary>The sweep: MLP and CNN spaces as one space with a <c>model</c> choice; trials rank on val accuracy.</summary>
    public static SweepSpec SweepSpecFor(MnistPipelineInput input, PreparedDataRef data)
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

            // Image augmentation (random affine, ImageAugmentation): strength 0 (off) to 1.
            parameters.Add(ParameterSpec.Double("augment", AugmentMin, 1));
        }

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
                Job = Template(input, data) with
                {
                    ExportOnnx = false,
                    Hyperparameters = Template(input, data).Hyperparameters with { Epochs = s.Epochs, MaxTrainSamples = s.MaxTrainSamples },
                },
                MaxAttempts = 2,
                HeartbeatTimeoutSeconds = 600,
            },
        };
    }

    private static TrainingJob Template(MnistPipelineInput input, PreparedDataRef data) => new()
    {
        JobId = "template",
        Model = "mlp",
        // Cosine decay: the last epochs at a small learning rate settle the weights (≈ +0.3 points on MNIST).
        Hyperparameters = new HyperParameters { Seed = input.Sweep.Seed, LrSchedule = "cosine" },
        Data = data,
    };

    /// <summary>Every problem with the input (also checked by the HTTP starters before scheduling).</summary>
    public static IReadOnlyList<string> Problems(MnistPipelineInput input)
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(input.ModelName) || input.ModelName.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
            problems.Add($"modelName must be letters, digits, '-' or '_', got '{input.ModelName}'");
        if (input.RetrainEpochs is < 1 or > 200)
            problems.Add($"retrainEpochs must be between 1 and 200, got {input.RetrainEpochs}");
        if (input.Sweep.MaxTrials is < 1 or > 500)
            problems.Add($"sweep.maxTrials must be between 1 and 500, got {input.Sweep.MaxTrials}");
        if (input.Sweep.ParallelTrials < 1)
            problems.Add($"sweep.parallelTrials must be at least 1, got {input.Sweep.ParallelTrials}");
        if (input.Sweep.Epochs is < 1 or > 100)
            problems.Add($"sweep.epochs must be between 1 and 100, got {input.Sweep.Epochs}");
        if (input.GateMargin is < 0 or > 1)
            problems.Add($"gateMargin must be between 0 and 1, got {input.GateMargin}");
        if (input.SmokeImageIndex < 0)
            problems.Add($"smokeImageIndex must not be negative, got {input.SmokeImageIndex}");
        var sweepProblems = SweepSpecFor(input, new PreparedDataRef("prepared", "x", "x")).Validate();
        problems.AddRange(sweepProblems.Select(p => "sweep: " + p));
        return problems;
    }
}
