using MlFunctions.Core.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Models;

/// <summary>Flatten → (Linear → [BatchNorm1d] → ReLU → Dropout)* → Linear. Hyperparameters: HiddenSizes, Dropout, BatchNorm.</summary>
public sealed class MlpModel : IModelDefinition
{
    public string Name => "mlp";

    /// <summary>Logits for classification; one output for regression (the standardized target, <see cref="Training.RegressionObjective"/>).</summary>
    public IReadOnlyCollection<string> Tasks => [TrainingObjectives.Classification, TrainingObjectives.Regression];

    public Sequential Build(HyperParameters hp, int[] sampleShape, int classes)
    {
        if (hp.HiddenSizes.Count == 0 || hp.HiddenSizes.Any(h => h < 1))
            throw new JobValidationException("mlp: HiddenSizes must list at least one positive layer width.");
        var layers = new List<(string, nn.Module<Tensor, Tensor>)> { ("flatten", nn.Flatten()) };
        long inputs = sampleShape.Aggregate(1L, (a, b) => a * b);
        for (var i = 0; i < hp.HiddenSizes.Count; i++)
        {
            layers.Add(($"fc{i + 1}", nn.Linear(inputs, hp.HiddenSizes[i])));
            if (hp.BatchNorm)
                layers.Add(($"bn{i + 1}", nn.BatchNorm1d(hp.HiddenSizes[i])));
            layers.Add(($"relu{i + 1}", nn.ReLU()));
            if (hp.Dropout > 0)
                layers.Add(($"dropout{i + 1}", nn.Dropout(hp.Dropout)));
            inputs = hp.HiddenSizes[i];
        }

        layers.Add(("out", nn.Linear(inputs, classes)));
        return nn.Sequential(layers);
    }
}
