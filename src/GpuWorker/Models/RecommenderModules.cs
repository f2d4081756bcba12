using MlFunctions.GpuWorker.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Models;

/// <summary>
/// Shared shape of the recommenders: input int64 [n, 2] of (user index, item index), output float [n], one score per
/// pair (a logit: higher ranks first). The ONNX graph has the same contract, so serving scores a user against the
/// whole catalogue by sending [items, 2] pairs.
/// </summary>
public static class RecommenderOnnx
{
    public const string OutputName = "scores";

    /// <summary>A graph over int64 (user, item) pairs with the two id columns split out: returns (graph, users [n], items [n]).</summary>
    public static (OnnxGraph Graph, string Users, string Items) Start()
    {
        var graph = new OnnxGraph { SampleShape = [2], InputType = global::Onnx.TensorProto.Types.DataType.Int64, Output = OutputName, OutputDims = [] };
        var column0 = graph.AddInt64Initializer("column.user", [0]);
        var column1 = graph.AddInt64Initializer("column.item", [1]);
        var users = graph.AddNode("Gather", "user_index", [OnnxGraph.InputName, column0], OnnxExporter.Int("axis", 1));
        var items = graph.AddNode("Gather", "item_index", [OnnxGraph.InputName, column1], OnnxExporter.Int("axis", 1));
        return (graph, users, items);
    }

    /// <summary>Rows of an embedding table for the given indices: Gather(weight, indices) → [n, d].</summary>
    public static string Lookup(OnnxGraph graph, string name, Embedding table, string indices) =>
        graph.AddNode("Gather", name, [graph.AddInitializer($"{name}.weight", table.weight!), indices], OnnxExporter.Int("axis", 0));

    /// <summary>A [rows, 1] bias table looked up as [n]: the table is stored flat, so Gather yields one value per index.</summary>
    public static string BiasLookup(OnnxGraph graph, string name, Embedding table, string indices)
    {
        using var flat = table.weight!.detach().reshape(-1);
        return graph.AddNode("Gather", name, [graph.AddInitializer($"{name}.weight", flat), indices], OnnxExporter.Int("axis", 0));
    }

    /// <summary>Small-normal initialization, the usual start for factor models (nn.Embedding's N(0, 1) is far too wide).</summary>
    public static void InitNormal(Embedding table, double std)
    {
        using var noGrad = no_grad();
        nn.init.normal_(table.weight!, 0, std);
    }
}

/// <summary>
/// A model whose embeddings are regularized per batch: the squared norms of the rows a batch of pairs touches (the
/// classic BPR-MF regularizer). Decaying every row at every step (the optimizer's weight decay) shrinks the rows of
/// items a batch never saw, and with Adam's per-parameter scaling that makes ranking quality swing from epoch to epoch.
/// </summary>
public interface IPairRegularized
{
    /// <summary>Σ over the pairs of ‖user row‖² + ‖item row‖² (a tensor on the model's device, with gradients).</summary>
    Tensor Penalty(Tensor pairs);
}

/// <summary>score(u, i) = ⟨P_u, Q_i⟩ + b_u + b_i.</summary>
public sealed class MatrixFactorizationModule : nn.Module<Tensor, Tensor>, IPairRegularized
{
    private readonly Embedding user;
    private readonly Embedding item;
    private readonly Embedding user_bias;
    private readonly Embedding item_bias;

    public MatrixFactorizationModule(long users, long items, long dim)
        : base("mf")
    {
        user = nn.Embedding(users, dim);
        item = nn.Embedding(items, dim);
        user_bias = nn.Embedding(users, 1);
        item_bias = nn.Embedding(items, 1);
        RecommenderOnnx.InitNormal(user, 0.1);
        RecommenderOnnx.InitNormal(item, 0.1);
        nn.init.zeros_(user_bias.weight!);
        nn.init.zeros_(item_bias.weight!);
        RegisterComponents();
    }

    public override Tensor forward(Tensor pairs)
    {
        using var scope = NewDisposeScope();
        var u = pairs.select(1, 0);
        var i = pairs.select(1, 1);
        var dot = (user.forward(u) * item.forward(i)).sum(1);
        return (dot + user_bias.forward(u).reshape(-1) + item_bias.forward(i).reshape(-1)).MoveToOuterDisposeScope();
    }

