using System.Text.Json;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Transforms;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving.Tests;

public sealed class TransformSpecTests
{
    [Fact]
    public void Mnist_transform_scales_then_normalizes()
    {
        var spec = TransformSpec.Mnist();
        float[] pixels = [0, 255, 127.5f];
        spec.Apply(pixels);
        Assert.Equal(-0.1307f / 0.3081f, pixels[0], 5);
        Assert.Equal((1f - 0.1307f) / 0.3081f, pixels[1], 5);
        Assert.Equal((0.5f - 0.1307f) / 0.3081f, pixels[2], 5);
    }

    [Fact]
    public void Per_channel_transform_uses_nchw_planes()
    {
        var spec = new TransformSpec { Scale = 1f, Mean = [1f, 2f], Std = [1f, 2f], PlaneSize = 2 };
        float[] x = [1, 1, 2, 2, /* second sample */ 3, 3, 4, 4];
        spec.Apply(x);
        Assert.Equal(new[] { 0f, 0f, 0f, 0f, 2f, 2f, 1f, 1f }, x);
    }

    [Fact]
    public void Transform_round_trips_through_system_text_json_with_stable_names()
    {
        var spec = TransformSpec.Mnist("pixels");
        var json = JsonSerializer.Serialize(spec);
        Assert.Contains("\"schemaVersion\":1", json);
        Assert.Contains("\"kind\":\"scale_normalize\"", json);
        Assert.Contains("\"input\":\"pixels\"", json);
        var back = JsonSerializer.Deserialize<TransformSpec>(json)!;
        Assert.Equal(spec.Scale, back.Scale);
        Assert.Equal(spec.Mean, back.Mean);
        Assert.Equal(spec.Std, back.Std);
        Assert.Equal(spec.PlaneSize, back.PlaneSize);
        // A record written by another writer (the training worker) with only some fields still reads.
        var minimal = JsonSerializer.Deserialize<TransformSpec>("""{"scale":0.5,"mean":[0],"std":[1]}""")!;
        float[] x = [4];
        minimal.Apply(x);
        Assert.Equal(2f, x[0]);
    }

    [Theory]
    [InlineData("""{"schemaVersion":2}""")]
    [InlineData("""{"kind":"resize"}""")]
    [InlineData("""{"mean":[0,0],"std":[1]}""")]
    [InlineData("""{"std":[0]}""")]
    [InlineData("""{"mean":[0,0],"std":[1,1]}""")]
    public void Transforms_this_build_cannot_apply_are_refused(string json)
    {
        var spec = JsonSerializer.Deserialize<TransformSpec>(json)!;
        Assert.Throws<ArgumentException>(() => spec.Apply(new float[4]));
    }
}

public sealed class RegistryRecordTests
{
    [Theory]
    [InlineData("mnist", true)]
    [InlineData("mnist-mlp_v2.1", true)]
    [InlineData("", false)]
    [InlineData("-x", false)]
    [InlineData("a@b", false)]
    [InlineData("a/b", false)]
    public void Names_reserve_at_and_slash(string name, bool valid) => Assert.Equal(valid, RegistryNames.IsValid(name));

    [Fact]
    public void Model_version_round_trips_as_json()
    {
        var v = ModelVersion.FromDraft("mnist", 3, new ModelVersionDraft
        {
            ArtifactUri = "models/mnist/artifacts/abc.onnx",
            Sha256 = new string('A', 64),
            Signature = new ModelSignature([new TensorSignature("input", "FP32", [-1, 1, 28, 28])], [new TensorSignature("logits", "FP32", [-1, 10])]),
            Transform = TransformSpec.Mnist(),
            Metrics = new Dictionary<string, double> { ["accuracy"] = 0.98 },
            Lineage = new ModelLineage { PipelineRunId = "run1", DatasetVersion = "sha:1", Hyperparameters = new Dictionary<string, string> { ["lr"] = "0.001" } },
        }, DateTimeOffset.Parse("2025-01-02T03:04:05Z"));
        var json = JsonSerializer.Serialize(v, RegistryJson.Options);
        var back = JsonSerializer.Deserialize<ModelVersion>(json, RegistryJson.Options)!;
        Assert.Equal(new string('a', 64), back.Sha256); // normalized to lower case
        Assert.Equal([-1L, 1, 28, 28], back.Signature.Inputs[0].Shape);
        Assert.Equal("0.001", back.Lineage.Hyperparameters["lr"]);
        Assert.Equal(0.98, back.Metrics["accuracy"]);
        Assert.Equal(v.CreatedAt, back.CreatedAt);
        Assert.Equal(TransformSpec.Mnist().Mean, back.Transform!.Mean);
    }

