using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;
using MlFunctions.Orchestrations.Pipelines;
using Xunit;

namespace MlFunctions.Tests.Pipelines;

/// <summary>TrainingPipeline's gate and promotion over a mocked context: which steps run, with what, for each verdict.</summary>
public sealed class TrainingPipelineTests
{
    private static readonly PipelineSpec Spec = new()
    {
        Name = "loans",
        Dataset = new PipelineDataset { SourceContainer = "uploads", SourcePrefix = "datasets/loans/b1" },
        Columns = new TabularColumns { Label = "approved" },
        Metric = "auc",
        Gate = new PipelineGate(Margin: 0.01),
        Sweep = new PipelineSweep { MaxTrials = 2 },
    };

    private static readonly TransformSpec ChampionTransform = new() { Scale = 2 };

    private static OrchestrationHarness Harness(double candidateAuc, double? championAuc)
    {
        var h = new OrchestrationHarness("loans-run");
        var data = new PreparedDataRef("prepared", "loans/v1/r", "prepared-hash");
        h.On<RegisterDatasetInput, RegisterDatasetResult>(ActivityNames.RegisterDataset, i => new RegisterDatasetResult(new DatasetRef(i.Name, "v1", "content"), false, 1, []));
        h.On<ValidateDatasetInput, ValidationReport>(ActivityNames.ValidateDataset, _ => new ValidationReport { Passed = true, Checks = [], Parts = [] });
        h.On<TransformDatasetInput, TransformDatasetResult>(ActivityNames.TransformDataset, i => new TransformDatasetResult(data, new TransformSpec(), [], false));
        h.On<SweepInput, SweepResult>(OrchestrationNames.HyperparameterSweep, i =>
        {
            var best = new TrialSummary("loans-run-sweep-t001", new ParameterSet { ["learningRate"] = "0.01", ["hiddenSize"] = "32" }, TrialState.Succeeded, 0.9, null, null, null);
            return new SweepResult("loans-run-sweep", SweepOutcomes.MaxTrialsReached, "budget", best, null, [best], 1);
        });
        h.On<TrainModelInput, TrainingResult>(OrchestrationNames.TrainModel, i => new TrainingResult
        {
            JobId = i.Job.JobId,
            Model = i.Job.Model,
            Device = "cpu",
            History = [],
            OnnxUri = "http://store/candidate.onnx",
            OnnxSha256 = new string('c', 64),
            Transform = new TransformSpec(),
        });
        h.On<EvaluateModelInput, EvaluateModelResult>(ActivityNames.EvaluateModel, i => new EvaluateModelResult(0.9, 0.3, 100, [], "CPU")
        {
            Metrics = new Dictionary<string, double> { ["auc"] = i.OnnxSha256 == new string('c', 64) ? candidateAuc : championAuc!.Value, ["accuracy"] = 0.9 },
        });
        h.On<GetModelAliasInput, ModelVersion?>(ActivityNames.GetModelAlias, i => championAuc is null ? null : new ModelVersion
        {
            Name = i.Model,
            Version = 3,
            ArtifactUri = "http://store/champion.onnx",
            Sha256 = new string('d', 64),
            Signature = new ModelSignature([], []),
            Transform = ChampionTransform,
            CreatedAt = DateTimeOffset.UnixEpoch,
        });
        h.On<ExportModelInput, ExportModelResult>(ActivityNames.ExportModel, i => new ExportModelResult("http://store/artifact.onnx", i.OnnxSha256, new ModelSignature([], []), 10));
        h.On<RegisterModelVersionInput, ModelVersion>(ActivityNames.RegisterModelVersion, i => ModelVersion.FromDraft(i.Model, 4, i.Draft, DateTimeOffset.UnixEpoch));
        h.On<MoveModelAliasInput, ModelAlias>(ActivityNames.MoveModelAlias, i => ModelAlias.Move(i.Model, i.Alias, i.Version, null, DateTimeOffset.UnixEpoch));
        h.On<SmokeInferenceInput, SmokeInferenceResult>(ActivityNames.SmokeInference, i => new SmokeInferenceResult(0, 1, 1, 0.9, i.Version, "CPU"));
        h.On<WriteRunReportInput, RunReportLocation>(ActivityNames.WriteRunReport, _ => new RunReportLocation("r.json", "r.md"));
        return h;
    }

    [Fact]
    public async Task A_candidate_that_beats_the_champion_by_the_margin_is_registered_promoted_and_smoke_tested()
    {
        var h = Harness(candidateAuc: 0.95, championAuc: 0.90);
        var result = await h.RunAsync(c => TrainingPipeline.RunAsync(c, Spec));
        Assert.Equal(MnistPipelineOutcomes.Promoted, result.Outcome);
        Assert.Equal(4, result.ModelVersion);
        Assert.Equal(0.95, result.Value);
        Assert.Equal(0.90, result.ChampionValue);
        Assert.Equal(1, h.CallsTo(ActivityNames.MoveModelAlias));
        Assert.Equal(1, h.CallsTo(ActivityNames.SmokeInference));

        // The champion is scored with its own stored transform; the retrain is named by the run.
        var championEval = h.Calls.Where(c => c.Name == ActivityNames.EvaluateModel).Select(c => (EvaluateModelInput)c.Input!).Single(i => i.OnnxSha256 == new string('d', 64));
        Assert.Equal(2, championEval.Transform!.Scale); // the champion's, not the prepared data's (scale 1)
        Assert.Contains(h.Calls, c => c.Name == OrchestrationNames.TrainModel && c.Options is SubOrchestrationOptions { InstanceId: "loans-run-retrain" });
        var retrain = h.Calls.Single(c => c.Name == OrchestrationNames.TrainModel).Input as TrainModelInput;
        Assert.True(retrain!.Job.TrainOnValidation);
        Assert.Equal([32], retrain.Job.Hyperparameters.HiddenSizes);
    }

    [Theory]
    [InlineData(0.905)] // better, but not by the margin
    [InlineData(0.85)]
    public async Task A_candidate_that_does_not_beat_the_champion_by_the_margin_changes_nothing(double candidate)
    {
        var h = Harness(candidate, championAuc: 0.90);
        var result = await h.RunAsync(c => TrainingPipeline.RunAsync(c, Spec));
        Assert.Equal(MnistPipelineOutcomes.GateRejected, result.Outcome);
        Assert.Null(result.ModelVersion);
        Assert.Contains("does not beat champion v3", result.Reason);
        Assert.Equal(0, h.CallsTo(ActivityNames.ExportModel));
        Assert.Equal(0, h.CallsTo(ActivityNames.RegisterModelVersion));
        Assert.Equal(0, h.CallsTo(ActivityNames.MoveModelAlias));
        Assert.Equal(1, h.CallsTo(ActivityNames.WriteRunReport));
        Assert.Contains(h.Persisted, r => r.Step == "promote" && r.Status == StepStatus.Skipped);
    }

    [Fact]
    public async Task The_first_model_is_promoted_and_an_invalid_spec_fails_before_any_step()
    {
        var first = Harness(candidateAuc: 0.7, championAuc: null);
        Assert.Equal(MnistPipelineOutcomes.Promoted, (await first.RunAsync(c => TrainingPipeline.RunAsync(c, Spec))).Outcome);

        var h = Harness(0.9, null);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => h.RunAsync(c => TrainingPipeline.RunAsync(c, Spec with { Metric = "r2" })));
        Assert.Contains("metric must be", e.Message);
        Assert.Empty(h.Calls);
    }
}
