using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Onnx;

/// <summary>A layer (or layer setting) with no ONNX mapping: export fails instead of producing a different model.</summary>
public sealed class OnnxExportException(string message) : Exception(message);

/// <summary>Nodes and initializers of a graph under construction, plus the name of the current value.</summary>
public sealed class OnnxGraph
{
    public const string InputName = "input";
    public const string OutputName = "logits";

    public List<NodeProto> Nodes { get; } = [];

    public List<TensorProto> Initializers { get; } = [];

    /// <summary>Per-sample input shape (the batch dimension is dynamic; a negative dimension is dynamic too).</summary>
    public required int[] SampleShape { get; init; }

    /// <summary>The input's element type: float for features, int64 for ids (recommenders).</summary>
    public TensorProto.Types.DataType InputType { get; init; } = TensorProto.Types.DataType.Float;

    /// <summary>The public name of the last node's output.</summary>
    public string Output { get; init; } = OutputName;

    /// <summary>Per-sample output shape; null is [classes] (logits), empty is one value per sample (a score).</summary>
    public long[]? OutputDims { get; init; }

    /// <summary>Name of the value the next node consumes.</summary>
    public string Current { get; set; } = InputName;

    public string AddNode(string opType, string name, IEnumerable<string> inputs, params AttributeProto[] attributes)
    {
        var output = name;
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        Nodes.Add(node);
        Current = output;
        return output;
    }

    public string AddInitializer(string name, Tensor tensor)
    {
        using var cpu = tensor.detach().cpu().contiguous();
        var values = cpu.to_type(ScalarType.Float32).data<float>().ToArray();
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.AddRange(cpu.shape);

        // Raw little-endian bytes: compact and what ONNX Runtime reads fastest.
        proto.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        Initializers.Add(proto);
        return name;
    }

    /// <summary>An int64 constant (indices, axes, shapes) of <paramref name="dims"/> (empty = scalar).</summary>
    public string AddInt64Initializer(string name, long[] values, params long[] dims)
    {
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        proto.Dims.AddRange(dims);
        proto.Int64Data.AddRange(values);
        Initializers.Add(proto);
        return name;
    }
}

/// <summary>
/// TorchSharp has no ONNX exporter, so this maps modules to ONNX operators (opset 17) by hand, the way
/// torch.onnx.export would for these layers. Every module must be mapped explicitly: an unknown one throws.
/// </summary>
public static class OnnxExporter
{
    public const int Opset = 17;

