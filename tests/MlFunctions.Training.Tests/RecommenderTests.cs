using Azure.Storage.Blobs;
using Microsoft.ML.OnnxRuntime;
using MlFunctions.Activities.Datasets;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;
using MlFunctions.GpuWorker;
using MlFunctions.GpuWorker.Data;
using MlFunctions.GpuWorker.Models;
using MlFunctions.GpuWorker.Onnx;
using MlFunctions.GpuWorker.Training;
using MlFunctions.Tests.Infrastructure;
using TorchSharp;
using static TorchSharp.torch;

namespace MlFunctions.Training.Tests;

/// <summary>The ranking task in the worker: MF and NCF, their ONNX export against ONNX Runtime, the losses, and a real job on Online Retail.</summary>
public sealed class RecommenderTests
{
    private static InteractionsPrepared Retail(int days)
    {
        var files = Directory.GetFiles(Path.Combine(RepoPaths.SharedDatasets, "recommender", "online-retail-by-day"), "*.csv")
            .Order(StringComparer.Ordinal).Take(days).Select(CsvSource.FromFile).ToList();
        return InteractionPreparation.Prepare(files, new InteractionsRecipe { Columns = new InteractionColumns { Format = InteractionData.OnlineRetailFormat } });
    }

    private static PreparedDataset InMemory(InteractionsPrepared p) => new(
        new TransformSpec { Kind = TransformSpec.InteractionsKind, Interactions = p.Transform },
        p.Shards.ToDictionary(kv => kv.Key, kv => GpuWorker.Data.PreparedSplit.Concat(kv.Key, [kv.Value])),
        p.Transform.Items.Count,
        TrainingObjectives.Ranking);

    [Theory]
    [InlineData("mf")]
    [InlineData("ncf")]
    public void ExportedRecommenderMatchesTorchSharpWithin1e5(string name)
    {
        set_num_threads(2);
        manual_seed(3);
        var definition = ModelZoo.Get(name, TrainingObjectives.Ranking);
        var inputs = new ModelInputs(TrainingObjectives.Ranking, [2], 1, Users: 40, Items: 70);
        using var model = definition.BuildModule(new HyperParameters { EmbeddingSize = 8, HiddenSizes = [16, 8], Dropout = 0.2 }, inputs);
        model.eval();
        var onnx = OnnxExporter.ToModelBytes(definition.ExportModule(model, inputs), 1, name);
        foreach (var batch in new[] { 1, 70 })
        {
            using var pairs = stack([randint(0, 40, [batch], dtype: ScalarType.Int64), randint(0, 70, [batch], dtype: ScalarType.Int64)], 1);
            var parity = OnnxParityCheck.Run(onnx, model, pairs, compareArgmax: false);
            Assert.Equal(batch, parity.BatchSize);
            Assert.True(parity.MaxAbsLogitDiff <= 1e-5, $"{name} batch {batch}: max |Δscore| {parity.MaxAbsLogitDiff}");
        }

        using var session = new InferenceSession(onnx);
        Assert.Equal(typeof(long), session.InputMetadata["input"].ElementType);
        Assert.Equal([-1, 2], session.InputMetadata["input"].Dimensions);
        Assert.Equal([-1], session.OutputMetadata[RecommenderOnnx.OutputName].Dimensions);
        var ops = Onnx.ModelProto.Parser.ParseFrom(onnx).Graph.Node.Select(n => n.OpType).ToHashSet();
        Assert.Contains("Gather", ops);
        Assert.Contains(name == "mf" ? "ReduceSum" : "Concat", ops);
        if (name == "ncf")
            Assert.Contains("Gemm", ops);
    }

    [Fact]
    public void SigmoidLayersOfASequentialExportToOnnxSigmoid()
    {
        manual_seed(1);
        using var model = nn.Sequential(("fc", nn.Linear(4, 3)), ("sigmoid", nn.Sigmoid()));
        var graph = OnnxExporter.ExportSequential(model, [4]);
        Assert.Contains(graph.Nodes, n => n.OpType == "Sigmoid");
        using var x = randn(5, 4);
        var parity = OnnxParityCheck.Run(OnnxExporter.ToModelBytes(graph, 3, "sigmoid"), model, x);
        Assert.True(parity.MaxAbsLogitDiff <= 1e-6, $"{parity.MaxAbsLogitDiff}");
    }

