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

    /// <summary>A linear classifier's graph, <c>input · W + b</c> (W is [784, 10] row-major), the function <see cref="Predict(Linear, float[])"/> computes.</summary>
    public static byte[] Onnx(Linear w)
    {
        var g = new GraphProto { Name = "online-linear" };
        g.Input.Add(Value(Input, Features));
        g.Output.Add(Value(Output, Classes));
        g.Initializer.Add(Tensor("W", [Features, Classes], w.W));
        g.Initializer.Add(Tensor("b", [Classes], w.B));
        g.Node.Add(Node("MatMul", [Input, "W"], "z"));
        g.Node.Add(Node("Add", ["z", "b"], Output));
        var m = new ModelProto { IrVersion = 8, ProducerName = "mlfunctions-bench-online", Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return m.ToByteArray();
    }

    public static int Predict(Linear w, float[] x)
    {
        int best = 0;
        float bestScore = float.NegativeInfinity;
        for (int c = 0; c < Classes; c++)
        {
            float s = w.B[c];
            for (int i = 0; i < Features; i++)
                s += x[i] * w.W[(i * Classes) + c];
            if (s > bestScore)
                (best, bestScore) = (c, s);
        }
        return best;
    }

    /// <summary>
    /// Ridge regression on one-hot targets (least squares with λ‖W‖², bias unpenalized), solved exactly by Cholesky on
    /// the 785 × 785 normal equations: a real MNIST model in about a second, no training loop. MNIST pixels are ~80 %
    /// zeros, so XᵀX is summed over each image's non-zero pixels only.
    /// </summary>
    public static Linear Ridge(IReadOnlyList<float[]> xs, IReadOnlyList<int> ys, double lambda)
    {
        const int d = Features + 1;
        var a = new double[d * d];
        var b = new double[d * Classes];
        var nz = new List<int>(Features + 1);
        for (int n = 0; n < xs.Count; n++)
        {
            var x = xs[n];
            nz.Clear();
            for (int i = 0; i < Features; i++)
                if (x[i] != 0)
                    nz.Add(i);
            nz.Add(Features); // the bias feature, 1
            double V(int i) => i == Features ? 1.0 : x[i];
            foreach (int i in nz)
            {
                double xi = V(i);
                foreach (int j in nz)
                    if (j >= i)
                        a[(i * d) + j] += xi * V(j);
                b[(i * Classes) + ys[n]] += xi;
            }
        }
        for (int i = 0; i < d; i++)
        {
            for (int j = 0; j < i; j++)
                a[(i * d) + j] = a[(j * d) + i];
            if (i < Features)
                a[(i * d) + i] += lambda;
        }

        // Cholesky A = L Lᵀ in place (lower triangle), then L Lᵀ w = b per class.
        for (int j = 0; j < d; j++)
        {
            double sum = a[(j * d) + j];
            for (int k = 0; k < j; k++)
                sum -= a[(j * d) + k] * a[(j * d) + k];
            double l = Math.Sqrt(Math.Max(sum, 1e-12));
            a[(j * d) + j] = l;
            for (int i = j + 1; i < d; i++)
            {
                double t = a[(i * d) + j];
                for (int k = 0; k < j; k++)
                    t -= a[(i * d) + k] * a[(j * d) + k];
                a[(i * d) + j] = t / l;
            }
        }
        var w = new float[Features * Classes];
        var bias = new float[Classes];
        var z = new double[d];
        for (int c = 0; c < Classes; c++)
        {
            for (int i = 0; i < d; i++)
            {
                double t = b[(i * Classes) + c];
                for (int k = 0; k < i; k++)
                    t -= a[(i * d) + k] * z[k];
                z[i] = t / a[(i * d) + i];
            }
            for (int i = d - 1; i >= 0; i--)
            {
                double t = z[i];
                for (int k = i + 1; k < d; k++)
                    t -= a[(k * d) + i] * z[k];
                z[i] = t / a[(i * d) + i];
            }
            for (int i = 0; i < Features; i++)
                w[(i * Classes) + c] = (float)z[i];
            bias[c] = (float)z[Features];
        }
        return new Linear(w, bias);
    }

    /// <summary>Nearest class mean as a linear model: score_c = x·μ_c − ½‖μ_c‖² (a weak but real classifier).</summary>
    public static Linear Centroid(IReadOnlyList<float[]> xs, IReadOnlyList<int> ys)
    {
        var mean = new double[Classes * Features];
        var count = new int[Classes];
        for (int n = 0; n < xs.Count; n++)
        {
            count[ys[n]]++;
            for (int i = 0; i < Features; i++)
                mean[(ys[n] * Features) + i] += xs[n][i];
        }
        var w = new float[Features * Classes];
        var bias = new float[Classes];
        for (int c = 0; c < Classes; c++)
        {
            double norm = 0;
            for (int i = 0; i < Features; i++)
            {
                double m = count[c] > 0 ? mean[(c * Features) + i] / count[c] : 0;
                w[(i * Classes) + c] = (float)m;
                norm += m * m;
            }
            bias[c] = (float)(-0.5 * norm);
        }
        return new Linear(w, bias);
    }

    /// <summary>MNIST images (pixels / 255) and labels: the first <paramref name="limit"/> of <c>{prefix}</c> in <paramref name="folder"/>.</summary>
    public static (List<float[]> Images, List<int> Labels) ReadMnist(string folder, string prefix, int limit)
    {
        using var reader = MlFunctions.Core.Datasets.IdxLabeledReader.OpenMnist(folder, prefix);
        var images = new List<float[]>();
        var labels = new List<int>();
        foreach (var batch in reader.ReadBatches(1000, limit))
        {
            for (int n = 0; n < batch.Count; n++)
            {
                var x = new float[Features];
                for (int i = 0; i < Features; i++)
                    x[i] = batch.Features[(n * Features) + i] / 255f;
                images.Add(x);
                labels.Add(batch.Labels[n]);
            }
        }
        return (images, labels);
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

/// <summary>A linear 784 → 10 classifier: W row-major [784, 10], bias [10].</summary>
internal sealed record Linear(float[] W, float[] B);
