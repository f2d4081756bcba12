using System.Buffers;
using System.Text.Json;

namespace MlFunctions.Serving.Protocol;

/// <summary>
/// KServe V1 (TensorFlow-Serving style) mapping onto V2: <c>{"instances": [...]}</c> becomes one batched V2
/// input, and the batched V2 outputs become <c>{"predictions": [...]}</c>, one entry per instance.
/// </summary>
/// <remarks>
/// A single-input model takes each instance as a (nested) array or scalar; a multi-input model takes each
/// instance as an object keyed by input name. The instance shape comes from the JSON nesting and must be the
/// same for every instance; the datatype is the model's. Predictions are a nested array per instance for a
/// single-output model, or an object keyed by output name otherwise.
/// </remarks>
public static class V1Codec
{
    public static InferRequest ParseRequest(ReadOnlyMemory<byte> body, IReadOnlyList<TensorMetadata> modelInputs)
    {
        using var doc = V2Codec.ParseJson(body);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("instances", out var instances) || instances.ValueKind != JsonValueKind.Array)
            throw InferenceError.Invalid("A V1 request must be an object with an 'instances' array.");
        int n = instances.GetArrayLength();
        if (n == 0)
            throw InferenceError.Invalid("'instances' must not be empty.");

        var inputs = new List<InferTensor>();
        foreach (var meta in modelInputs)
        {
            var perInstance = new List<JsonElement>(n);
            foreach (var inst in instances.EnumerateArray())
            {
                if (inst.ValueKind == JsonValueKind.Object)
                {
                    if (!inst.TryGetProperty(meta.Name, out var v))
                        throw InferenceError.Invalid($"An instance lacks input '{meta.Name}'.");
                    perInstance.Add(v);
                }
                else if (modelInputs.Count == 1)
                {
                    perInstance.Add(inst);
                }
                else
                {
                    throw InferenceError.Invalid($"The model has {modelInputs.Count} inputs: each instance must be an object keyed by input name.");
                }
            }
            var instanceShape = ShapeOf(perInstance[0]);
            foreach (var e in perInstance)
                if (!ShapeOf(e).SequenceEqual(instanceShape))
                    throw InferenceError.Invalid($"Instances of input '{meta.Name}' have different shapes.");
            long[] shape = [n, .. instanceShape];
            long count = InferTensor.ElementCount(shape);
            if (count < 0 || count > body.Length)
                throw InferenceError.Invalid($"Input '{meta.Name}' is too large.");
            // Re-use the V2 flattener on a synthetic array of the instances' elements.
            var data = Flatten(perInstance, meta, (int)count);
            inputs.Add(new InferTensor(meta.Name, meta.Datatype, shape, data));
        }
        return new InferRequest { Inputs = inputs, Parameters = V2Codec.ReadParameters(root) };
    }

    private static Array Flatten(List<JsonElement> perInstance, TensorMetadata meta, int count)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            foreach (var e in perInstance)
                e.WriteTo(w);
            w.WriteEndArray();
        }
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return V2Codec.DecodeJson(doc.RootElement, meta.Datatype, count, meta.Name);
    }

    private static List<long> ShapeOf(JsonElement e)
    {
        var shape = new List<long>();
        while (e.ValueKind == JsonValueKind.Array)
        {
            int len = e.GetArrayLength();
            shape.Add(len);
            if (len == 0)
                break;
            e = e[0];
        }
        return shape;
    }

    public static byte[] EncodeResponse(InferResponse response)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("predictions");
            long n = response.Outputs.Count == 0 ? 0 : response.Outputs[0].Shape.FirstOrDefault(1);
            foreach (var o in response.Outputs)
                if (o.Shape.Length == 0 || o.Shape[0] != n)
                    throw new InferenceError(InferenceErrorKind.Internal, $"Output '{o.Name}' has no batch dimension of {n}: it cannot be split into V1 predictions.");
            for (int i = 0; i < n; i++)
            {
                if (response.Outputs.Count == 1)
                {
                    WriteRow(w, response.Outputs[0], i);
                }
                else
                {
                    w.WriteStartObject();
                    foreach (var o in response.Outputs)
                    {
                        w.WritePropertyName(o.Name);
                        WriteRow(w, o, i);
                    }
                    w.WriteEndObject();
                }
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteRow(Utf8JsonWriter w, InferTensor o, int row)
    {
        var inner = o.Shape.AsSpan(1);
        int size = (int)InferTensor.ElementCount(inner);
        V2Codec.WriteNested(w, o.Data, row * size, inner);
    }
}
