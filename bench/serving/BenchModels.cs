using Google.Protobuf;
using Onnx;

namespace MlFunctions.Bench.Serving;

/// <summary>A benchmark model: its ONNX bytes and the shape of one instance (without the batch dimension).</summary>
internal sealed record BenchModel(string Name, string Description, byte[] Onnx, long[] InstanceShape, int OutputSize)
{
    public const string Input = "input";
    public const string Output = "logits";

    public int InstanceElements => (int)InstanceShape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape of a batch of <paramref name="rows"/> instances.</summary>
    public long[] BatchShape(int rows) => [rows, .. InstanceShape];
}

/// <summary>
/// The three benchmark models, built in code as ONNX (opset 17, dynamic batch dimension) with OnnxSharp's
/// protobuf classes, the same approach as tests/MlFunctions.Serving.Tests/OnnxModels.cs. Weights are random with a
/// fixed seed (He-uniform, so activations stay in range); the figures measure serving, not accuracy.
/// </summary>
internal static class BenchModels
{
    private const int Float = 1;
    private const int Opset = 17;

    public static IReadOnlyList<BenchModel> All() => [Mlp(), Cnn(), HeavyCnn()];

    /// <summary>MNIST MLP: [N,784] → Gemm 784x128 → Relu → Gemm 128x10.</summary>
    public static BenchModel Mlp()
    {
        var b = new Builder("mlp", seed: 17, input: [784]);
        var h = b.Relu(b.Gemm(Builder.InputName, 784, 128));
        b.Gemm(h, 128, 10, BenchModel.Output);
        return new BenchModel("mnist-mlp", "MLP 784-128-10", b.Build(10), [784], 10);
    }

    /// <summary>MNIST CNN: [N,1,28,28] → conv3x3 16 → relu → pool → conv3x3 32 → relu → pool → FC 1568→10.</summary>
    public static BenchModel Cnn()
    {
        var b = new Builder("cnn", seed: 29, input: [1, 28, 28]);
        var x = b.MaxPool(b.Relu(b.Conv(Builder.InputName, 1, 16)));    // 16x14x14
        x = b.MaxPool(b.Relu(b.Conv(x, 16, 32)));                        // 32x7x7
        b.Gemm(b.Flatten(x), 32 * 7 * 7, 10, BenchModel.Output);
        return new BenchModel("mnist-cnn", "CNN conv16-conv32-fc10", b.Build(10), [1, 28, 28], 10);
    }

    /// <summary>
    /// Heavier CNN, where compute outweighs HTTP: [N,1,28,28] → conv 64 → relu → conv 64 → relu → pool → conv 128 →
    /// relu → pool → FC 6272→10 (about 44 M multiply-adds per instance, ~300x the MLP).
    /// </summary>
    public static BenchModel HeavyCnn()
    {
        var b = new Builder("heavy", seed: 43, input: [1, 28, 28]);
        var x = b.Relu(b.Conv(Builder.InputName, 1, 64));              // 64x28x28
        x = b.MaxPool(b.Relu(b.Conv(x, 64, 64)));                        // 64x14x14
        x = b.MaxPool(b.Relu(b.Conv(x, 64, 128)));                       // 128x7x7
        b.Gemm(b.Flatten(x), 128 * 7 * 7, 10, BenchModel.Output);
        return new BenchModel("heavy-cnn", "CNN conv64-conv64-conv128-fc10", b.Build(10), [1, 28, 28], 10);
    }

    /// <summary>A small graph builder: each op appends a node and returns its output's name.</summary>
    private sealed class Builder(string name, int seed, long[] input)
    {
        public const string InputName = BenchModel.Input;

        private readonly GraphProto _graph = new() { Name = name };
        private readonly Random _rng = new(seed);
        private int _n;

        private string Next(string op) => $"{op.ToLowerInvariant()}{_n++}";

        public string Conv(string x, int inChannels, int outChannels)
        {
            int fanIn = inChannels * 9;
            var w = Initializer(Next("W"), [outChannels, inChannels, 3, 3], HeUniform(outChannels * fanIn, fanIn));
            var bias = Initializer(Next("B"), [outChannels], new float[outChannels]);
            var node = Node("Conv", [x, w, bias]);
            node.Attribute.Add(Ints("kernel_shape", 3, 3));
            node.Attribute.Add(Ints("pads", 1, 1, 1, 1));
            return node.Output[0];
        }

        public string Relu(string x) => Node("Relu", [x]).Output[0];

        public string MaxPool(string x)
        {
            var node = Node("MaxPool", [x]);
            node.Attribute.Add(Ints("kernel_shape", 2, 2));
            node.Attribute.Add(Ints("strides", 2, 2));
            return node.Output[0];
        }

        public string Flatten(string x)
        {
            var node = Node("Flatten", [x]);
            node.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
            return node.Output[0];
        }

        /// <summary>[N,in] x W[in,out] + B[out].</summary>
        public string Gemm(string x, int inFeatures, int outFeatures, string? output = null)
        {
            var w = Initializer(Next("W"), [inFeatures, outFeatures], HeUniform(inFeatures * outFeatures, inFeatures));
            var bias = Initializer(Next("B"), [outFeatures], new float[outFeatures]);
            return Node("Gemm", [x, w, bias], output).Output[0];
        }

        public byte[] Build(int outputs)
        {
            _graph.Input.Add(Value(InputName, input));
            _graph.Output.Add(Value(BenchModel.Output, [outputs]));
            var model = new ModelProto { IrVersion = 8, ProducerName = "mlfunctions-bench-serving", Graph = _graph };
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
            return model.ToByteArray();
        }

        private float[] HeUniform(int count, int fanIn)
        {
            float limit = MathF.Sqrt(6f / fanIn);
            var data = new float[count];
            for (int i = 0; i < count; i++)
                data[i] = (float)(_rng.NextDouble() * 2 - 1) * limit;
            return data;
        }

        private string Initializer(string id, long[] dims, float[] data)
        {
            var t = new TensorProto { Name = id, DataType = Float };
            t.Dims.AddRange(dims);
            // Raw little-endian bytes: much smaller and faster to parse than repeated float_data for 100k+ weights.
            t.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
            _graph.Initializer.Add(t);
            return id;
        }

        private NodeProto Node(string op, string[] inputs, string? output = null)
        {
            var node = new NodeProto { OpType = op, Name = Next(op) };
            node.Input.AddRange(inputs);
            node.Output.Add(output ?? node.Name + "_out");
            _graph.Node.Add(node);
            return node;
        }

        private static AttributeProto Ints(string attr, params long[] values)
        {
            var a = new AttributeProto { Name = attr, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.AddRange(values);
            return a;
        }

        /// <summary>A float tensor value with a symbolic batch dimension followed by <paramref name="dims"/>.</summary>
        private static ValueInfoProto Value(string id, long[] dims)
        {
            var shape = new TensorShapeProto();
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "batch" });
            foreach (var d in dims)
                shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            return new ValueInfoProto
            {
                Name = id,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = Float, Shape = shape } },
            };
        }
    }
}
