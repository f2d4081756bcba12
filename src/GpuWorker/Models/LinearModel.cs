using MlFunctions.Core.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Models;

/// <summary>
/// Flatten → (Dropout) → Linear: multinomial logistic regression (two classes: binary logistic regression) on the
/// encoded features, e.g. TF-IDF of text plus flags. Hyperparameters: Dropout (on the inputs), WeightDecay (L2).
/// </summary>
public sealed class LinearModel : IModelDefinition
{
    public string Name => "linear";

    public Sequential Build(HyperParameters hp, int[] sampleShape, int classes)
    {
        if (hp.Dropout is < 0 or >= 1)
            throw new JobValidationException($"linear: dropout must be in [0, 1), got {hp.Dropout}.");
        var layers = new List<(string, nn.Module<Tensor, Tensor>)> { ("flatten", nn.Flatten()) };
        if (hp.Dropout > 0)
            layers.Add(("dropout", nn.Dropout(hp.Dropout)));
        layers.Add(("out", nn.Linear(sampleShape.Aggregate(1L, (a, b) => a * b), classes)));
        return nn.Sequential(layers);
    }
}
