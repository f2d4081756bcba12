using Microsoft.ML.OnnxRuntime;
using MlFunctions.Core.Training;
using MlFunctions.GpuWorker.Models;
using MlFunctions.GpuWorker.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace MlFunctions.Training.Tests;

/// <summary>The hand-written exporter against ONNX Runtime, without training (fast), and its refusal of unknown layers.</summary>
public sealed class OnnxExportTests
{
    [Theory]
    [InlineData("mlp")]
    [InlineData("cnn")]
    public void ExportedModelMatchesTorchSharpForAnyBatchSize(string name)
    {
        set_num_threads(2);
        manual_seed(5);
        var definition = ModelZoo.Get(name);
        using var model = definition.Build(new HyperParameters { HiddenSizes = [32, 16], Channels = [4, 8], Dropout = 0.5 }, [1, 28, 28], 10);
        model.eval();
        var onnx = OnnxExporter.ToModelBytes(definition.ExportOnnx(model, [1, 28, 28]), 10, name);
        foreach (var batch in new[] { 1, 7 })
        {
            using var x = randn(batch, 1, 28, 28);
            var parity = OnnxParityCheck.Run(onnx, model, x);
            Assert.Equal(batch, parity.BatchSize);
            Assert.True(parity.MaxAbsLogitDiff <= 1e-4, $"{name} batch {batch}: max |Δlogit| {parity.MaxAbsLogitDiff}");
            Assert.True(parity.ArgmaxIdentical);
        }

        using var session = new InferenceSession(onnx);
        Assert.Equal(-1, session.InputMetadata["input"].Dimensions[0]);
    }

    [Theory]
    [InlineData("mlp")]
    [InlineData("cnn")]
    public void BatchNormExportsItsRunningStatisticsAndMatchesTorchSharpInEvalMode(string name)
    {
        set_num_threads(2);
        manual_seed(9);
        var definition = ModelZoo.Get(name);
        using var model = definition.Build(new HyperParameters { HiddenSizes = [32, 16], Channels = [4, 8], BatchNorm = true }, [1, 28, 28], 10);
        Assert.Contains(model.named_children(), c => c.name.StartsWith("bn", StringComparison.Ordinal));

        // Training-mode forwards on shifted, scaled inputs move the running statistics away from 0 and 1, and the
        // affine parameters are perturbed: an exporter that dropped either, or used batch statistics, would differ.
        model.train();
        using (no_grad())
        {
            for (var i = 0; i < 5; i++)
            {
                using var warm = (randn(32, 1, 28, 28) * 3) + 2;
                model.forward(warm).Dispose();
            }

            foreach (var (parameter, value) in model.named_parameters())
            {
                if (parameter.Contains(".weight", StringComparison.Ordinal) || parameter.Contains(".bias", StringComparison.Ordinal))
                    value.add_(randn_like(value) * 0.1);
            }
        }

        model.eval();
        var onnx = OnnxExporter.ToModelBytes(definition.ExportOnnx(model, [1, 28, 28]), 10, name);
        var proto = global::Onnx.ModelProto.Parser.ParseFrom(onnx);
        Assert.Contains(proto.Graph.Node, n => n.OpType == "BatchNormalization");
        Assert.Contains(proto.Graph.Initializer, t => t.Name.EndsWith(".running_var", StringComparison.Ordinal));
        foreach (var batch in new[] { 1, 9 })
        {
            using var x = (randn(batch, 1, 28, 28) * 3) + 2;
            var parity = OnnxParityCheck.Run(onnx, model, x);
            Assert.True(parity.MaxAbsLogitDiff <= 1e-4, $"{name} with BatchNorm, batch {batch}: max |Δlogit| {parity.MaxAbsLogitDiff}");
            Assert.True(parity.ArgmaxIdentical);
        }
    }

    [Fact]
    public void UnmappableLayerFailsTheExportLoudly()
    {
        using var model = nn.Sequential(("fc", nn.Linear(4, 8)), ("square", new Square()), ("out", nn.Linear(8, 2)));
        var e = Assert.Throws<OnnxExportException>(() => OnnxExporter.ExportSequential(model, [4]));
        Assert.Contains("'square'", e.Message);
        Assert.Contains(nameof(Square), e.Message);

        // A known layer with a setting ONNX Flatten cannot express is refused too, not approximated.
        using var partial = nn.Sequential(("flat", nn.Flatten(2)), ("out", nn.Linear(28, 2)));
        Assert.Throws<OnnxExportException>(() => OnnxExporter.ExportSequential(partial, [1, 28, 28]));
    }

    [Fact]
    public void UnknownModelIsAJobValidationError()
    {
        var e = Assert.Throws<JobValidationException>(() => ModelZoo.Get("resnet"));
        Assert.Contains("mlp", e.Message);
        Assert.Contains("cnn", e.Message);
    }

    /// <summary>A layer the exporter has no mapping for.</summary>
    private sealed class Square() : nn.Module<Tensor, Tensor>("square")
    {
        public override Tensor forward(Tensor input) => input * input;
    }
}
