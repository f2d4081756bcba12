using MlFunctions.Core.Training;
using TorchSharp;
using TorchSharp.Modules;

namespace MlFunctions.GpuWorker.Models;

/// <summary>
/// One entry of the model zoo. Adding a model is one new class implementing this interface (with a
/// parameterless constructor): <see cref="ModelZoo"/> finds it by reflection, the trainer and the ONNX exporter
/// need no change as long as the model is a <see cref="Sequential"/> of layers <see cref="Onnx.OnnxExporter"/> maps.
/// </summary>
public interface IModelDefinition
{
    /// <summary>The <see cref="TrainingJob.Model"/> key, lower case.</summary>
    string Name { get; }

    /// <summary>
    /// Builds a freshly initialized network for inputs of <paramref name="sampleShape"/> (per sample, e.g. 1,28,28)
    /// and <paramref name="classes"/> outputs (logits). Throws <see cref="ArgumentException"/> for hyperparameters it
    /// cannot honour.
    /// </summary>
    Sequential Build(HyperParameters hp, int[] sampleShape, int classes);

    /// <summary>
    /// ONNX nodes for the trained network. The default maps the Sequential layer by layer and throws for any layer it
    /// cannot map; a model with a non-sequential forward overrides this.
    /// </summary>
    Onnx.OnnxGraph ExportOnnx(Sequential module, int[] sampleShape) => Onnx.OnnxExporter.ExportSequential(module, sampleShape);
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

    private static Dictionary<string, IModelDefinition> Discover() =>
        typeof(IModelDefinition).Assembly.GetTypes()
            .Where(t => t is { IsAbstract: false, IsInterface: false } && typeof(IModelDefinition).IsAssignableFrom(t) && t.GetConstructor(Type.EmptyTypes) is not null)
            .Select(t => (IModelDefinition)Activator.CreateInstance(t)!)
            .ToDictionary(m => m.Name.ToLowerInvariant());
}

/// <summary>A job that can never succeed as written (unknown model, invalid hyperparameters): not retried.</summary>
public sealed class JobValidationException(string message) : Exception(message);
