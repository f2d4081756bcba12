using MlFunctions.Core.Datasets;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;
using MlFunctions.Orchestrations.Pipelines;
using Xunit;

namespace MlFunctions.Tests.Pipelines;

/// <summary>The MNIST sweep's space: mixed batch sizes, BatchNorm on/off and the augmentation strength reach the trial jobs.</summary>
public sealed class MnistSearchSpaceTests
{
    [Fact]
    public void TheSpaceSearchesBatchSizeBatchNormAndAugmentationAndTrialsGetThem()
    {
        var input = new MnistPipelineInput { Dataset = new RegisterDatasetInput { Name = "mnist", SourceDirectories = ["x"] } };
        var spec = MnistPipeline.SweepSpecFor(input, new PreparedDataRef("prepared", "p", "h"));
        Assert.Empty(spec.Validate());
        var byName = spec.Parameters.ToDictionary(p => p.Name);
        Assert.Equal(["64", "128", "256"], byName["batchSize"].Values);
        Assert.Equal(["true", "false"], byName["batchNorm"].Values);
        Assert.Equal((MnistPipeline.AugmentMin, 1.0), (byName["augment"].Min!.Value, byName["augment"].Max!.Value));

        var suggestion = SuggestionAlgorithms.Get(spec.Algorithm).Suggest(new SuggestionRequest(new SearchSpace(spec.Parameters), ObjectiveDirection.Maximize, [], 1, 1, spec.AlgorithmSettings)).Suggestions.Single();
        var job = TrialJobs.ForTrial(spec.Trial.Job!, "t1", suggestion.Parameters, null, new Dictionary<string, string>());
        Assert.Equal(suggestion.Parameters.GetDouble("augment"), job.Hyperparameters.Augment);
        Assert.Equal(bool.Parse(suggestion.Parameters["batchNorm"]), job.Hyperparameters.BatchNorm);
        Assert.Equal(suggestion.Parameters.GetInt("batchSize"), job.Hyperparameters.BatchSize);
        Assert.Throws<ArgumentException>(() => TrialJobs.ForTrial(spec.Trial.Job!, "t2", new ParameterSet { ["batchNorm"] = "maybe" }, null, new Dictionary<string, string>()));

        // Without the CNN the space has no image-only parameter.
        var mlpOnly = MnistPipeline.SweepSpecFor(input with { Sweep = input.Sweep with { IncludeCnn = false } }, new PreparedDataRef("prepared", "p", "h"));
        Assert.DoesNotContain(mlpOnly.Parameters, p => p.Name is "augment" or "channels");
    }
}
