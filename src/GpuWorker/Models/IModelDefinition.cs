using MlFunctions.Core.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Models;

/// <summary>
/// What a model is built for, from the prepared data and the task: the per-sample input shape, the number of outputs
/// (classes for classification, 1 for a ranking score), and for recommenders the catalogue sizes.
/// </summary>
public sealed record ModelInputs(string Task, int[] SampleShape, int Outputs, int Users = 0, int Items = 0);

/// <summary>
/// One entry of the model zoo. Adding a model is one new class implementing this interface (with a
/// parameterless constructor): <see cref="ModelZoo"/> finds it by reflection.
/// <list type="bullet">
/// <item>A classifier that is a <see cref="Sequential"/> of layers <see cref="Onnx.OnnxExporter"/> maps implements
/// <see cref="Build(HyperParameters, int[], int)"/> only; the trainer and the exporter need no change.</item>
/// <item>Any other model (a custom forward: recommenders, later a residual denoiser) implements
/// <see cref="BuildModule"/>, <see cref="ExportModule"/> and <see cref="Tasks"/>. The task
/// (<see cref="Training.ITrainingObjective"/>) decides what the module's single input and output tensors hold.</item>
/// </list>
/// </summary>
public interface IModelDefinition
{
    /// <summary>The <see cref="TrainingJob.Model"/> key, lower case.</summary>
    string Name { get; }

    /// <summary>The <see cref="TrainingObjectives"/> tasks this model can be trained for.</summary>
    IReadOnlyCollection<string> Tasks => [TrainingObjectives.Classification];

    /// <summary>
    /// Builds a freshly initialized network for inputs of <paramref name="sampleShape"/> (per sample, e.g. 1,28,28)
    /// and <paramref name="classes"/> outputs (logits). Throws <see cref="JobValidationException"/> for hyperparameters it
    /// cannot honour.
    /// </summary>
    Sequential Build(HyperParameters hp, int[] sampleShape, int classes) =>
        throw new JobValidationException($"model '{Name}' is not a sequential classifier; build it with BuildModule.");

    /// <summary>The network for <paramref name="inputs"/>; the default is the sequential classifier of <see cref="Build(HyperParameters, int[], int)"/>.</summary>
    nn.Module<Tensor, Tensor> BuildModule(HyperParameters hp, ModelInputs inputs) => Build(hp, inputs.SampleShape, inputs.Outputs);

    /// <summary>
    /// ONNX nodes for the trained network. The default maps the Sequential layer by layer and throws for any layer it
    /// cannot map; a model with a non-sequential forward overrides <see cref="ExportModule"/>.
    /// </summary>
    Onnx.OnnxGraph ExportOnnx(Sequential module, int[] sampleShape) => Onnx.OnnxExporter.ExportSequential(module, sampleShape);

    /// <summary>ONNX nodes for a module of <see cref="BuildModule"/>; the default handles Sequential models.</summary>
    Onnx.OnnxGraph ExportModule(nn.Module<Tensor, Tensor> module, ModelInputs inputs) =>
        module is Sequential sequential
            ? ExportOnnx(sequential, inputs.SampleShape)
            : throw new Onnx.OnnxExportException($"model '{Name}' has a custom forward; its definition must override ExportModule.");
}

/// <summary>All <see cref="IModelDefinition"/> classes in this assembly, keyed by name.</summary>
public static class ModelZoo
{
    private static readonly Lazy<IReadOnlyDictionary<string, IModelDefinition>> Models = new(Discover);

    public static IReadOnlyCollection<string> Names => Models.Value.Keys.ToArray();

    public static IModelDefinition Get(string name) =>
        Models.Value.TryGetValue(name.ToLowerInvariant(), out var model)
            ? model
            : throw new JobValidationException($"Unknown model '{name}': the model zoo has {string.Join(", ", Models.Value.Keys.Order())}.");

    /// <summary>The model, checked to fit <paramref name="task"/>.</summary>
    public static IModelDefinition Get(string name, string task)
    {
        var model = Get(name);
        if (!model.Tasks.Contains(TrainingObjectives.Normalize(task)))
            throw new JobValidationException($"model '{model.Name}' is for {string.Join(", ", model.Tasks)}, not {TrainingObjectives.Normalize(task)}; models for it: {string.Join(", ", Models.Value.Values.Where(m => m.Tasks.Contains(TrainingObjectives.Normalize(task))).Select(m => m.Name).Order())}.");
        return model;
    }

    private static Dictionary<string, IModelDefinition> Discover() =>
        typeof(IModelDefinition).Assembly.GetTypes()
            .Where(t => t is { IsAbstract: false, IsInterface: false } && typeof(IModelDefinition).IsAssignableFrom(t) && t.GetConstructor(Type.EmptyTypes) is not null)
            .Select(t => (IModelDefinition)Activator.CreateInstance(t)!)
            .ToDictionary(m => m.Name.ToLowerInvariant());
}

/// <summary>A job that can never succeed as written (unknown model, invalid hyperparameters): not retried.</summary>
public sealed class JobValidationException(string message) : Exception(message);
