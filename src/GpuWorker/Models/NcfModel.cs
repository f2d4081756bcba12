using MlFunctions.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Models;

/// <summary>NCF-style recommender: user and item embeddings (EmbeddingSize) concatenated, dense ReLU layers (HiddenSizes, Dropout), one score.</summary>
public sealed class NcfModel : IModelDefinition
{
    public string Name => "ncf";

    public IReadOnlyCollection<string> Tasks => [TrainingObjectives.Ranking];

    public nn.Module<Tensor, Tensor> BuildModule(HyperParameters hp, ModelInputs inputs)
    {
        if (inputs.Users < 1 || inputs.Items < 1)
            throw new JobValidationException($"ncf: needs interaction data with users and items; got {inputs.Users} users, {inputs.Items} items.");
        if (hp.EmbeddingSize is < 1 or > 4096)
            throw new JobValidationException($"ncf: embeddingSize must be 1..4096, got {hp.EmbeddingSize}.");
        if (hp.HiddenSizes.Any(h => h < 1))
            throw new JobValidationException("ncf: HiddenSizes must be positive layer widths.");
        return new NcfModule(inputs.Users, inputs.Items, hp.EmbeddingSize, hp.HiddenSizes, hp.Dropout);
    }

    public Onnx.OnnxGraph ExportModule(nn.Module<Tensor, Tensor> module, ModelInputs inputs) => ((NcfModule)module).Export();
}
