using System.Text.Json;
using Google.Protobuf;
using MlFunctions.Activities.Models;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Transforms;
using Onnx;

namespace MlFunctions.Serving.Tests;

/// <summary>
/// #14's serving contract: a low-dose CT slice in HU (FP32 [1, 1, H, W], or a base64 PNG16) in, the denoised slice in
/// HU out, equal to what offline evaluation computes; a slice of the wrong size, datatype or encoding is a clear 400.
/// </summary>
public sealed class CtServingTests
{
    private static readonly float[] Kernel = [0.02f, -0.05f, 0.01f, 0.04f, 0.3f, -0.02f, 0.03f, 0.06f, -0.01f];
    private const float Bias = 0.004f;

    private static readonly TransformSpec Transform = new() { Kind = TransformSpec.CtKind, Ct = new CtTransform { TrainedWidth = 40, TrainedHeight = 24 } };

    /// <summary>A one-conv residual denoiser, input − Conv3×3(input), with symbolic batch, H and W, as the DnCNN export has.</summary>
    internal static byte[] ResidualConv()
    {
        static ValueInfoProto Image(string name)
        {
            var shape = new TensorShapeProto();
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "batch" });
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "dim2" });
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "dim3" });
            return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1, Shape = shape } } };
        }

        var g = new GraphProto { Name = "residual-conv" };
        g.Input.Add(Image("input"));
        g.Output.Add(Image("denoised"));
        var w = new TensorProto { Name = "W", DataType = 1 };
        w.Dims.AddRange([1, 1, 3, 3]);
        w.FloatData.AddRange(Kernel);
        var b = new TensorProto { Name = "B", DataType = 1 };
        b.Dims.Add(1);
        b.FloatData.Add(Bias);
        g.Initializer.Add(w);
        g.Initializer.Add(b);
        var conv = new NodeProto { OpType = "Conv", Name = "conv" };
        conv.Input.AddRange(["input", "W", "B"]);
        conv.Output.Add("noise");
        conv.Attribute.Add(new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1, 1, 1, 1 } });
        g.Node.Add(conv);
        var sub = new NodeProto { OpType = "Sub", Name = "residual" };
        sub.Input.AddRange(["input", "noise"]);
        sub.Output.Add("denoised");
        g.Node.Add(sub);
        var m = new ModelProto { IrVersion = 8, ProducerName = "mlfunctions-tests", Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return m.ToByteArray();
    }

    /// <summary>The same denoiser by hand, in HU: the model sees HU × 1e-3, so the result is divided back.</summary>
    private static float[] Reference(HuImage low)
    {
        var output = new float[low.Pixels.Length];
        for (var y = 0; y < low.Height; y++)
        {
            for (var x = 0; x < low.Width; x++)
            {
                double noise = Bias;
                for (var dy = -1; dy <= 1; dy++)
                {
                    for (var dx = -1; dx <= 1; dx++)
                    {
                        var (yy, xx) = (y + dy, x + dx);
                        if (yy >= 0 && yy < low.Height && xx >= 0 && xx < low.Width)
                            noise += Kernel[((dy + 1) * 3) + dx + 1] * low[xx, yy] * 1e-3;
                    }
                }

                output[(y * low.Width) + x] = (float)(((low[x, y] * 1e-3) - noise) / 1e-3);
            }
        }

        return output;
    }

    private static HuImage Slice(int width = 40, int height = 24)
    {
        var rng = new Random(3);
        var image = new HuImage(width, height);
        for (var i = 0; i < image.Pixels.Length; i++)
            image.Pixels[i] = (float)Math.Round(-1000 + (1300 * rng.NextDouble()));
        return image;
    }

    private static string Body(string name, string datatype, long[] shape, object data) =>
        JsonSerializer.Serialize(new { inputs = new[] { new { name, shape, datatype, data } } });

    private static async Task<Harness> ServeAsync()
    {
        var h = new Harness();
        await h.RegisterAsync("ct-denoise", ResidualConv(), transform: Transform);
        return h;
    }

    private static string Error(HttpResult r)
    {
        using var doc = r.Json();
        return doc.RootElement.GetProperty("error").GetString()!;
    }

    [Fact]
    public async Task The_served_slice_equals_the_offline_evaluation_and_the_denoiser_computed_by_hand()
    {
        await using var h = await ServeAsync();
        var low = Slice();
        var r = await h.SendAsync("POST", "v2/models/ct-denoise/infer", Body("input", "FP32", [1, 1, 24, 40], low.Pixels));
        Assert.Equal(200, r.Status);
        using var doc = r.Json();
        var output = doc.RootElement.GetProperty("outputs").EnumerateArray().Single();
        Assert.Equal("denoised", output.GetProperty("name").GetString());
        Assert.Equal([1, 1, 24, 40], output.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
        var served = output.GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray();

        // Offline: the evaluation step's own call (ModelScorer on the same bytes and transform).
        var onnx = ResidualConv();
        var uri = ((MemoryArtifactStore)h.Artifacts).Put("mem://ct/offline.onnx", onnx);
        await using var scorer = await ModelScorer.LoadAsync(h.Artifacts, h.Sessions, uri, OnnxModels.Sha256(onnx), Transform);
        var offline = await EvaluateDenoise.DenoiseAsync(scorer, low, "offline", CancellationToken.None);
        Assert.Equal(offline.Pixels, served);

        var reference = Reference(low);
        var worst = served.Zip(reference, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst < 1e-2, $"served vs hand-computed: max |Δ| {worst} HU");
        Console.WriteLine($"ct serving: 40×24 slice, served = offline exactly, vs hand-computed conv max |Δ| {worst:G3} HU");
    }

    [Fact]
    public async Task A_png_slice_is_denoised_like_the_same_slice_in_hu_and_comes_back_as_a_png_too()
    {
        await using var h = await ServeAsync();
        var low = Slice(32, 32);
        var png = Convert.ToBase64String(CtPng.Encode(low));
        var r = await h.SendAsync("POST", "v2/models/ct-denoise/infer", Body("image", "BYTES", [1], new[] { png }));
        Assert.Equal(200, r.Status);
        using var doc = r.Json();
        var outputs = doc.RootElement.GetProperty("outputs").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!);
        var fromPng = outputs["denoised"].GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray();

        var f = await h.SendAsync("POST", "v2/models/ct-denoise/infer", Body("input", "FP32", [1, 1, 32, 32], low.Pixels));
        using var fdoc = f.Json();
        var fromHu = fdoc.RootElement.GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        Assert.Equal(fromHu, fromPng);

        Assert.True(CtPng.TryDecode(Convert.FromBase64String(outputs["denoised_png"].GetProperty("data")[0].GetString()!), out var back, out var problem), problem);
        Assert.All(back!.Pixels.Zip(fromPng), p => Assert.Equal(Math.Round(p.Second), p.First));
    }

    [Theory]
    [InlineData("FP64", "[1,1,24,40]", "must be FP32")]
    [InlineData("INT64", "[1,1,24,40]", "must be FP32")]
    [InlineData("FP32", "[1,24,40]", "shape [n, 1, H, W]")]
    [InlineData("FP32", "[1,2,24,20]", "shape [n, 1, H, W]")]
    [InlineData("FP32", "[1,1,8,120]", "cannot be served")]
    [InlineData("FP32", "[1,1,24,41]", "needs")]
    public async Task A_slice_of_the_wrong_size_or_datatype_is_a_400_that_says_what_to_send(string datatype, string shapeJson, string expected)
    {
        await using var h = await ServeAsync();
        var shape = JsonSerializer.Deserialize<long[]>(shapeJson)!;
        object data = datatype == "INT64" ? Enumerable.Repeat(0L, 960).ToArray() : Enumerable.Repeat(0f, 960).ToArray();
        var r = await h.SendAsync("POST", "v2/models/ct-denoise/infer", Body("input", datatype, shape, data));
        Assert.Equal(400, r.Status);
        Assert.Contains(expected, Error(r));
    }

    [Theory]
    [InlineData("bm90IGEgcG5n", "is not a PNG")]
    [InlineData("%%%", "not base64")]
    public async Task A_corrupt_png_is_a_400_naming_the_problem(string base64, string expected)
    {
        await using var h = await ServeAsync();
        var r = await h.SendAsync("POST", "v2/models/ct-denoise/infer", Body("image", "BYTES", [1], new[] { base64 }));
        Assert.Equal(400, r.Status);
        Assert.Contains(expected, Error(r));
    }

    [Fact]
    public async Task An_8_bit_png_and_an_unknown_input_are_400s()
    {
        await using var h = await ServeAsync();
        using var eight = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.L8>(32, 32);
        using var ms = new MemoryStream();
        eight.Save(ms, new SixLabors.ImageSharp.Formats.Png.PngEncoder());
        var r = await h.SendAsync("POST", "v2/models/ct-denoise/infer", Body("image", "BYTES", [1], new[] { Convert.ToBase64String(ms.ToArray()) }));
        Assert.Equal(400, r.Status);
        Assert.Contains("16", Error(r));

        var u = await h.SendAsync("POST", "v2/models/ct-denoise/infer", Body("pixels", "FP32", [1, 1, 32, 32], new float[1024]));
        Assert.Equal(400, u.Status);
        Assert.Contains("exactly one input", Error(u));
    }
}