    [Fact]
    public async Task In_memory_registry_keeps_every_concurrent_alias_move()
    {
        var registry = new InMemoryModelRegistry();
        await RegistryContract.AliasMovesUnderConcurrentWritersAsync(registry, "m", writers: 16, movesEach: 10);
    }

    [Fact]
    public async Task In_memory_registry_numbers_and_dedupes_versions()
    {
        await RegistryContract.VersionsAreNumberedAndIdempotentAsync(new InMemoryModelRegistry(), "m");
    }
}

public sealed class CodecTests
{
    [Fact]
    public void Nested_and_flat_json_data_decode_the_same()
    {
        var flat = V2Codec.ParseRequest("""{"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[1,2,3,4]}]}"""u8.ToArray());
        var nested = V2Codec.ParseRequest("""{"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[[1,2],[3,4]]}]}"""u8.ToArray());
        Assert.Equal((int[])flat.Inputs[0].Data, (int[])nested.Inputs[0].Data);
    }

    [Theory]
    [InlineData("FP32", "[1.5,-2]")]
    [InlineData("FP64", "[1.5,-2]")]
    [InlineData("INT64", "[9007199254740993,-2]")]
    [InlineData("INT32", "[7,-2]")]
    [InlineData("UINT8", "[0,255]")]
    [InlineData("BOOL", "[true,false]")]
    [InlineData("BYTES", "[\"héllo\",\"\"]")]
    public void Every_datatype_round_trips_through_json_and_binary(string datatype, string data)
    {
        var json = V2Codec.ParseRequest(System.Text.Encoding.UTF8.GetBytes($$"""{"inputs":[{"name":"x","shape":[2],"datatype":"{{datatype}}","data":{{data}}}]}"""));
        var tensor = json.Inputs[0];
        var bytes = V2Codec.EncodeBinary(tensor.Data);
        var header = System.Text.Encoding.UTF8.GetBytes("{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"" + datatype + "\",\"parameters\":{\"binary_data_size\":" + bytes.Length + "}}]}");
        var binary = V2Codec.ParseRequest(header.Concat(bytes).ToArray(), header.Length);
        Assert.Equal(tensor.Data.Cast<object>(), binary.Inputs[0].Data.Cast<object>());

        var response = new InferResponse { ModelName = "m", ModelVersion = "1", Outputs = [new InferTensor("y", datatype, [2], tensor.Data)] };
        var encoded = V2Codec.EncodeResponse(response);
        Assert.Null(encoded.JsonHeaderLength);
        using var doc = JsonDocument.Parse(encoded.Body);
        var back = V2Codec.DecodeJson(doc.RootElement.GetProperty("outputs")[0].GetProperty("data"), datatype, 2, "y");
        Assert.Equal(tensor.Data.Cast<object>(), back.Cast<object>());
    }

    [Fact]
    public void Short_decimals_parse_to_the_correctly_rounded_float()
    {
        // The fast FP32 path must agree bit for bit with the general parser on every value it accepts.
        var rng = new Random(7);
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        for (int i = 0; i < 200_000; i++)
        {
            string text = (i % 3) switch
            {
                0 => (rng.NextDouble() * Math.Pow(10, rng.Next(-8, 9))).ToString("R", inv),
                1 => Math.Round(rng.NextDouble() * 1000, rng.Next(0, 12)).ToString("0.############", inv),
                _ => (rng.NextDouble() - 0.5).ToString("0.##############", inv),
            };
            if (V2Codec.TryParseShortDecimal(System.Text.Encoding.ASCII.GetBytes(text), out float fast))
                Assert.Equal(BitConverter.SingleToInt32Bits(float.Parse(text, inv)), BitConverter.SingleToInt32Bits(fast));
        }
        Assert.True(V2Codec.TryParseShortDecimal("-0"u8, out float negativeZero) && float.IsNegative(negativeZero));
        Assert.False(V2Codec.TryParseShortDecimal("1e3"u8, out _));
        Assert.False(V2Codec.TryParseShortDecimal("1234567890123456"u8, out _)); // 16 digits: left to the general parser
    }

