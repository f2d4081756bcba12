using System.Globalization;
using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;
using static MlFunctions.Orchestrations.Pipelines.PipelineSteps;

namespace MlFunctions.Orchestrations.Pipelines;

/// <summary>
/// Any pipeline spec, end to end: register → validate → transform → sweep → retrain the best on train+val →
/// evaluate on the test split → gate against the alias's current version → export → register → promote →
/// smoke inference → run report (the exit handler, so a failed run gets its report too). The spec says what data,
/// columns, transform, model family, search space, metric and gate; the decisions are pure Core functions
/// (<see cref="PipelineSpec"/>, <see cref="GateDecision"/>), so this is control flow only.
/// </summary>
public static class TrainingPipeline
{
    private const int StepsTotal = 12;

    public static async Task<PipelineRunResult> RunAsync(TaskOrchestrationContext context, PipelineSpec? spec)
    {
        var problems = spec?.Problems() ?? ["TrainingPipeline needs a pipeline spec as its input"];
        if (problems.Count > 0)
            throw new ArgumentException("Invalid pipeline spec: " + string.Join("; ", problems));

        var runId = context.InstanceId;
        var run = PipelineRun.Start(context, new PipelineRunOptions { Caching = spec!.Cache, MaxStaleness = TimeSpan.FromDays(30), StepDefaults = Io });
        var started = context.CurrentUtcDateTime;
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
        IReadOnlyList<RunReportImage> images = []; // the evaluate step's pictures (CT before/after slices), for the report
        var model = spec.RegisteredModel;
        PipelineRunResult? result = null;
        SweepResult? sweep = null;
        string? datasetVersion = null;

        var stepsTotal = StepsTotal + (spec.CrossValidationFolds > 0 ? 2 : 0);
        void Progress(string step) => context.SetCustomStatus(new PipelineProgress(step, run.Lineage.Count, stepsTotal, sweep?.Best?.Objective, metrics.GetValueOrDefault(spec.GateMetric)));

        await run.RunWithExitHandlerAsync(
            async () =>
            {
                Progress("register-dataset");
                var registered = await run.StepAsync(Register, spec.RegisterInput(), Live);
                datasetVersion = $"{registered.Dataset.Name}/{registered.Dataset.Version}";
                Progress("validate-dataset");
                await run.StepAsync(Validate, new ValidateDatasetInput(registered.Dataset, spec.ValidationRules()));
                Progress("transform-dataset");
                var prepared = await run.StepAsync(Transform, new TransformDatasetInput(registered.Dataset, spec.Recipe()));

                Progress("sweep");
                var sweepSpec = spec.SweepSpecFor(prepared.Data);
                sweep = await run.StepAsync(Sweep, new SweepInput(sweepSpec), Child(InstanceIds.Sweep(runId)));
                var best = sweep.Best ?? throw new InvalidOperationException($"the sweep finished without a successful trial: {sweep.Reason}");
                metrics[$"sweep_best_{sweepSpec.Objective.Metric}"] = best.Objective ?? double.NaN;

                if (spec.CrossValidationFolds > 0)
                {
                    // The configuration that ships, trained as the retrain is (retrainEpochs), on k stratified folds of
                    // train+val; the baselines on the very same folds. Reported as cv_*, baseline_* and logreg_*.
                    Progress("cross-validate");
                    var cvJob = TrialJobs.ForTrial(spec.JobTemplate(prepared.Data), InstanceIds.CrossValidation(runId), best.Parameters, null, new Dictionary<string, string> { ["pipelineRun"] = runId, ["pipeline"] = spec.Name });
                    cvJob = cvJob with { ExportOnnx = false, Hyperparameters = cvJob.Hyperparameters with { Epochs = spec.RetrainEpochs } };
                    var cv = await run.StepAsync(CrossValidateBest, new CrossValidationInput(InstanceIds.CrossValidation(runId), spec.CrossValidationFolds, cvJob, null), Child(InstanceIds.CrossValidation(runId)));
                    foreach (var (k, v) in cv.Metrics.Where(kv => kv.Key.StartsWith("val_", StringComparison.Ordinal)))
                        metrics[$"cv_{k[4..]}"] = v;
                    for (var f = 0; f < (cv.CrossValidation?.PerFold.Count ?? 0); f++)
                    {
                        if (cv.CrossValidation!.PerFold[f].TryGetValue("val_auc", out var foldAuc))
                            metrics[$"cv_auc_f{f}"] = foldAuc;
                    }

                    Progress("baselines");
                    var baselines = await run.StepAsync(Baselines, new CrossValidateBaselinesInput(prepared.Data, spec.CrossValidationFolds));
                    foreach (var (k, v) in baselines.Metrics)
                        metrics[k] = v;
                }

                Progress("retrain");
                var job = TrialJobs.ForTrial(spec.JobTemplate(prepared.Data), InstanceIds.Retrain(runId), best.Parameters, null, new Dictionary<string, string> { ["pipelineRun"] = runId, ["pipeline"] = spec.Name });
                // A CT denoiser trains on patches but validates on whole slices, which cannot merge: it retrains on the
                // training subjects and is scored on the untouched test subjects (#14).
                job = job with { TrainOnValidation = spec.Dataset.Kind != DatasetKinds.Ct, ExportOnnx = true, Hyperparameters = job.Hyperparameters with { Epochs = spec.RetrainEpochs, MaxTrainSamples = spec.RetrainMaxSamples } };
                var trained = await run.StepAsync(Retrain, new TrainModelInput(job, 3, 600), Child(InstanceIds.Retrain(runId)));
                if (trained.OnnxUri is null || trained.OnnxSha256 is null)
                    throw new InvalidOperationException($"the retrain job {trained.JobId} produced no ONNX export");

                Progress("evaluate");
                var evaluation = await run.StepAsync(Evaluate, new EvaluateModelInput(trained.OnnxUri, trained.OnnxSha256, prepared.Data));
                foreach (var (k, v) in evaluation.Metrics)
                    metrics[$"test_{k}"] = v;
                images = evaluation.Images;
                metrics["parameter_count"] = trained.ParameterCount;
                var value = evaluation.Metrics.GetValueOrDefault(spec.GateMetric, double.NaN);

                Progress("gate");
                var champion = await run.StepAsync(GetChampion, new GetModelAliasInput(model, spec.Alias), Live);
                double? championValue = null;
                if (champion is not null)
                {
                    // The champion is scored on this run's test split with its own stored transform.
                    var scored = await run.StepAsync(EvaluateChampion, new EvaluateModelInput(champion.ArtifactUri, champion.Sha256, prepared.Data, Transform: champion.Transform));
                    championValue = scored.Metrics.GetValueOrDefault(spec.GateMetric, double.NaN);
                    metrics[$"champion_test_{spec.GateMetric}"] = championValue.Value;
                }

                var verdict = GateDecision.Decide(spec.GateMetric, value, championValue, champion?.Version, spec.Gate.Margin, model);
                result = new PipelineRunResult
                {
                    RunId = runId,
                    Pipeline = spec.Name,
                    Outcome = verdict.Promote ? MnistPipelineOutcomes.Promoted : MnistPipelineOutcomes.GateRejected,
                    Reason = verdict.Reason,
                    Metric = spec.GateMetric,
                    Value = value,
                    ChampionValue = championValue,
                    Metrics = spec.CrossValidationFolds > 0
                        ? evaluation.Metrics.Concat(metrics.Where(kv => kv.Key.StartsWith("cv_", StringComparison.Ordinal) || kv.Key.StartsWith("baseline_", StringComparison.Ordinal) || kv.Key.StartsWith("logreg_", StringComparison.Ordinal)))
                            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal)
                        : evaluation.Metrics,
                    Model = model,
                    Sweep = sweep,
                    Data = prepared.Data,
                };
                if (!verdict.Promote)
                {
                    await run.SkipAsync(Export, verdict.Reason);
                    await run.SkipAsync(RegisterVersion, verdict.Reason);
                    await run.SkipAsync(Promote, verdict.Reason);
                    await run.SkipAsync(Smoke, verdict.Reason);
                    return result;
                }

                Progress("export-onnx");
                var exported = await run.StepAsync(Export, new ExportModelInput(model, trained.OnnxUri, trained.OnnxSha256));
                Progress("register-model");
                var version = await run.StepAsync(RegisterVersion, new RegisterModelVersionInput(model, new ModelVersionDraft
                {
                    ArtifactUri = exported.ArtifactUri,
                    Sha256 = exported.Sha256,
                    Signature = exported.Signature,
                    Transform = trained.Transform ?? prepared.Transform,
                    Metrics = metrics,
                    Lineage = new ModelLineage
                    {
                        PipelineRunId = runId,
                        DatasetVersion = datasetVersion,
                        Hyperparameters = new Dictionary<string, string>(best.Parameters) { ["epochs"] = spec.RetrainEpochs.ToString(CultureInfo.InvariantCulture), ["model"] = job.Model },
                    },
                }), Live);
                Progress("promote");
                await run.StepAsync(Promote, new MoveModelAliasInput(model, spec.Alias, version.Version), Live);
                Progress("smoke-inference");
                var smoke = await run.StepAsync(Smoke, new SmokeInferenceInput(model, version.Version, prepared.Data, ImageIndex: spec.SmokeIndex), Live);
                return result = result with { ModelVersion = version.Version, Smoke = smoke };
            },
            async failure =>
            {
                Progress("report");
                var location = await run.StepAsync(Report, new WriteRunReportInput(runId, new PipelineReport
                {
                    RunId = runId,
                    Pipeline = spec.Name,
                    Outcome = failure is null ? result!.Outcome : "Failed",
                    Reason = failure is null ? result!.Reason : $"step {failure.Step ?? "(pipeline)"} failed: {failure.Reason}",
                    Trigger = spec.Trigger,
                    StartedAt = started,
                    EndedAt = context.CurrentUtcDateTime,
                    Metrics = metrics,
                    DatasetVersion = datasetVersion,
                    ModelVersion = result?.ModelVersion,
                    Sweep = sweep,
                    Smoke = result?.Smoke,
                    Lineage = run.Lineage,
                    Images = images,
                }), Live);
                if (result is not null)
                    result = result with { ReportJsonUri = location.JsonUri, ReportMarkdownUri = location.MarkdownUri };
                Progress(failure is null ? "done" : "failed");
            });
        return result!;
    }
}
