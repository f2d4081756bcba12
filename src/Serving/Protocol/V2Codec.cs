using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace MlFunctions.Serving.Protocol;

/// <summary>An encoded response body; <see cref="JsonHeaderLength"/> is set when binary tensor data follow the JSON.</summary>
public sealed record EncodedBody(byte[] Body, int? JsonHeaderLength)
{
    public string ContentType => JsonHeaderLength is null ? "application/json" : "application/octet-stream";
}

/// <summary>
/// KServe V2 JSON codec with Triton's binary tensor data extension. With the extension the body is a JSON
/// header of <c>Inference-Header-Content-Length</c> bytes followed by raw tensors: each input whose
/// <c>parameters.binary_data_size</c> is set takes that many bytes, in input order, little-endian, BOOL as one
/// byte, BYTES as (uint32 length, bytes) per element. Outputs are returned binary when the request sets
/// <c>parameters.binary_data_output</c> or the output's own <c>parameters.binary_data</c>.
/// </summary>
public static class V2Codec
{
    public const string HeaderLengthHeader = "Inference-Header-Content-Length";
    public const string BinaryDataSize = "binary_data_size";
    public const string BinaryData = "binary_data";
    public const string BinaryDataOutput = "binary_data_output";

    /// <summary>Parses a request body; <paramref name="jsonHeaderLength"/> is the extension header when present.</summary>
    public static InferRequest ParseRequest(ReadOnlyMemory<byte> body, int? jsonHeaderLength = null)
    {
        if (jsonHeaderLength is { } h && (h < 0 || h > body.Length))
            throw InferenceError.Invalid($"{HeaderLengthHeader} {h} is outside the body of {body.Length} bytes.");
        var json = jsonHeaderLength is { } len ? body[..len] : body;
        var binary = jsonHeaderLength is { } len2 ? body[len2..] : ReadOnlyMemory<byte>.Empty;
        if (jsonHeaderLength is null && TryParseSimple(json.Span) is { } simple)
            return simple;

        using var doc = ParseJson(json);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw InferenceError.Invalid("The request body must be a JSON object.");
        if (!root.TryGetProperty("inputs", out var inputsEl) || inputsEl.ValueKind != JsonValueKind.Array || inputsEl.GetArrayLength() == 0)
            throw InferenceError.Invalid("The request must have a non-empty 'inputs' array.");

        var inputs = new List<InferTensor>();
        int binaryOffset = 0;
        foreach (var input in inputsEl.EnumerateArray())
        {
            var tensor = ParseInput(input, binary, ref binaryOffset, json.Length);
            if (inputs.Any(t => t.Name == tensor.Name))
                throw InferenceError.Invalid($"Input '{tensor.Name}' appears more than once.");
            inputs.Add(tensor);
        }
        if (binaryOffset != binary.Length)
            throw InferenceError.Invalid($"{binary.Length - binaryOffset} bytes of binary data are not claimed by any input's binary_data_size.");

        List<InferRequestedOutput>? outputs = null;
        if (root.TryGetProperty("outputs", out var outputsEl) && outputsEl.ValueKind != JsonValueKind.Null)
        {
            if (outputsEl.ValueKind != JsonValueKind.Array)
                throw InferenceError.Invalid("'outputs' must be an array.");
            outputs = [];
            foreach (var o in outputsEl.EnumerateArray())
            {
                if (o.ValueKind != JsonValueKind.Object || !o.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String)
                    throw InferenceError.Invalid("Each requested output needs a string 'name'.");
                outputs.Add(new InferRequestedOutput(n.GetString()!, ReadParameters(o)));
            }
        }

        string? id = null;
        if (root.TryGetProperty("id", out var idEl))
        {
            id = idEl.ValueKind switch
            {
                JsonValueKind.String => idEl.GetString(),
                JsonValueKind.Null => null,
                _ => throw InferenceError.Invalid("'id' must be a string."),
            };
        }
        return new InferRequest { Id = id, Parameters = ReadParameters(root), Inputs = inputs, Outputs = outputs };
    }