    [Theory]
    [InlineData("""{"id":"r1","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[0,-0.5,1e3,0.125]}]}""")]
    [InlineData("""{"inputs":[{"datatype":"FP32","name":"x","shape":[2,2],"data":[[0,-0.5],[1e3,0.125]]}],"parameters":{"p":1}}""")]
    [InlineData("""{"inputs":[{"name":"x","data":[0,-0.5,1e3,0.125],"shape":[2,2],"datatype":"FP32"}],"id":null}""")]
    public void Json_requests_decode_alike_on_the_fast_and_the_general_path(string body)
    {
        // The first is the one-pass shape; the others (nested data, parameters, data before shape) take the document path.
        var request = V2Codec.ParseRequest(System.Text.Encoding.UTF8.GetBytes(body));
        var x = Assert.Single(request.Inputs);
        Assert.Equal("x", x.Name);
        Assert.Equal([2L, 2L], x.Shape);
        Assert.Equal(new float[] { 0, -0.5f, 1000, 0.125f }, (float[])x.Data);
    }

    [Fact]
    public void Binary_output_is_requested_per_output_or_for_all()
    {
        var request = V2Codec.ParseRequest("""{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"a","parameters":{"binary_data":true}},{"name":"b"}]}"""u8.ToArray());
        var response = new InferResponse
        {
            ModelName = "m",
            ModelVersion = "1",
            Id = "7",
            Outputs = [new InferTensor("a", Datatype.FP32, [2], new[] { 1f, 2f }), new InferTensor("b", Datatype.INT64, [1], new[] { 5L })],
        };
        var encoded = V2Codec.EncodeResponse(response, request);
        Assert.Equal("application/octet-stream", encoded.ContentType);
        int n = encoded.JsonHeaderLength!.Value;
        Assert.Equal(n + 8, encoded.Body.Length);
        using var doc = JsonDocument.Parse(encoded.Body.AsMemory(0, n));
        var outputs = doc.RootElement.GetProperty("outputs");
        Assert.Equal(8, outputs[0].GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
        Assert.Equal(5, outputs[1].GetProperty("data")[0].GetInt64());
        Assert.Equal(new[] { 1f, 2f }, (float[])V2Codec.DecodeBinary(encoded.Body.AsSpan(n), Datatype.FP32, 2, "a"));
    }

    [Theory]
    [InlineData("""{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":4}}]}""", 8, "needs 8")] // 4 bytes for 2 floats
    [InlineData("""{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}""", 8, "not claimed")] // 4 leftover bytes
    public void Binary_sizes_are_checked(string header, int binaryBytes, string message)
    {
        var h = System.Text.Encoding.UTF8.GetBytes(header);
        var e = Assert.Throws<InferenceError>(() => V2Codec.ParseRequest(h.Concat(new byte[binaryBytes]).ToArray(), h.Length));
        Assert.Equal(InferenceErrorKind.InvalidInput, e.Kind);
        if (message == "needs 8")
        {
            // the first case claims 4 of 8 bytes: the leftover is caught, or the size, whichever comes first
            Assert.True(e.Message.Contains("need 8") || e.Message.Contains("not claimed"), e.Message);
        }
        else
        {
            Assert.Contains(message, e.Message);
        }
    }

    [Fact]
    public void V1_predictions_nest_per_instance()
    {
        var response = new InferResponse { ModelName = "m", ModelVersion = "1", Outputs = [new InferTensor("y", Datatype.FP32, [2, 2, 1], new[] { 1f, 2f, 3f, 4f })] };
        Assert.Equal("""{"predictions":[[[1],[2]],[[3],[4]]]}""", System.Text.Encoding.UTF8.GetString(V1Codec.EncodeResponse(response)));
    }
}