    public Tensor Penalty(Tensor pairs)
    {
        using var scope = NewDisposeScope();
        var p = user.forward(pairs.select(1, 0));
        var q = item.forward(pairs.select(1, 1));
        return ((p * p).sum() + (q * q).sum()).MoveToOuterDisposeScope();
    }

    /// <summary>Gather ×2 → Mul → ReduceSum(axis 1) → + Gather(user bias) + Gather(item bias).</summary>
    public OnnxGraph Export()
    {
        var (graph, users, items) = RecommenderOnnx.Start();
        var p = RecommenderOnnx.Lookup(graph, "user", user, users);
        var q = RecommenderOnnx.Lookup(graph, "item", item, items);
        var product = graph.AddNode("Mul", "product", [p, q]);
        var axes = graph.AddInt64Initializer("sum.axes", [1], 1);
        var dot = graph.AddNode("ReduceSum", "dot", [product, axes], OnnxExporter.Int("keepdims", 0));
        var bu = RecommenderOnnx.BiasLookup(graph, "user_bias", user_bias, users);
        var bi = RecommenderOnnx.BiasLookup(graph, "item_bias", item_bias, items);
        var withUser = graph.AddNode("Add", "add_user_bias", [dot, bu]);
        graph.AddNode("Add", "add_item_bias", [withUser, bi]);
        return graph;
    }
}

/// <summary>Neural collaborative filtering, the book's shape: [P_u ; Q_i] → (Linear → ReLU → Dropout)* → Linear(1).</summary>
public sealed class NcfModule : nn.Module<Tensor, Tensor>, IPairRegularized
{
    private readonly Embedding user;
    private readonly Embedding item;
    private readonly Sequential mlp;

    public NcfModule(long users, long items, long dim, IReadOnlyList<int> hidden, double dropout)
        : base("ncf")
    {
        user = nn.Embedding(users, dim);
        item = nn.Embedding(items, dim);
        RecommenderOnnx.InitNormal(user, 0.1);
        RecommenderOnnx.InitNormal(item, 0.1);
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        var inputs = 2 * dim;
        for (var l = 0; l < hidden.Count; l++)
        {
            layers.Add(($"fc{l + 1}", nn.Linear(inputs, hidden[l])));
            layers.Add(($"relu{l + 1}", nn.ReLU()));
            if (dropout > 0)
                layers.Add(($"dropout{l + 1}", nn.Dropout(dropout)));
            inputs = hidden[l];
        }

        layers.Add(("out", nn.Linear(inputs, 1)));
        mlp = nn.Sequential(layers);
        RegisterComponents();
    }

    public override Tensor forward(Tensor pairs)
    {
        using var scope = NewDisposeScope();
        var joined = cat([user.forward(pairs.select(1, 0)), item.forward(pairs.select(1, 1))], 1);
        return mlp.forward(joined).reshape(-1).MoveToOuterDisposeScope();
    }

    public Tensor Penalty(Tensor pairs)
    {
        using var scope = NewDisposeScope();
        var p = user.forward(pairs.select(1, 0));
        var q = item.forward(pairs.select(1, 1));
        return ((p * p).sum() + (q * q).sum()).MoveToOuterDisposeScope();
    }

    /// <summary>Gather ×2 → Concat → (Gemm → Relu)* → Gemm → Reshape [n].</summary>
    public OnnxGraph Export()
    {
        var (graph, users, items) = RecommenderOnnx.Start();
        var p = RecommenderOnnx.Lookup(graph, "user", user, users);
        var q = RecommenderOnnx.Lookup(graph, "item", item, items);
        graph.AddNode("Concat", "concat", [p, q], OnnxExporter.Int("axis", 1));
        OnnxExporter.MapModule(graph, "mlp", mlp);
        var shape = graph.AddInt64Initializer("flat.shape", [-1], 1);
        graph.AddNode("Reshape", "flat", [graph.Current, shape]);
        return graph;
    }
}