    /// <summary>
    /// One pass with a reader over the request nearly every JSON client sends: <c>{"id"?, "inputs": [{"name",
    /// "shape", "datatype": "FP32", "data": [flat numbers]}, ...]}</c>, shape before data, no parameters or
    /// outputs. Building a document first and then visiting it cost about twice as much, and at one instance
    /// per request that is a large share of the server's work. Null for anything else, valid or not, so the
    /// document parser below stays the one place that decides what is accepted and words every error.
    /// </summary>
    private static InferRequest? TryParseSimple(ReadOnlySpan<byte> json)
    {
        var r = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 256 });
        try
        {
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject)
                return null;
            string? id = null;
            bool seenId = false;
            List<InferTensor>? inputs = null;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueTextEquals("inputs"u8) && inputs is null)
                {
                    if (!r.Read() || r.TokenType != JsonTokenType.StartArray)
                        return null;
                    inputs = [];
                    while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                    {
                        if (ReadSimpleInput(ref r, json.Length) is not { } tensor || inputs.Exists(t => t.Name == tensor.Name))
                            return null;
                        inputs.Add(tensor);
                    }
                }
                else if (r.ValueTextEquals("id"u8) && !seenId)
                {
                    seenId = true;
                    if (!r.Read() || r.TokenType is not (JsonTokenType.String or JsonTokenType.Null))
                        return null;
                    id = r.TokenType == JsonTokenType.String ? r.GetString() : null;
                }
                else
                {
                    return null;
                }
            }
            // The root object must be closed and be all there is (Read throws on trailing content).
            if (r.TokenType != JsonTokenType.EndObject || r.CurrentDepth != 0 || r.Read() || inputs is not { Count: > 0 })
                return null;
            return new InferRequest { Id = id, Inputs = inputs };
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static InferTensor? ReadSimpleInput(ref Utf8JsonReader r, int jsonLength)
    {
        if (r.TokenType != JsonTokenType.StartObject)
            return null;
        string? name = null;
        bool fp32 = false;
        long[]? shape = null;
        float[]? data = null;
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.ValueTextEquals("name"u8) && name is null)
            {
                if (!r.Read() || r.TokenType != JsonTokenType.String || r.GetString() is not { Length: > 0 } n)
                    return null;
                name = n;
            }
            else if (r.ValueTextEquals("datatype"u8) && !fp32)
            {
                if (!r.Read() || r.TokenType != JsonTokenType.String || !r.ValueTextEquals("FP32"u8))
                    return null;
                fp32 = true;
            }
            else if (r.ValueTextEquals("shape"u8) && shape is null)
            {
                if (!r.Read() || r.TokenType != JsonTokenType.StartArray)
                    return null;
                var dims = new List<long>(4);
                while (r.Read() && r.TokenType == JsonTokenType.Number)
                {
                    if (!r.TryGetInt64(out long d) || d < 0)
                        return null;
                    dims.Add(d);
                }
                if (r.TokenType != JsonTokenType.EndArray)
                    return null;
                shape = [.. dims];
            }
            else if (r.ValueTextEquals("data"u8) && shape is not null && data is null)
            {
                long count = InferTensor.ElementCount(shape);
                if (count < 0 || count > jsonLength || !r.Read() || r.TokenType != JsonTokenType.StartArray)
                    return null;
                data = new float[count];
                int index = 0;
                while (r.Read() && r.TokenType == JsonTokenType.Number)
                {
                    if (index == data.Length || (!TryParseShortDecimal(r.ValueSpan, out data[index]) && !r.TryGetSingle(out data[index])))
                        return null;
                    index++;
                }
                if (r.TokenType != JsonTokenType.EndArray || index != data.Length)
                    return null;
            }
            else
            {
                return null;
            }
        }
        if (r.TokenType != JsonTokenType.EndObject || name is null || !fp32 || shape is null || data is null)
            return null;
        return new InferTensor(name, Datatype.FP32, shape, data);
    }

    internal static JsonDocument ParseJson(ReadOnlyMemory<byte> json)
    {
        try
        {
            return JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw InferenceError.Invalid($"The request body is not valid JSON: {e.Message}");
        }
    }

    internal static IReadOnlyDictionary<string, JsonElement>? ReadParameters(JsonElement owner)
    {
        if (!owner.TryGetProperty("parameters", out var p) || p.ValueKind == JsonValueKind.Null)
            return null;
        if (p.ValueKind != JsonValueKind.Object)
            throw InferenceError.Invalid("'parameters' must be an object.");
        // Clone: the values outlive the JsonDocument they were parsed from.
        return p.EnumerateObject().ToDictionary(x => x.Name, x => x.Value.Clone());
    }

    private static InferTensor ParseInput(JsonElement input, ReadOnlyMemory<byte> binary, ref int binaryOffset, int jsonLength)
    {
        if (input.ValueKind != JsonValueKind.Object)
            throw InferenceError.Invalid("Each input must be an object.");
        if (!input.TryGetProperty("name", out var nameEl) || nameEl.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(nameEl.GetString()))
            throw InferenceError.Invalid("Each input needs a non-empty string 'name'.");
        string name = nameEl.GetString()!;
        if (!input.TryGetProperty("datatype", out var dtEl) || dtEl.ValueKind != JsonValueKind.String)
            throw InferenceError.Invalid($"Input '{name}' needs a string 'datatype'.");
        string datatype = dtEl.GetString()!;
        if (!Datatype.IsKnown(datatype))
            throw InferenceError.Invalid($"Input '{name}' has unsupported datatype '{datatype}' (supported: {string.Join(", ", Datatype.All)}).");
        if (!input.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw InferenceError.Invalid($"Input '{name}' needs a 'shape' array.");
        var shape = new long[shapeEl.GetArrayLength()];
        int k = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw InferenceError.Invalid($"Input '{name}' shape must hold non-negative integers.");
            shape[k++] = v;
        }
        long count = InferTensor.ElementCount(shape);
        if (count < 0 || count > int.MaxValue)
            throw InferenceError.Invalid($"Input '{name}' shape [{string.Join(",", shape)}] is too large.");
        var parameters = ReadParameters(input);

        if (parameters is not null && parameters.TryGetValue(BinaryDataSize, out var sizeEl))
        {
            if (sizeEl.ValueKind != JsonValueKind.Number || !sizeEl.TryGetInt32(out int size) || size < 0)
                throw InferenceError.Invalid($"Input '{name}' binary_data_size must be a non-negative integer.");
            if (size > binary.Length - binaryOffset)
                throw InferenceError.Invalid($"Input '{name}' claims {size} bytes of binary data but only {binary.Length - binaryOffset} remain.");
            var bytes = binary.Span.Slice(binaryOffset, size);
            binaryOffset += size;
            return new InferTensor(name, datatype, shape, DecodeBinary(bytes, datatype, (int)count, name), parameters);
        }

        if (!input.TryGetProperty("data", out var data))
            throw InferenceError.Invalid($"Input '{name}' has neither 'data' nor parameters.binary_data_size.");
        // Every JSON element takes at least one byte: a larger count cannot match, so refuse before allocating.
        if (count > jsonLength)
            throw InferenceError.Invalid($"Input '{name}' data length does not match shape [{string.Join(",", shape)}] ({count} elements).");
        return new InferTensor(name, datatype, shape, DecodeJson(data, datatype, (int)count, name), parameters);
    }

    /// <summary>Flattens (possibly nested, row-major) JSON data into a typed array of exactly <paramref name="count"/> elements.</summary>
    internal static Array DecodeJson(JsonElement data, string datatype, int count, string name)
    {
        if (datatype == Datatype.FP32 && TryFlatSingles(data, count) is { } floats)
            return floats;
        return datatype switch
        {
            Datatype.FP32 => Fill<float, Fp32>(data, count, name, datatype),
            Datatype.FP64 => Fill<double, Fp64>(data, count, name, datatype),
            Datatype.INT64 => Fill<long, I64>(data, count, name, datatype),
            Datatype.INT32 => Fill<int, I32>(data, count, name, datatype),
            Datatype.UINT8 => Fill<byte, U8>(data, count, name, datatype),
            Datatype.BOOL => Fill<bool, Bool>(data, count, name, datatype),
            Datatype.BYTES => Fill<string, Bytes>(data, count, name, datatype),
            _ => throw InferenceError.Invalid($"Input '{name}' has unsupported datatype '{datatype}'."),
        };
    }

    /// <summary>
    /// The common FP32 case, a flat array of exactly <paramref name="count"/> numbers, read straight from the
    /// element's UTF-8 with a reader: about 3x cheaper than visiting each element of the document (the walk
    /// below), which was the largest cost of a small JSON request. Null for anything else (nested, wrong
    /// length, a non-number), which the walk then decodes or rejects with its precise message.
    /// </summary>
    private static float[]? TryFlatSingles(JsonElement data, int count)
    {
        if (data.ValueKind != JsonValueKind.Array)
            return null;
        var reader = new Utf8JsonReader(JsonMarshal.GetRawUtf8Value(data));
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
            return null;
        var result = new float[count];
        int index = 0;
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.EndArray)
                return index == count ? result : null;
            if (reader.TokenType != JsonTokenType.Number || index == count)
                return null;
            if (!TryParseShortDecimal(reader.ValueSpan, out result[index]) && !reader.TryGetSingle(out result[index]))
                return null;
            index++;
        }
        return null;
    }

    private static readonly double[] PowersOfTen = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

    /// <summary>
    /// Parses a JSON number of the form <c>-?digits(.digits)?</c> with at most 15 digits, the usual shape of
    /// pixel and feature values, without the general parser (which is most of the cost of a JSON tensor).
    /// Exact: the digits and the power of ten are exact doubles, their quotient is correctly rounded, and a
    /// double (53 bits) rounded again to float (24) gives the correctly rounded float, since 53 ≥ 2·24 + 2.
    /// False for anything else (exponents, more digits), which the caller hands to the general parser.
    /// </summary>
    internal static bool TryParseShortDecimal(ReadOnlySpan<byte> text, out float value)
    {
        value = 0;
        int i = 0;
        bool negative = text.Length > 0 && text[0] == (byte)'-';
        if (negative)
            i++;
        long mantissa = 0;
        int digits = 0, fraction = -1;
        for (; i < text.Length; i++)
        {
            byte c = text[i];
            if (c == (byte)'.' && fraction < 0)
            {
                fraction = 0;
                continue;
            }
            uint d = (uint)(c - '0');
            if (d > 9 || ++digits > 15)
                return false;
            mantissa = mantissa * 10 + d;
            if (fraction >= 0)
                fraction++;
        }
        if (digits == 0 || fraction == 0)
            return false;
        double v = fraction > 0 ? mantissa / PowersOfTen[fraction] : mantissa;
        value = (float)(negative ? -v : v);
        return true;
    }

    // Element converters as struct type parameters rather than delegates: the walk below runs once per element
    // (784 per MNIST instance), and a struct type argument lets the JIT specialize and inline the conversion.
    private interface IElementConverter<T>
    {
        static abstract bool TryConvert(JsonElement e, out T value);
    }

    private readonly struct Fp32 : IElementConverter<float>
    {
        public static bool TryConvert(JsonElement e, out float value) { value = 0; return e.ValueKind == JsonValueKind.Number && e.TryGetSingle(out value); }
    }

    private readonly struct Fp64 : IElementConverter<double>
    {
        public static bool TryConvert(JsonElement e, out double value) { value = 0; return e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out value); }
    }

    private readonly struct I64 : IElementConverter<long>
    {
        public static bool TryConvert(JsonElement e, out long value) { value = 0; return e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out value); }
    }

    private readonly struct I32 : IElementConverter<int>
    {
        public static bool TryConvert(JsonElement e, out int value) { value = 0; return e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out value); }
    }

    private readonly struct U8 : IElementConverter<byte>
    {
        public static bool TryConvert(JsonElement e, out byte value) { value = 0; return e.ValueKind == JsonValueKind.Number && e.TryGetByte(out value); }
    }

    private readonly struct Bool : IElementConverter<bool>
    {
        public static bool TryConvert(JsonElement e, out bool value)
        {
            value = e.ValueKind == JsonValueKind.True;
            return e.ValueKind is JsonValueKind.True or JsonValueKind.False;
        }
    }

    private readonly struct Bytes : IElementConverter<string>
    {
        public static bool TryConvert(JsonElement e, out string value)
        {
            value = e.ValueKind == JsonValueKind.String ? e.GetString()! : "";
            return e.ValueKind == JsonValueKind.String;
        }
    }

    private static T[] Fill<T, TConvert>(JsonElement data, int count, string name, string datatype) where TConvert : struct, IElementConverter<T>
    {
        var result = new T[count];
        int index = 0;
        Walk<T, TConvert>(data, result, ref index, name, datatype);
        if (index != count)
            throw InferenceError.Invalid($"Input '{name}' has {index} data elements but its shape needs {count}.");
        return result;
    }

    private static void Walk<T, TConvert>(JsonElement e, T[] result, ref int index, string name, string datatype) where TConvert : struct, IElementConverter<T>
    {
        if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (var child in e.EnumerateArray())
            {
                if (child.ValueKind == JsonValueKind.Array)
                {
                    Walk<T, TConvert>(child, result, ref index, name, datatype);
                    continue;
                }
                Store<T, TConvert>(child, result, ref index, name, datatype);
            }
            return;
        }
        Store<T, TConvert>(e, result, ref index, name, datatype);
    }

    private static void Store<T, TConvert>(JsonElement e, T[] result, ref int index, string name, string datatype) where TConvert : struct, IElementConverter<T>
    {
        if (!TConvert.TryConvert(e, out var value))
            throw InferenceError.Invalid($"Input '{name}' element {index} ({e.GetRawText()}) is not a valid {datatype}.");
        if (index >= result.Length)
            throw InferenceError.Invalid($"Input '{name}' has more data elements than its shape needs ({result.Length}).");
        result[index++] = value;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// One binary BYTES element as a string: UTF-8 text as such; anything that is not valid UTF-8 (a PNG file's raw bytes, which
    /// start with 0x89) as Latin-1, which maps each byte to one character and so keeps the bytes exactly (<see cref="ImageInputs"/>).
    /// </summary>
    private static string BytesElement(ReadOnlySpan<byte> element)
    {
        try
        {
            return StrictUtf8.GetString(element);
        }
        catch (DecoderFallbackException)
        {
            return Encoding.Latin1.GetString(element);
        }
    }

    internal static Array DecodeBinary(ReadOnlySpan<byte> bytes, string datatype, int count, string name)
    {
        if (datatype == Datatype.BYTES)
        {
            var strings = new string[count];
            int offset = 0;
            for (int i = 0; i < count; i++)
            {
                if (bytes.Length - offset < 4)
                    throw InferenceError.Invalid($"Input '{name}' binary BYTES data ends before element {i}.");
                int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes[offset..]);
                offset += 4;
                if (len < 0 || len > bytes.Length - offset)
                    throw InferenceError.Invalid($"Input '{name}' binary BYTES element {i} overruns the data.");
                strings[i] = BytesElement(bytes.Slice(offset, len));
                offset += len;
            }
            if (offset != bytes.Length)
                throw InferenceError.Invalid($"Input '{name}' binary BYTES data has {bytes.Length - offset} trailing bytes.");
            return strings;
        }
        long expected = (long)count * Datatype.ElementSize(datatype);
        if (bytes.Length != expected)
            throw InferenceError.Invalid($"Input '{name}' has {bytes.Length} bytes of binary data but shape and {datatype} need {expected}.");
        // The extension is little-endian, as is every platform .NET and ONNX Runtime ship on here.
        return datatype switch
        {
            Datatype.FP32 => MemoryMarshal.Cast<byte, float>(bytes).ToArray(),
            Datatype.FP64 => MemoryMarshal.Cast<byte, double>(bytes).ToArray(),
            Datatype.INT64 => MemoryMarshal.Cast<byte, long>(bytes).ToArray(),
            Datatype.INT32 => MemoryMarshal.Cast<byte, int>(bytes).ToArray(),
            Datatype.UINT8 => bytes.ToArray(),
            Datatype.BOOL => ToBools(bytes),
            _ => throw InferenceError.Invalid($"Input '{name}' has unsupported datatype '{datatype}'."),
        };

        static bool[] ToBools(ReadOnlySpan<byte> b)
        {
            var r = new bool[b.Length];
            for (int i = 0; i < b.Length; i++)
                r[i] = b[i] != 0;
            return r;
        }
    }

    /// <summary>Raw little-endian bytes of a tensor, as the binary extension carries them.</summary>
    public static byte[] EncodeBinary(Array data)
    {
        switch (data)
        {
            case float[] f: return MemoryMarshal.AsBytes(f.AsSpan()).ToArray();
            case double[] d: return MemoryMarshal.AsBytes(d.AsSpan()).ToArray();
            case long[] l: return MemoryMarshal.AsBytes(l.AsSpan()).ToArray();
            case int[] i: return MemoryMarshal.AsBytes(i.AsSpan()).ToArray();
            case byte[] b: return (byte[])b.Clone();
            case bool[] bo: return bo.Select(x => x ? (byte)1 : (byte)0).ToArray();
            case string[] s:
                {
                    using var ms = new MemoryStream();
                    Span<byte> len = stackalloc byte[4];
                    foreach (var str in s)
                    {
                        var bytes = Encoding.UTF8.GetBytes(str);
                        BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)bytes.Length);
                        ms.Write(len);
                        ms.Write(bytes);
                    }
                    return ms.ToArray();
                }
            default: throw new ArgumentException($"Unsupported tensor array {data.GetType()}.");
        }
    }

    /// <summary>Encodes a response as JSON, or JSON + binary tensors when the request asked for binary outputs.</summary>
    public static EncodedBody EncodeResponse(InferResponse response, InferRequest? request = null)
    {
        bool allBinary = request?.Flag(BinaryDataOutput) == true;
        var binaryParts = new List<byte[]>();
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("model_name", response.ModelName);
            w.WriteString("model_version", response.ModelVersion);
            if (response.Id is not null)
                w.WriteString("id", response.Id);
            if (response.Parameters is { Count: > 0 })
            {
                w.WritePropertyName("parameters");
                JsonSerializer.Serialize(w, response.Parameters);
            }
            w.WriteStartArray("outputs");
            foreach (var o in response.Outputs)
            {
                var requested = request?.Outputs?.FirstOrDefault(r => r.Name == o.Name);
                bool binary = allBinary || (requested?.Parameters?.TryGetValue(BinaryData, out var b) == true && b.ValueKind == JsonValueKind.True);
                w.WriteStartObject();
                w.WriteString("name", o.Name);
                w.WriteString("datatype", o.Datatype);
                w.WriteStartArray("shape");
                foreach (var d in o.Shape)
                    w.WriteNumberValue(d);
                w.WriteEndArray();
                if (binary)
                {
                    var bytes = EncodeBinary(o.Data);
                    binaryParts.Add(bytes);
                    w.WriteStartObject("parameters");
                    w.WriteNumber(BinaryDataSize, bytes.Length);
                    w.WriteEndObject();
                }
                else
                {
                    w.WritePropertyName("data");
                    WriteFlat(w, o.Data);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        if (binaryParts.Count == 0)
            return new EncodedBody(buffer.WrittenSpan.ToArray(), null);
        var body = new byte[buffer.WrittenCount + binaryParts.Sum(p => p.Length)];
        buffer.WrittenSpan.CopyTo(body);
        int offset = buffer.WrittenCount;
        foreach (var p in binaryParts)
        {
            p.CopyTo(body, offset);
            offset += p.Length;
        }
        return new EncodedBody(body, buffer.WrittenCount);
    }

    /// <summary>Writes a flat JSON array of the tensor's elements.</summary>
    public static void WriteFlat(Utf8JsonWriter w, Array data)
    {
        w.WriteStartArray();
        WriteElements(w, data, 0, data.Length);
        w.WriteEndArray();
    }

    /// <summary>Writes elements [start, start+count) of a typed array as JSON values.</summary>
    internal static void WriteElements(Utf8JsonWriter w, Array data, int start, int count)
    {
        switch (data)
        {
            case float[] f:
                foreach (var v in f.AsSpan(start, count))
                    if (float.IsFinite(v)) w.WriteNumberValue(v); else w.WriteStringValue(v.ToString(System.Globalization.CultureInfo.InvariantCulture));
                break;
            case double[] d:
                foreach (var v in d.AsSpan(start, count))
                    if (double.IsFinite(v)) w.WriteNumberValue(v); else w.WriteStringValue(v.ToString(System.Globalization.CultureInfo.InvariantCulture));
                break;
            case long[] l:
                foreach (var v in l.AsSpan(start, count)) w.WriteNumberValue(v);
                break;
            case int[] i:
                foreach (var v in i.AsSpan(start, count)) w.WriteNumberValue(v);
                break;
            case byte[] b:
                foreach (var v in b.AsSpan(start, count)) w.WriteNumberValue(v);
                break;
            case bool[] bo:
                foreach (var v in bo.AsSpan(start, count)) w.WriteBooleanValue(v);
                break;
            case string[] s:
                foreach (var v in s.AsSpan(start, count)) w.WriteStringValue(v);
                break;
            default:
                throw new ArgumentException($"Unsupported tensor array {data.GetType()}.");
        }
    }

    /// <summary>Writes elements of a row-major tensor nested by <paramref name="dims"/> (V1 predictions).</summary>
    internal static void WriteNested(Utf8JsonWriter w, Array data, int offset, ReadOnlySpan<long> dims)
    {
        if (dims.Length == 0)
        {
            WriteElements(w, data, offset, 1);
            return;
        }
        int inner = (int)InferTensor.ElementCount(dims[1..]);
        w.WriteStartArray();
        if (dims.Length == 1)
            WriteElements(w, data, offset, (int)dims[0]);
        else
            for (int i = 0; i < dims[0]; i++)
                WriteNested(w, data, offset + i * inner, dims[1..]);
        w.WriteEndArray();
    }
}
