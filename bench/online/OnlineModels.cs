using Google.Protobuf;
using Onnx;

namespace MlFunctions.Bench.Online;

/// <summary>
/// Two classifiers of known, different accuracy on a synthetic 10-class task (the bench's stand-in for the quick MLP
/// and the CNN of the main job, which would take minutes to train): a "teacher" MLP 784-64-10 with seeded weights
/// labels random inputs (with 5% label noise); the good model is the teacher itself, the weaker one the teacher with
/// Gaussian noise added to every weight, so it disagrees on a share of the inputs.
/// </summary>
internal static class OnlineModels
{
    public const int Features = 784, Hidden = 64, Classes = 10;
    public const string Input = "input", Output = "logits";

    public static (float[] W1, float[] W2) Teacher(int seed)
    {
        var rng = new Random(seed);
        float[] He(int n, int fanIn) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2) - 1) * MathF.Sqrt(6f / fanIn)).ToArray();
        return (He(Features * Hidden, Features), He(Hidden * Classes, Hidden));
    }

    public static (float[] W1, float[] W2) Perturbed((float[] W1, float[] W2) teacher, double noise, int seed)
    {
        var rng = new Random(seed);
        float[] P(float[] w) => w.Select(x => x + (float)(noise * Gaussian(rng) * MathF.Sqrt(6f / Features))).ToArray();
        return (P(teacher.W1), P(teacher.W2));
    }

    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>argmax(relu(x W1) W2), the same function the ONNX graph computes.</summary>
    public static int Predict((float[] W1, float[] W2) w, float[] x)
    {
        var h = new float[Hidden];
        for (int j = 0; j < Hidden; j++)
        {
            float s = 0;
            for (int i = 0; i < Features; i++)
                s += x[i] * w.W1[(i * Hidden) + j];
            h[j] = Math.Max(0, s);
        }
        int best = 0;
        float bestScore = float.NegativeInfinity;
        for (int c = 0; c < Classes; c++)
        {
            float s = 0;
            for (int j = 0; j < Hidden; j++)
                s += h[j] * w.W2[(j * Classes) + c];
            if (s > bestScore)
                (best, bestScore) = (c, s);
        }
        return best;
    }

    public static byte[] Onnx((float[] W1, float[] W2) w)
    {
        var g = new GraphProto { Name = "online-mlp" };
        g.Input.Add(Value(Input, Features));
        g.Output.Add(Value(Output, Classes));
        g.Initializer.Add(Tensor("W1", [Features, Hidden], w.W1));
        g.Initializer.Add(Tensor("W2", [Hidden, Classes], w.W2));
        g.Node.Add(Node("MatMul", [Input, "W1"], "h"));
        g.Node.Add(Node("Relu", ["h"], "r"));
        g.Node.Add(Node("MatMul", ["r", "W2"], Output));
        var m = new ModelProto { IrVersion = 8, ProducerName = "mlfunctions-bench-online", Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return m.ToByteArray();
    }

    private static ValueInfoProto Value(string name, long width)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = width });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1, Shape = shape } } };
    }

    private static TensorProto Tensor(string name, long[] dims, float[] data)
    {
        var t = new TensorProto { Name = name, DataType = 1 };
        t.Dims.AddRange(dims);
        t.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
        return t;
    }

    private static NodeProto Node(string op, string[] inputs, string output)
    {
        var n = new NodeProto { OpType = op, Name = op + "_" + output };
        n.Input.AddRange(inputs);
        n.Output.Add(output);
        return n;
    }
}
