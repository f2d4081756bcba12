using MlFunctions.Core.Training;
using MlFunctions.GpuWorker.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Models;

/// <summary>
/// A DnCNN-style residual denoiser for the <see cref="TrainingObjectives.Denoise"/> task: Conv3×3 → ReLU,
/// (Conv3×3 → ReLU) × (depth − 2), Conv3×3 to one channel, and the output is the input minus that predicted noise.
/// Hyperparameters: <see cref="HyperParameters.Channels"/> lists the width of each hidden conv (depth = count + 1;
/// [32, 32, 32, 32] is depth 5, width 32). Every conv has padding 1 and stride 1, so the network is fully
/// convolutional: trained on patches, it serves any H×W, and its ONNX graph (Conv, Relu, Sub) has a dynamic height
/// and width.
/// </summary>
public sealed class DnCnnModel : IModelDefinition
{
    public const int MaxDepth = 32;
    public const int MaxWidth = 256;

    public string Name => "dncnn";

    public IReadOnlyCollection<string> Tasks => [TrainingObjectives.Denoise];

    public nn.Module<Tensor, Tensor> BuildModule(HyperParameters hp, ModelInputs inputs)
    {
        if (inputs.SampleShape.Length != 3 || inputs.SampleShape[0] != 1)
            throw new JobValidationException($"dncnn: needs one-channel images [1, H, W]; the data has [{string.Join(",", inputs.SampleShape)}].");
        if (hp.Channels.Count is < 1 or > MaxDepth - 1 || hp.Channels.Any(c => c is < 1 or > MaxWidth))
            throw new JobValidationException($"dncnn: channels must list 1..{MaxDepth - 1} hidden widths of 1..{MaxWidth} (depth = count + 1); got [{string.Join(",", hp.Channels)}].");
        return new DnCnnModule(hp.Channels);
    }

    public OnnxGraph ExportModule(nn.Module<Tensor, Tensor> module, ModelInputs inputs) => ((DnCnnModule)module).Export();
}

/// <summary>x − body(x), body = conv/ReLU stack predicting the noise.</summary>
public sealed class DnCnnModule : nn.Module<Tensor, Tensor>
{
    public const string OutputName = "denoised";

    private readonly Sequential body;

    public DnCnnModule(IReadOnlyList<int> widths)
        : base("dncnn")
    {
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        long channels = 1;
        for (var i = 0; i < widths.Count; i++)
        {
            layers.Add(($"conv{i + 1}", nn.Conv2d(channels, widths[i], 3, padding: 1)));
            layers.Add(($"relu{i + 1}", nn.ReLU()));
            channels = widths[i];
        }

        var last = nn.Conv2d(channels, 1, 3, padding: 1);

        // Start from "no noise predicted": the untrained model is the identity, so training only ever improves on
        // the input rather than first unlearning a random residual.
        using (no_grad())
        {
            last.weight!.mul_(0.1);
            last.bias!.zero_();
        }

        layers.Add(("noise", last));
        body = nn.Sequential(layers);
        RegisterComponents();
    }

    /// <summary>Depth in conv layers.</summary>
    public int Depth => body.children().Count(m => m is Conv2d);

    public override Tensor forward(Tensor input) => input - body.forward(input);

    /// <summary>Input [batch, 1, H, W] → output [batch, 1, H, W], H and W symbolic.</summary>
    public OnnxGraph Export()
    {
        var graph = new OnnxGraph { SampleShape = [1, -1, -1], Output = OutputName, OutputDims = [1, -1, -1] };
        OnnxExporter.MapModule(graph, "body", body);
        graph.AddNode("Sub", "residual", [OnnxGraph.InputName, graph.Current]);
        return graph;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            body.Dispose();
        base.Dispose(disposing);
    }
}