    [Fact]
    public void RecommendersRefuseClassificationAndClassifiersRefuseRanking()
    {
        Assert.Contains("ranking", Assert.Throws<JobValidationException>(() => ModelZoo.Get("mf", TrainingObjectives.Classification)).Message);
        Assert.Contains("mf", Assert.Throws<JobValidationException>(() => ModelZoo.Get("mlp", TrainingObjectives.Ranking)).Message);
    }

    [Theory]
    [InlineData("mf", TrainingObjectives.Bpr)]
    [InlineData("mf", TrainingObjectives.SampledBce)]
    [InlineData("ncf", TrainingObjectives.SampledBce)]
    public void RankingLossDecreasesAndHitRateBeatsChance(string name, string loss)
    {
        set_num_threads(2);
        var data = InMemory(Retail(5));
        var hp = new HyperParameters { Loss = loss, EmbeddingSize = 16, HiddenSizes = [32], LearningRate = 5e-3, BatchSize = 256, Negatives = 4, Seed = 2 };
        using var objective = TrainingObjective.Create(TrainingObjectives.Ranking, data, data.Splits["train"], data.Splits["val"], data.Splits["test"], hp, CPU);
        Assert.Equal(loss, objective.Loss);
        manual_seed(hp.Seed);
        var definition = ModelZoo.Get(name);
        using var model = definition.BuildModule(hp, objective.Inputs);
        using var optimizer = EpochTrainer.CreateOptimizer(model, objective.OptimizerSettings(hp));
        var losses = new List<double>();
        EvaluationResult? last = null;
        for (var epoch = 1; epoch <= 4; epoch++)
        {
            losses.Add(objective.TrainEpoch(model, optimizer, hp, epoch, null, CancellationToken.None).Loss);
            last = objective.Evaluate(model);
        }

        Assert.True(losses[^1] < losses[0] * 0.9, $"{name}/{loss} losses {string.Join(", ", losses.Select(l => l.ToString("F4")))}");
        Assert.Equal(last!.Primary, last.Metrics!["hr@10"]);
        Assert.True(last.Metrics.ContainsKey("ndcg@10"));

        // Chance over ~1,500 unseen items is well under 1%.
        Assert.True(last.Primary > 0.01, $"{name}/{loss} hr@10 {last.Primary}");
    }

    [Fact]
    public async Task ARankingJobOnOnlineRetailTrainsExportsAndReportsHitRate()
    {
        var prepared = Retail(20);
        var blobs = new BlobServiceClient(await TestStorage.ConnectionStringAsync());
        var container = blobs.GetBlobContainerClient(PreparedMnist.Container);
        await container.CreateIfNotExistsAsync();
        var prefix = "retail-" + Guid.NewGuid().ToString("N")[..8];
        var transform = new TransformSpec { Kind = TransformSpec.InteractionsKind, Interactions = prepared.Transform };
        var (manifest, _) = await PreparedDatasetWriter.WriteAsync(
            container, prefix, new DatasetRef("retail", prefix, prefix), new PreparationRecipe(), "slice", transform, prepared.Transform.Items.Count, prepared.Shards, CancellationToken.None, TrainingObjectives.Ranking);
        var data = new PreparedDataRef(PreparedMnist.Container, prefix, manifest.ContentHash);

        using var callbacks = new CallbackReceiver();
        var job = Jobs.Mnist("mf", data, callbacks.CallbackFor("mf-run"), new HyperParameters { EmbeddingSize = 32, Epochs = 3, BatchSize = 256, LearningRate = 5e-3, Loss = TrainingObjectives.Bpr, Seed = 3 });
        var config = WorkerConfig.Build(await WorkerConfig.SettingsAsync("rec"));
        Assert.Equal(0, await TrainingWorkerHost.RunSingleJobAsync(job, config, CancellationToken.None));

        var result = (await callbacks.WaitForAsync(job.JobId, TrainingEvents.Completed)).Result!;
        Assert.Equal([1, 2, 3], result.History.Select(h => h.Epoch));
        Assert.All(result.History, h => Assert.Equal(h.ValAccuracy, h.ValMetrics!["hr@10"]));
        Assert.True(result.History[^1].TrainLoss < result.History[0].TrainLoss);
        Assert.True(result.History[^1].ValAccuracy > 0.02, $"hr@10 {result.History[^1].ValAccuracy}");
        Assert.True(result.Parity!.MaxAbsLogitDiff <= 1e-5, $"parity {result.Parity.MaxAbsLogitDiff}");
        Assert.Equal(prepared.Transform.Users, result.Transform!.Interactions!.Users);
        Assert.Equal((885 + 2411) * (32 + 1), result.ParameterCount);
    }
}
