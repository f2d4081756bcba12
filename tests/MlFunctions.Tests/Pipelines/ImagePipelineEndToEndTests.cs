using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Sweeps;
using MlFunctions.Local.Cli;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Pipelines;

/// <summary>
/// Image classification from a PNG folder (#11 §1), as a user would run it: a made-up <c>train/{label}/*.png</c> +
/// <c>test/{label}/*.png</c> folder of 12×12 RGB bars and dots is uploaded, a spec run trains a CNN on it, and the served model
/// answers a new PNG (base64 V2 BYTES) and a pixel row (FP32) with the class name. A bad images section is a 400; a folder
/// with a corrupt PNG, a wrong-sized one and a one-image class fails the validate step naming each file.
/// </summary>
public sealed class ImagePipelineEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Key = "images-e2e-key";
    private const int Side = 12;
    private readonly string data = Directory.CreateTempSubdirectory("mlf-images-e2e-").FullName;
    private WebApplication? app;

    public async Task InitializeAsync() => app = await WorkerHost.StartAsync("images", Key, data);

    public async Task DisposeAsync()
    {
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    private static readonly string[] Shapes = ["dot", "horizontal", "vertical"];

    /// <summary>
    /// A 12×12 RGB image: noise 0..60 with a bright (200..255) horizontal bar, vertical bar or 3×3 dot at a random place,
    /// in a random tint (each channel scaled by 0.5..1), so colour says nothing about the class and the CNN sees 3 planes.
    /// </summary>
    public static ImagePixels Draw(string shape, Random rng)
    {
        var pixels = new byte[Side * Side];
        for (var i = 0; i < pixels.Length; i++)
            pixels[i] = (byte)rng.Next(0, 60);
        int a = rng.Next(1, Side - 2), b = rng.Next(1, Side - 2);
        for (var y = 0; y < Side; y++)
        {
            for (var x = 0; x < Side; x++)
            {
                var on = shape switch
                {
                    "horizontal" => y == a && x >= 1 && x < Side - 1,
                    "vertical" => x == a && y >= 1 && y < Side - 1,
                    _ => Math.Abs(x - a) <= 1 && Math.Abs(y - b) <= 1,
                };
                if (on)
                    pixels[(y * Side) + x] = (byte)rng.Next(200, 256);
            }
        }

        var tint = Enumerable.Range(0, 3).Select(_ => 0.5 + (rng.NextDouble() / 2)).ToArray();
        var planes = new byte[3 * pixels.Length];
        for (var c = 0; c < 3; c++)
        {
            for (var i = 0; i < pixels.Length; i++)
                planes[(c * pixels.Length) + i] = (byte)(pixels[i] * tint[c]);
        }

        return new ImagePixels(3, Side, Side, planes);
    }

    [Fact]
    public async Task A_png_folder_trains_a_cnn_and_serving_answers_a_png_and_a_pixel_row_with_the_class_name()
    {
        var pipeline = "shapes-" + Guid.NewGuid().ToString("N")[..6];
        var rng = new Random(5);
        var files = new List<(string, byte[])>();
        foreach (var shape in Shapes)
        {
            for (var i = 0; i < 30; i++)
                files.Add(($"train/{shape}/{i:D2}.png", ImagePng.Encode(Draw(shape, rng))));
            for (var i = 0; i < 8; i++)
                files.Add(($"test/{shape}/{i:D2}.png", ImagePng.Encode(Draw(shape, rng))));
        }

        var prefix = await TestUploads.PutAsync($"datasets/{pipeline}/batch-1", [.. files]);
        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { Kind = DatasetKinds.Images, SourceContainer = "uploads", SourcePrefix = prefix },
            Model = "cnn",
            Hyperparameters = new() { LrSchedule = "cosine", BatchSize = 16, Channels = [8, 16] },
            Sweep = new PipelineSweep { Algorithm = "random", MaxTrials = 2, ParallelTrials = 2, Epochs = 6, Parameters = [ParameterSpec.Double("learningRate", 3e-3, 1e-2, ParameterScale.Log)] },
            RetrainEpochs = 12,
        };

        using var api = new ApiClient(Commands.BaseUrl(app!), Key);
        var started = await api.Http.PostAsJsonAsync($"/api/pipelines/{pipeline}/runs", spec, MlJson.Options);
        var startedBody = await started.Content.ReadFromJsonAsync<JsonObject>();
        Assert.True(started.StatusCode == HttpStatusCode.Accepted, startedBody?.ToJsonString());
        var result = await api.WaitPipelineResultAsync((string)startedBody!["id"]!, TimeSpan.FromMinutes(6));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT images-png test accuracy {result.Value:F4} on {3 * 8} test/ images (chance 0.333), sweep best val_accuracy {result.Sweep?.Best?.Objective:F4}"));
        Assert.Equal(MnistPipelineOutcomes.Promoted, result.Outcome);
        Assert.True(result.Value >= 0.75, $"test accuracy {result.Value}");

        // Metadata: the pixel input and the PNG input; the class name and probabilities next to the logits.
        var metadata = await api.Http.GetFromJsonAsync<JsonObject>($"/v2/models/{pipeline}");
        output.WriteLine(metadata!.ToJsonString());
        var inputs = metadata["inputs"]!.AsArray().Select(i => ((string)i!["name"]!, (string)i["datatype"]!)).ToList();
        Assert.Equal([("input", "FP32"), ("image", "BYTES")], inputs);
        Assert.Contains(metadata["outputs"]!.AsArray(), o => (string?)o!["name"] == "label");

        // New images the model never saw: three PNGs in one request, and a pixel row per shape.
        var fresh = new Random(99);
        var drawn = Shapes.Select(s => (Shape: s, Pixels: Draw(s, fresh))).ToList();
        var png = await InferAsync(api, pipeline, new { name = "image", shape = new[] { 3 }, datatype = "BYTES", data = drawn.Select(d => Convert.ToBase64String(ImagePng.Encode(d.Pixels))).ToArray() });
        var row = await InferAsync(api, pipeline, new { name = "input", shape = new[] { 3, 3, Side, Side }, datatype = "FP32", data = drawn.SelectMany(d => d.Pixels.Planes.Select(p => (float)p)).ToArray() });
        output.WriteLine($"RESULT images-png served labels png [{string.Join(", ", png)}], pixels [{string.Join(", ", row)}], true [{string.Join(", ", Shapes)}]");
        Assert.Equal(png, row);
        Assert.True(png.Zip(Shapes).Count(p => p.First == p.Second) >= 2, $"served [{string.Join(", ", png)}] for [{string.Join(", ", Shapes)}]");
        Assert.All(png, label => Assert.Contains(label, Shapes));
    }

    [Fact]
    public async Task A_bad_images_section_is_a_400_and_a_broken_folder_fails_validation_with_every_file()
    {
        using var api = new ApiClient(Commands.BaseUrl(app!), Key);
        var invalid = await api.Http.PostAsJsonAsync("/api/pipelines/bad-images/runs", new
        {
            dataset = new { kind = "images", sourceDirectories = new[] { "/nowhere" } },
            images = new { resize = true, channels = 4 },
        });
        var body = await invalid.Content.ReadAsStringAsync();
        output.WriteLine(body);
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Contains("images.resize needs images.width and images.height", body);
        Assert.Contains("images.channels must be 1 (grayscale) or 3 (RGB), got 4", body);

        var pipeline = "broken-shapes-" + Guid.NewGuid().ToString("N")[..4];
        var rng = new Random(1);
        var prefix = await TestUploads.PutAsync($"datasets/{pipeline}/b1",
            ("dot/1.png", ImagePng.Encode(Draw("dot", rng))),
            ("dot/2.png", ImagePng.Encode(Draw("dot", rng))),
            ("dot/3.png", [.. ImagePng.Encode(Draw("dot", rng)).AsSpan(0, 50)]),
            ("dot/4.png", ImagePng.Encode(new ImagePixels(3, Side, Side + 4, new byte[3 * Side * (Side + 4)]))),
            ("vertical/1.png", ImagePng.Encode(Draw("vertical", rng))));
        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { Kind = DatasetKinds.Images, SourceContainer = "uploads", SourcePrefix = prefix },
            Model = "cnn",
            Sweep = new PipelineSweep { MaxTrials = 1, Epochs = 1 },
            RetrainEpochs = 1,
        };
        var response = await api.Http.PostAsJsonAsync($"/api/pipelines/{pipeline}/runs", spec, MlJson.Options);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var (_, final) = await api.WaitDoneAsync((string)(await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!, TimeSpan.FromMinutes(3));
        var failure = final!["output"]?.ToString() ?? "";
        output.WriteLine(failure);
        Assert.Equal("Failed", (string?)final["runtimeStatus"]);
        Assert.Contains("dot/3.png is not a readable PNG", failure);
        Assert.Contains("dot/4.png 16×12", failure);
        Assert.Contains("class 'vertical' has 1 image(s)", failure);
    }

    private static async Task<string[]> InferAsync(ApiClient api, string model, object input)
    {
        var response = await api.Http.PostAsJsonAsync($"/v2/models/{model}/infer", new { inputs = new[] { input }, outputs = new[] { new { name = "label" }, new { name = "probabilities" } } });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        var outputs = JsonNode.Parse(text)!["outputs"]!.AsArray();
        var probabilities = outputs.Single(o => (string?)o!["name"] == "probabilities")!["data"]!.AsArray().Select(v => (double)v!).ToArray();
        Assert.Equal(9, probabilities.Length);
        return outputs.Single(o => (string?)o!["name"] == "label")!["data"]!.AsArray().Select(v => (string)v!).ToArray();
    }
}
