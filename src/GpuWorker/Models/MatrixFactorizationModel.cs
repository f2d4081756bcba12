using MlFunctions.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Models;

/// <summary>Matrix factorization for implicit feedback (BPR or sampled BCE): user and item embeddings of EmbeddingSize plus biases, dot product.</summary>
public sealed class MatrixFactorizationModel : IModelDefinition
{
    public string Name => "mf";

    public IReadOnlyCollection<string> Tasks => [TrainingObjectives.Ranking];

    public nn.Module<Tensor, Tensor> BuildModule(HyperParameters hp, ModelInputs inputs)
    {
        if (inputs.Users < 1 || inputs.Items < 1)
            throw new JobValidationException($"mf: needs interaction data with users and items; got {inputs.Users} users, {inputs.Items} items.");
        if (hp.EmbeddingSize is < 1 or > 4096)
            throw new JobValidationException($"mf: embeddingSize must be 1..4096, got {hp.EmbeddingSize}.");
        return new MatrixFactorizationModule(inputs.Users, inputs.Items, hp.EmbeddingSize);
    }

    public Onnx.OnnxGraph ExportModule(nn.Module<Tensor, Tensor> module, ModelInputs inputs) => ((MatrixFactorizationModule)module).Export();
}