    public static AttributeProto Ints(string name, IEnumerable<long> values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>Maps each child of <paramref name="model"/> in order.</summary>
    public static OnnxGraph ExportSequential(Sequential model, int[] sampleShape)
    {
        var graph = new OnnxGraph { SampleShape = sampleShape };
        foreach (var (name, module) in model.named_children())
            MapModule(graph, name, module);
        return graph;
    }

    /// <summary>Appends the nodes of one layer. Throws <see cref="OnnxExportException"/> for anything unmapped.</summary>
    public static void MapModule(OnnxGraph graph, string name, nn.Module module)
    {
        switch (module)
        {
            case Linear linear:
            {
                // y = x W^T + b: Gemm with transB, exactly torch.onnx's mapping for 2-D input.
                var inputs = new List<string> { graph.Current, graph.AddInitializer($"{name}.weight", linear.weight) };
                if (linear.bias is { } bias)
                    inputs.Add(graph.AddInitializer($"{name}.bias", bias));
                graph.AddNode("Gemm", name, inputs, Int("transB", 1));
                break;
            }

            case Conv2d conv:
            {
                if (conv.padding_mode != PaddingModes.Zeros)
                    throw new OnnxExportException($"layer '{name}' (Conv2d): padding mode {conv.padding_mode} has no ONNX mapping here; only zero padding is exported.");
                if (conv.padding is not { } padding)
                    throw new OnnxExportException($"layer '{name}' (Conv2d): padding type {conv.padding_type} is not exported; use explicit padding.");
                var inputs = new List<string> { graph.Current, graph.AddInitializer($"{name}.weight", conv.weight) };
                if (conv.bias is { } bias)
                    inputs.Add(graph.AddInitializer($"{name}.bias", bias));
                graph.AddNode(
                    "Conv",
                    name,
                    inputs,
                    Ints("kernel_shape", conv.kernel_size),
                    Ints("strides", conv.stride),
                    Ints("pads", padding.Concat(padding)),
                    Ints("dilations", conv.dilation),
                    Int("group", conv.groups));
                break;
            }

            case MaxPool2d pool:
            {
                var kernel = pool.kernel_size;
                var stride = pool.stride ?? kernel;
                var padding = pool.padding ?? kernel.Select(_ => 0L).ToArray();
                var dilation = pool.dilation ?? kernel.Select(_ => 1L).ToArray();
                graph.AddNode(
                    "MaxPool",
                    name,
                    [graph.Current],
                    Ints("kernel_shape", kernel),
                    Ints("strides", stride),
                    Ints("pads", padding.Concat(padding)),
                    Ints("dilations", dilation),
                    Int("ceil_mode", pool.ceil_mode ? 1 : 0));
                break;
            }

            case BatchNorm2d or BatchNorm1d:
            {
                // Inference semantics, as torch.onnx exports a module in eval mode: y = (x − running_mean) /
                // sqrt(running_var + eps) · weight + bias over axis 1 (channels, or the features of [N, C]).
                var norm = (NormBase)module;
                if (norm.running_mean is not { } mean || norm.running_var is not { } variance)
                    throw new OnnxExportException($"layer '{name}' ({module.GetType().Name}): track_running_stats is off, so inference would use batch statistics; only running statistics are exported.");
                var features = mean.shape[0];
                using var ones = torch.ones(features);
                using var zeros = torch.zeros(features);
                var scale = graph.AddInitializer($"{name}.weight", norm.weight is { } w ? w : ones);
                var shift = graph.AddInitializer($"{name}.bias", norm.bias is { } b ? b : zeros);
                var inputs = new List<string> { graph.Current, scale, shift, graph.AddInitializer($"{name}.running_mean", mean), graph.AddInitializer($"{name}.running_var", variance) };
                graph.AddNode("BatchNormalization", name, inputs, new AttributeProto { Name = "epsilon", Type = AttributeProto.Types.AttributeType.Float, F = (float)norm.eps });
                break;
            }

            case ReLU:
                graph.AddNode("Relu", name, [graph.Current]);
                break;

            case Sigmoid:
                graph.AddNode("Sigmoid", name, [graph.Current]);
                break;

            case Flatten flatten:
            {
                // ONNX Flatten always yields 2-D [prod(dims < axis), prod(dims >= axis)]; that equals torch's
                // Flatten only when it flattens everything after the batch dimension.
                var rank = graph.SampleShape.Length + 1;
                var end = flatten.end_dim < 0 ? flatten.end_dim + rank : flatten.end_dim;
                if (flatten.start_dim != 1 || end != rank - 1)
                    throw new OnnxExportException($"layer '{name}' (Flatten): start_dim {flatten.start_dim}, end_dim {flatten.end_dim} is not exported; only Flatten(1, -1) maps to ONNX Flatten.");
                graph.AddNode("Flatten", name, [graph.Current], Int("axis", 1));
                break;
            }

            case Dropout:
                // Inference semantics: dropout is the identity. Emitted as an explicit Identity node so the graph
                // still names every layer of the trained network.
                graph.AddNode("Identity", name, [graph.Current]);
                break;

            case Sequential nested:
                foreach (var (child, childModule) in nested.named_children())
                    MapModule(graph, $"{name}.{child}", childModule);
                break;

            default:
                throw new OnnxExportException(
                    $"layer '{name}' of type {module.GetType().Name} has no ONNX mapping; the exporter maps Linear, Conv2d, BatchNorm1d/2d, MaxPool2d, ReLU, Sigmoid, Flatten, Dropout and Sequential. Add a mapping in OnnxExporter.MapModule (or override IModelDefinition.ExportOnnx) before using it.");
        }
    }

    /// <summary>Wraps the graph in a model with input [batch, ...sampleShape] and output [batch, classes].</summary>
    public static byte[] ToModelBytes(OnnxGraph graph, int classes, string modelName)
    {
        var g = new GraphProto { Name = modelName };
        g.Input.Add(ValueInfo(OnnxGraph.InputName, graph.SampleShape.Select(d => (long)d), graph.InputType));
        if (graph.Nodes.Count == 0)
            throw new OnnxExportException("the model has no layers to export");

        // Rename the last node's output to the public output name.
        var last = graph.Nodes[^1];
        last.Output[0] = graph.Output;
        g.Output.Add(ValueInfo(graph.Output, graph.OutputDims ?? [classes]));
        g.Node.AddRange(graph.Nodes);
        g.Initializer.AddRange(graph.Initializers);
        var model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "MlFunctions.GpuWorker",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "1",
            Graph = g,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model.ToByteArray();
    }

    private static ValueInfoProto ValueInfo(string name, IEnumerable<long> sampleDims, TensorProto.Types.DataType type = TensorProto.Types.DataType.Float)
    {
        var shape = new TensorShapeProto();

        // A symbolic batch dimension: serving batches requests dynamically.
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        // A negative dimension is symbolic too (a fully convolutional model serves any height and width).
        var axis = 0;
        foreach (var d in sampleDims)
        {
            axis++;
            shape.Dim.Add(d < 0 ? new TensorShapeProto.Types.Dimension { DimParam = $"dim{axis}" } : new TensorShapeProto.Types.Dimension { DimValue = d });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
