using MlFunctions.Serving.Protocol;

namespace MlFunctions.Activities.Models;

/// <summary>
/// How the model activities map a prepared split onto an image classifier's signature: which input takes the
/// pixels, in what shape, and which output holds the logits. Shared by evaluation (a local session) and the smoke
/// inference (the serving layer's metadata), so both read a model the same way.
/// </summary>
internal static class ModelIo
{
    /// <summary>The exporter's output name (src/GpuWorker/Onnx/OnnxExporter.cs); any single output is accepted too.</summary>
    public const string LogitsOutput = "logits";

    public static TensorMetadata PixelInput(IReadOnlyList<TensorMetadata> inputs, string? transformInput, string model)
    {
        // A served image classifier also lists its PNG input (BYTES); the pixels go to the one FP32 input.
        var candidates = transformInput is not null ? inputs.Where(i => i.Name == transformInput).ToList()
            : inputs.Count > 1 ? inputs.Where(i => i.Datatype == Datatype.FP32).ToList() : inputs.ToList();
        if (candidates.Count != 1)
            throw new InvalidOperationException(
                $"Model {model} has inputs [{string.Join(", ", inputs.Select(i => i.Name))}]; the pixels need exactly one input"
                + (transformInput is null ? "" : $" named '{transformInput}' (the dataset transform's input)") + ".");
        var input = candidates[0];
        if (input.Datatype != Datatype.FP32)
            throw new InvalidOperationException($"Model {model} input '{input.Name}' is {input.Datatype}; image classifiers here take FP32 pixels.");
        return input;
    }

    public static TensorMetadata Logits(IReadOnlyList<TensorMetadata> outputs, string model) =>
        outputs.FirstOrDefault(o => o.Name == LogitsOutput)
        ?? (outputs.Count == 1 ? outputs[0] : throw new InvalidOperationException(
            $"Model {model} has outputs [{string.Join(", ", outputs.Select(o => o.Name))}] and none is named '{LogitsOutput}'."));

    /// <summary>The logits among a response's outputs.</summary>
    public static InferTensor Logits(IReadOnlyList<InferTensor> outputs, string model) =>
        outputs.FirstOrDefault(o => o.Name == LogitsOutput)
        ?? (outputs.Count == 1 ? outputs[0] : throw new InvalidOperationException(
            $"Model {model} answered outputs [{string.Join(", ", outputs.Select(o => o.Name))}] and none is named '{LogitsOutput}'."));

    /// <summary>A fixed batch size the model's (single) input demands, if any.</summary>
    public static int? FixedBatch(IReadOnlyList<TensorMetadata> inputs) =>
        inputs.Count == 1 && inputs[0].Shape is [> 0 and var b, ..] ? (int)b : null;

    /// <summary>
    /// The input shape for <paramref name="rows"/> samples: the model's own dimensions with the batch filled in, or the
    /// data's sample shape where the model leaves dimensions dynamic. Fails clearly when the two cannot agree.
    /// </summary>
    public static long[] BatchShape(TensorMetadata input, int[] sampleShape, int rows, string model)
    {
        var dims = input.Shape;
        long sampleSize = sampleShape.Aggregate(1L, (a, b) => a * b);
        long[] shape;
        if (dims.Length == 0)
            throw new InvalidOperationException($"Model {model} input '{input.Name}' is a scalar: its first dimension must be the batch.");
        if (dims[0] >= 0 && dims[0] != rows)
            throw new InvalidOperationException($"Model {model} input '{input.Name}' takes a fixed batch of {dims[0]}, not {rows}.");
        if (dims.Skip(1).All(d => d >= 0))
            shape = [rows, .. dims.Skip(1)];
        else if (dims.Length == sampleShape.Length + 1)
            shape = [rows, .. sampleShape.Select(d => (long)d)];
        else
            shape = [rows, .. dims.Skip(1)]; // reported below: a dynamic dimension the data cannot fill
        if (shape.Skip(1).Any(d => d < 0) || shape.Skip(1).Aggregate(1L, (a, b) => a * b) != sampleSize)
            throw new InvalidOperationException(
                $"Model {model} input '{input.Name}' has shape [{string.Join(",", dims)}] but the data's samples have shape [{string.Join(",", sampleShape)}].");
        return shape;
    }
}
