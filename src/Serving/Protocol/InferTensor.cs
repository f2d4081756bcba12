using System.Text.Json;

namespace MlFunctions.Serving.Protocol;

/// <summary>
/// A named tensor as it crosses the protocol: V2 datatype, shape and a flat row-major array whose element type
/// matches the datatype (see <see cref="Datatype"/>).
/// </summary>
public sealed class InferTensor
{
    public InferTensor(string name, string datatype, long[] shape, Array data, IReadOnlyDictionary<string, JsonElement>? parameters = null)
    {
        Name = name;
        Datatype = datatype;
        Shape = shape;
        Data = data;
        Parameters = parameters;
    }

    public string Name { get; }
    public string Datatype { get; }
    public long[] Shape { get; }
    public Array Data { get; set; }
    public IReadOnlyDictionary<string, JsonElement>? Parameters { get; }

    /// <summary>Number of elements the shape calls for, or -1 when a dimension is negative or it overflows.</summary>
    public static long ElementCount(ReadOnlySpan<long> shape)
    {
        long n = 1;
        foreach (long d in shape)
        {
            if (d < 0)
                return -1;
            try { n = checked(n * d); }
            catch (OverflowException) { return -1; }
        }
        return n;
    }

    public static InferTensor Create<T>(string name, string datatype, long[] shape, T[] data) => new(name, datatype, shape, data);
}

/// <summary>An output the caller asked for, with its parameters (e.g. <c>binary_data</c>).</summary>
public sealed record InferRequestedOutput(string Name, IReadOnlyDictionary<string, JsonElement>? Parameters = null);

/// <summary>A V2 infer request: <c>{id?, parameters?, inputs:[...], outputs?}</c>.</summary>
public sealed class InferRequest
{
    public string? Id { get; init; }
    public IReadOnlyDictionary<string, JsonElement>? Parameters { get; init; }
    public required IReadOnlyList<InferTensor> Inputs { get; init; }
    public IReadOnlyList<InferRequestedOutput>? Outputs { get; init; }

    /// <summary>
    /// The request's own JSON body, kept only for the payload log (which then copies these bytes instead of
    /// re-encoding every input number); empty when it was not kept (binary extension, redaction, logging off).
    /// Only bytes that <c>V2Codec.ParseRequest</c> accepted as one JSON object belong here: the log writes them unparsed.
    /// </summary>
    public ReadOnlyMemory<byte> RawJson { get; init; }

    /// <summary>True when a boolean parameter is set on the request.</summary>
    public bool Flag(string name) => Parameters is not null && Parameters.TryGetValue(name, out var v) && v.ValueKind == JsonValueKind.True;
}

/// <summary>A V2 infer response: <c>{model_name, model_version, id, outputs:[...]}</c>.</summary>
public sealed class InferResponse
{
    public required string ModelName { get; init; }
    public required string ModelVersion { get; init; }
    public string? Id { get; init; }
    public IReadOnlyDictionary<string, object>? Parameters { get; init; }
    public required IReadOnlyList<InferTensor> Outputs { get; init; }
}

/// <summary>Name, datatype and shape (-1 = dynamic) of a model input or output, as metadata reports it.</summary>
public sealed record TensorMetadata(string Name, string Datatype, long[] Shape);

/// <summary>V2 model metadata, plus the serving details (execution provider, resolved version) under parameters.</summary>
public sealed record ModelMetadata(
    string Name,
    IReadOnlyList<string> Versions,
    string Platform,
    IReadOnlyList<TensorMetadata> Inputs,
    IReadOnlyList<TensorMetadata> Outputs,
    IReadOnlyDictionary<string, string> Parameters);

/// <summary>V2 server metadata.</summary>
public sealed record ServerMetadata(string Name, string Version, IReadOnlyList<string> Extensions);
