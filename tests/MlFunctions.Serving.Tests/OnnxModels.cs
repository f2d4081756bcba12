using System.Security.Cryptography;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace MlFunctions.Serving.Tests;

/// <summary>Small ONNX models built in code with OnnxSharp's protobuf classes, and direct ORT runs to compare with.</summary>
internal static class OnnxModels
{
    private const int Float = 1, Int64 = 7;

    /// <summary>
    /// An MLP: input [batch, inFeatures] → Gemm → Relu → Gemm → output [batch, outFeatures], seeded weights.
    /// A different <paramref name="seed"/> gives a different model (used as "version 2").
    /// </summary>
    public static byte[] Mlp(int inFeatures = 4, int hidden = 8, int outFeatures = 3, int seed = 1, string input = "input", string output = "output")
    {
        var rng = new Random(seed);
        float[] Rand(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var g = new GraphProto { Name = "mlp" };
        g.Input.Add(Value(input, Float, null, inFeatures));
        g.Output.Add(Value(output, Float, null, outFeatures));
        g.Initializer.Add(Tensor("W1", [inFeatures, hidden], Rand(inFeatures * hidden)));
        g.Initializer.Add(Tensor("B1", [hidden], Rand(hidden)));
        g.Initializer.Add(Tensor("W2", [hidden, outFeatures], Rand(hidden * outFeatures)));
        g.Initializer.Add(Tensor("B2", [outFeatures], Rand(outFeatures)));
        g.Node.Add(Node("Gemm", [input, "W1", "B1"], ["h"]));
        g.Node.Add(Node("Relu", ["h"], ["r"]));
        g.Node.Add(Node("Gemm", ["r", "W2", "B2"], [output]));
        return Model(g);
    }

    /// <summary>Two inputs a, b [batch, n] → sum [batch, n] and product [batch, n]: exercises multi-input/multi-output.</summary>
    public static byte[] AddMul(int n = 3)
    {
        var g = new GraphProto { Name = "addmul" };
        g.Input.Add(Value("a", Float, null, n));
        g.Input.Add(Value("b", Float, null, n));
        g.Output.Add(Value("sum", Float, null, n));
        g.Output.Add(Value("product", Float, null, n));
        g.Node.Add(Node("Add", ["a", "b"], ["sum"]));
        g.Node.Add(Node("Mul", ["a", "b"], ["product"]));
        return Model(g);
    }

    /// <summary>
    /// Gather rows of a 10x2 table by INT64 index [batch, 1] → [batch, 1, 2]. An index outside 0..9 makes ORT fail
    /// at run time, which is how a test puts a request that breaks the model into a batch.
    /// </summary>
    public static byte[] Lookup()
    {
        var g = new GraphProto { Name = "lookup" };
        g.Input.Add(Value("idx", Int64, null, 1));
        g.Output.Add(Value("rows", Float, null, 1, 2));
        g.Initializer.Add(Tensor("table", [10, 2], Enumerable.Range(0, 20).Select(i => (float)i).ToArray()));
        var node = Node("Gather", ["table", "idx"], ["rows"]);
        node.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 0 });
        g.Node.Add(node);
        return Model(g);
    }

    /// <summary>An MLP with a fixed batch dimension of 1: it must never be batched.</summary>
    public static byte[] FixedBatchMlp()
    {
        var g = new GraphProto { Name = "fixed" };
        g.Input.Add(Value("input", Float, 1, 2));
        g.Output.Add(Value("output", Float, 1, 2));
        g.Node.Add(Node("Relu", ["input"], ["output"]));
        return Model(g);
    }

    /// <summary>
    /// An image "classifier" whose answer is known by construction: input [batch, ..sampleShape] → Flatten → MatMul
    /// with W[p, c] = 1 when p == c → logits [batch, classes]. The logits are the first <paramref name="classes"/>
    /// (transformed) pixels, so the predicted class is the index of the brightest of them.
    /// </summary>
    public static byte[] PixelClassifier(int[] sampleShape, int classes)
    {
        int pixels = sampleShape.Aggregate(1, (a, b) => a * b);
        var g = new GraphProto { Name = "pixel-classifier" };
        g.Input.Add(Value("input", Float, null, sampleShape.Select(d => (long)d).ToArray()));
        g.Output.Add(Value("logits", Float, null, classes));
        g.Initializer.Add(Tensor("W", [pixels, classes], Enumerable.Range(0, pixels * classes).Select(i => i / classes == i % classes ? 1f : 0f).ToArray()));
        var flatten = Node("Flatten", ["input"], ["flat"]);
        flatten.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        g.Node.Add(flatten);
        g.Node.Add(Node("MatMul", ["flat", "W"], ["logits"]));
        return Model(g);
    }

    /// <summary>
    /// A matrix-factorization recommender with the worker's contract: INT64 (user, item) pairs [batch, 2] →
    /// scores [batch] = ⟨U[user], V[item]⟩, with the given factor tables (row-major, <paramref name="dim"/> wide).
    /// </summary>
    public static byte[] DotProductRecommender(float[] users, float[] items, int dim)
    {
        var g = new GraphProto { Name = "mf" };
        g.Input.Add(Value("input", Int64, null, 2));
        g.Output.Add(Value("scores", Float, null));
        g.Initializer.Add(Tensor("U", [users.Length / dim, dim], users));
        g.Initializer.Add(Tensor("V", [items.Length / dim, dim], items));
        var zero = new TensorProto { Name = "zero", DataType = Int64 };
        zero.Int64Data.Add(0);
        var one = new TensorProto { Name = "one", DataType = Int64 };
        one.Int64Data.Add(1);
        var axes = new TensorProto { Name = "axes", DataType = Int64 };
        axes.Dims.Add(1);
        axes.Int64Data.Add(1);
        g.Initializer.Add(zero);
        g.Initializer.Add(one);
        g.Initializer.Add(axes);
        NodeProto Gather(string data, string index, string output, long axis)
        {
            var node = Node("Gather", [data, index], [output]);
            node.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = axis });
            return node;
        }

        g.Node.Add(Gather("input", "zero", "u", 1));
        g.Node.Add(Gather("input", "one", "i", 1));
        g.Node.Add(Gather("U", "u", "pu", 0));
        g.Node.Add(Gather("V", "i", "qi", 0));
        g.Node.Add(Node("Mul", ["pu", "qi"], ["prod"]));
        var sum = Node("ReduceSum", ["prod", "axes"], ["scores"]);
        sum.Attribute.Add(new AttributeProto { Name = "keepdims", Type = AttributeProto.Types.AttributeType.Int, I = 0 });
        g.Node.Add(sum);
        return Model(g);
    }

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Runs a model directly on ONNX Runtime (CPU): the reference the endpoints must match.</summary>
    public static float[] RunDirect(byte[] model, string input, float[] data, long[] shape, string output)
    {
        using var session = new InferenceSession(model);
        using var value = OrtValue.CreateTensorValueFromMemory(data, shape);
        using var options = new RunOptions();
        using var results = session.Run(options, [input], [value], [output]);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static ValueInfoProto Value(string name, int elemType, long? batch, params long[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(batch is { } b ? new TensorShapeProto.Types.Dimension { DimValue = b } : new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        foreach (var d in dims)
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elemType, Shape = shape } },
        };
    }

    private static TensorProto Tensor(string name, long[] dims, float[] data)
    {
        var t = new TensorProto { Name = name, DataType = Float };
        t.Dims.AddRange(dims);
        t.FloatData.AddRange(data);
        return t;
    }

    private static NodeProto Node(string op, string[] inputs, string[] outputs)
    {
        var n = new NodeProto { OpType = op, Name = op + "_" + outputs[0] };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        return n;
    }

    private static byte[] Model(GraphProto g)
    {
        var m = new ModelProto { IrVersion = 8, ProducerName = "mlfunctions-tests", Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return m.ToByteArray();
    }
}
