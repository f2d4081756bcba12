using System.Security.Cryptography;
using Azure.Storage.Blobs;
using MlFunctions.Activities;
using MlFunctions.Core;
using MlFunctions.Activities.Models;
using MlFunctions.Activities.Registry;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Serving.Tests;

/// <summary>
/// The MNIST pipeline's model activities against Azurite, on a toy prepared split and a classifier whose answers are
/// known by construction (<see cref="OnnxModels.PixelClassifier"/>: the brightest of the first four pixels wins).
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ModelLifecycleTests(AzuriteFixture azurite)
{
    private static readonly int[] SampleShape = [1, 2, 2];
    private const int Classes = 4;
    private static readonly TransformSpec Transform = new() { Scale = 1f / 255f, Mean = [0.5f], Std = [0.25f] };

    /// <summary>Every 12th sample pattern: 3 of 12 have their bright pixel one class off (samples 3, 7, 10).</summary>
    private static readonly int[] WrongInCycle = [3, 7, 10];

    private static ActivityCall Call(string name) => new(name, "test-instance", CancellationToken.None);

    private IStorageClients Storage => new ConnectionStringStorageClients(_ => Task.FromResult(azurite.ConnectionString));

    private static OrtSessionFactory Sessions() =>
        new(OrtSessionFactory.ProvidersFor(new ServingOptions { ExecutionProvider = ExecutionProviderPreference.Auto }), 1);

    private static (byte[] Features, int[] Labels) ToySplit(int count)
    {
        var features = new byte[count * 4];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            int label = i % Classes;
            int bright = WrongInCycle.Contains(i % 12) ? (label + 1) % Classes : label;
            labels[i] = label;
            for (int p = 0; p < 4; p++)
                features[(i * 4) + p] = p == bright ? (byte)200 : (byte)(10 * (p + 1) + (i % 7));
        }
        return (features, labels);
    }

    /// <summary>Writes a prepared dataset (one "test" split + manifest) exactly as the reader expects it.</summary>
    private async Task<(PreparedDataRef Ref, byte[] Features, int[] Labels)> PrepareAsync(int count)
    {
        var (features, labels) = ToySplit(count);
        var container = await azurite.NewContainerAsync("prepared");
        const string prefix = "toy/v1/recipe";
        var shard = new PreparedShard(SampleShape, features, labels);
        using var ms = new MemoryStream();
        shard.WriteTo(ms);
        var bytes = ms.ToArray();
        var blob = PreparedLayout.ShardBlob(prefix, "test");
        await container.GetBlobClient(blob).UploadAsync(new BinaryData(bytes));
        var split = new PreparedSplit("test", blob, count, bytes.Length, Convert.ToHexStringLower(SHA256.HashData(bytes)),
            labels.GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count()));
        var manifest = new PreparedDatasetManifest
        {
            Source = new DatasetRef("toy", "v1", "h"),
            Recipe = new PreparationRecipe(),
            RecipeHash = "recipe",
            Transform = Transform,
            SampleShape = SampleShape,
            NumClasses = Classes,
            Splits = [split],
            ContentHash = PreparedLayout.ContentHash([split], Transform),
        };
        await container.GetBlobClient(PreparedLayout.ManifestBlob(prefix)).UploadAsync(BinaryData.FromObjectAsJson(manifest, MlJson.Options));
        return (new PreparedDataRef(container.Name, prefix, manifest.ContentHash), features, labels);
    }

    /// <summary>The classifier as the worker leaves it: a blob under its job id.</summary>
    private async Task<(string Uri, string Sha, byte[] Bytes)> WorkerOnnxAsync()
    {
        var onnx = OnnxModels.PixelClassifier(SampleShape, Classes);
        var container = await azurite.NewContainerAsync("work");
        var blob = container.GetBlobClient($"artifacts/job-{Guid.NewGuid():N}/model.onnx");
        await blob.UploadAsync(new BinaryData(onnx));
        return (blob.Uri.ToString(), OnnxModels.Sha256(onnx), onnx);
    }

    private static double[] TransformedLogits(byte[] features, int i)
    {
        var x = features.AsSpan(i * 4, 4).ToArray().Select(b => (float)b).ToArray();
        Transform.Apply(x);
        return x.Select(v => (double)v).ToArray();
    }

    [Fact]
    public async Task EvaluateScoresTheSplitWithTheStoredTransformInBatches()
    {
        const int count = 600; // three ORT batches of at most 256
        var (data, features, labels) = await PrepareAsync(count);
        var (uri, sha, _) = await WorkerOnnxAsync();
        var activity = new EvaluateModelActivity(Storage, new BlobArtifactStore(azurite.Service), Sessions());

        var result = await activity.RunAsync(new EvaluateModelInput(uri, sha, data), Call(ActivityNames.EvaluateModel));

        double expectedLoss = Enumerable.Range(0, count).Average(i =>
        {
            var z = TransformedLogits(features, i);
            double max = z.Max();
            return max + Math.Log(z.Sum(v => Math.Exp(v - max))) - z[labels[i]];
        });
        Assert.Equal(count, result.Samples);
        Assert.Equal(0.75, result.Accuracy, 12);
        Assert.Equal(expectedLoss, result.Loss, 4);
        Assert.Equal(new[] { 1.0, 1.0, 2.0 / 3, 1.0 / 3 }, result.PerClassAccuracy, (a, b) => Math.Abs(a - b) < 1e-9);
        Assert.Equal([150, 150, 150, 150], result.PerClassSamples);
        Assert.Contains(result.Provider, new[] { "CPUExecutionProvider", "CUDAExecutionProvider" });

        var capped = await activity.RunAsync(new EvaluateModelInput(uri, sha, data, MaxSamples: 12), Call(ActivityNames.EvaluateModel));
        Assert.Equal(12, capped.Samples);
        Assert.Equal(0.75, capped.Accuracy, 12);

        var wrong = await Assert.ThrowsAsync<ModelIntegrityException>(() =>
            activity.RunAsync(new EvaluateModelInput(uri, new string('0', 64), data), Call(ActivityNames.EvaluateModel)));
        Assert.Contains("sha256 mismatch", wrong.Message);
    }

    [Fact]
    public async Task ExportCopiesUnderTheContentHashReadsTheSignatureAndRefusesAShaMismatch()
    {
        var (uri, sha, onnx) = await WorkerOnnxAsync();
        string model = $"m{Guid.NewGuid():N}"[..20];
        var activity = new ExportModelActivity(Storage, new BlobArtifactStore(azurite.Service), Sessions());

        var result = await activity.RunAsync(new ExportModelInput(model, uri, sha.ToUpperInvariant()), Call(ActivityNames.ExportModel));

        var copy = azurite.Service.GetBlobContainerClient(TrainingStorage.ModelsContainer).GetBlobClient(ExportModelActivity.ArtifactBlob(model, sha));
        Assert.Equal(copy.Uri.ToString(), result.ArtifactUri);
        Assert.Equal(sha, result.Sha256);
        Assert.Equal(onnx.LongLength, result.Bytes);
        Assert.Equal(onnx, (await copy.DownloadContentAsync()).Value.Content.ToArray());
        var input = Assert.Single(result.Signature.Inputs);
        Assert.Equal(("input", "FP32"), (input.Name, input.Datatype));
        Assert.Equal(new long[] { -1, 1, 2, 2 }, input.Shape);
        var output = Assert.Single(result.Signature.Outputs);
        Assert.Equal(("logits", "FP32"), (output.Name, output.Datatype));
        Assert.Equal(new long[] { -1, Classes }, output.Shape);

        // A retry finds the same bytes under the same name and leaves the blob alone.
        var etag = (await copy.GetPropertiesAsync()).Value.ETag;
        var again = await activity.RunAsync(new ExportModelInput(model, uri, sha), Call(ActivityNames.ExportModel));
        Assert.Equal(result.ArtifactUri, again.ArtifactUri);
        Assert.Equal(etag, (await copy.GetPropertiesAsync()).Value.ETag);

        string bogus = new('a', 64);
        var e = await Assert.ThrowsAsync<ModelIntegrityException>(() =>
            activity.RunAsync(new ExportModelInput(model, uri, bogus), Call(ActivityNames.ExportModel)));
        Assert.Contains("sha256 mismatch", e.Message);
        Assert.False((await azurite.Service.GetBlobContainerClient(TrainingStorage.ModelsContainer)
            .GetBlobClient(ExportModelActivity.ArtifactBlob(model, bogus)).ExistsAsync()).Value);
        await Assert.ThrowsAsync<ArgumentException>(() => activity.RunAsync(new ExportModelInput(model, uri, "abc"), Call(ActivityNames.ExportModel)));
    }

    private static ModelVersionDraft Draft(string artifactUri, string sha, string runId) => new()
    {
        ArtifactUri = artifactUri,
        Sha256 = sha,
        Signature = new ModelSignature([new TensorSignature("input", "FP32", [-1, 1, 2, 2])], [new TensorSignature("logits", "FP32", [-1, Classes])]),
        Transform = Transform,
        Metrics = new Dictionary<string, double> { ["test_accuracy"] = 0.75 },
        Lineage = new ModelLineage { PipelineRunId = runId, DatasetVersion = "toy/v1" },
    };

    [Fact]
    public async Task RegisterIsIdempotentPerShaAndRunAndAliasesResolve()
    {
        var registry = new BlobModelRegistry(await azurite.NewContainerAsync());
        var register = new RegisterModelVersionActivity(registry);
        var getAlias = new GetModelAliasActivity(registry);
        var move = new MoveModelAliasActivity(registry);
        string sha = new('b', 64);

        Assert.Null(await getAlias.RunAsync(new GetModelAliasInput("mnist", RegistryNames.Champion), Call(ActivityNames.GetModelAlias)));

        var first = await register.RunAsync(new RegisterModelVersionInput("mnist", Draft("models/a.onnx", sha, "run-1")), Call(ActivityNames.RegisterModelVersion));
        var retried = await register.RunAsync(new RegisterModelVersionInput("mnist", Draft("models/a.onnx", sha, "run-1")), Call(ActivityNames.RegisterModelVersion));
        Assert.Equal(1, first.Version);
        Assert.Equal(first.Version, retried.Version);
        Assert.Single(await registry.ListVersionsAsync("mnist"));

        // Same bytes from another run are a new version: lineage differs.
        var other = await register.RunAsync(new RegisterModelVersionInput("mnist", Draft("models/a.onnx", sha, "run-2")), Call(ActivityNames.RegisterModelVersion));
        Assert.Equal(2, other.Version);
        await Assert.ThrowsAsync<ArgumentException>(() =>
            register.RunAsync(new RegisterModelVersionInput("mnist", Draft("models/a.onnx", sha, "")), Call(ActivityNames.RegisterModelVersion)));

        Assert.Null(await getAlias.RunAsync(new GetModelAliasInput("mnist", RegistryNames.Champion), Call(ActivityNames.GetModelAlias)));
        var moved = await move.RunAsync(new MoveModelAliasInput("mnist", RegistryNames.Champion, 1), Call(ActivityNames.MoveModelAlias));
        var retriedMove = await move.RunAsync(new MoveModelAliasInput("mnist", RegistryNames.Champion, 1), Call(ActivityNames.MoveModelAlias));
        Assert.Equal(moved.Revision, retriedMove.Revision);
        var promoted = await move.RunAsync(new MoveModelAliasInput("mnist", RegistryNames.Champion, 2), Call(ActivityNames.MoveModelAlias));
        Assert.Equal((2, 1, 2L), (promoted.Version, promoted.PreviousVersion!.Value, promoted.Revision));

        var champion = await getAlias.RunAsync(new GetModelAliasInput("mnist", RegistryNames.Champion), Call(ActivityNames.GetModelAlias));
        Assert.Equal(2, champion!.Version);
        Assert.Equal("run-2", champion.Lineage.PipelineRunId);
        Assert.Null(await getAlias.RunAsync(new GetModelAliasInput("nosuchmodel", RegistryNames.Champion), Call(ActivityNames.GetModelAlias)));
        await Assert.ThrowsAsync<RegistryException>(() => move.RunAsync(new MoveModelAliasInput("mnist", RegistryNames.Champion, 9), Call(ActivityNames.MoveModelAlias)));
    }

    [Fact]
    public async Task SmokeInferenceGoesThroughTheServingLayerWithRawPixels()
    {
        var (data, features, labels) = await PrepareAsync(24);
        var (uri, sha, _) = await WorkerOnnxAsync();
        var artifacts = new BlobArtifactStore(azurite.Service);
        var sessions = Sessions();
        var export = await new ExportModelActivity(Storage, artifacts, sessions)
            .RunAsync(new ExportModelInput("toy", uri, sha), Call(ActivityNames.ExportModel));
        var registry = new BlobModelRegistry(await azurite.NewContainerAsync());
        var version = await registry.RegisterVersionAsync("toy", Draft(export.ArtifactUri, export.Sha256, "run-smoke") with { Signature = export.Signature });
        var options = new ServingOptions();
        var metrics = new ServingMetrics();
        await using var repository = new ModelRepository(registry, artifacts, sessions, options, metrics);
        var activity = new SmokeInferenceActivity(Storage, new InferenceDataplane(repository, options, metrics));

        foreach (int index in new[] { 5, 7 }) // 5 is classified right, 7 one class off
        {
            var smoke = await activity.RunAsync(new SmokeInferenceInput("toy", version.Version, data, ImageIndex: index), Call(ActivityNames.SmokeInference));
            var z = TransformedLogits(features, index);
            int expected = Array.IndexOf(z, z.Max());
            Assert.Equal((index, labels[index], expected, version.Version), (smoke.ImageIndex, smoke.TrueLabel, smoke.Predicted, smoke.ModelVersion));
            Assert.Equal(index == 5, smoke.Predicted == smoke.TrueLabel);
            Assert.Equal(1 / z.Sum(v => Math.Exp(v - z.Max())), smoke.Confidence, 5);
            Assert.Contains(smoke.Provider, new[] { "CPUExecutionProvider", "CUDAExecutionProvider" });
        }

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            activity.RunAsync(new SmokeInferenceInput("toy", version.Version, data, ImageIndex: 24), Call(ActivityNames.SmokeInference)));
    }

    private static PipelineReport Report(string runId)
    {
        var start = new DateTime(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        TrialSummary Trial(string id, double? objective, string lr, TrialState state = TrialState.Succeeded) =>
            new(id, new ParameterSet { ["lr"] = lr, ["arch"] = "mlp" }, state, objective, null, 2, state == TrialState.Failed ? "worker | lost" : null);
        var best = Trial("t2", 0.97, "0.01");
        StepRecord Step(int seq, string step, bool cached, int attempts, int seconds) => new()
        {
            RunId = runId, Sequence = seq, Step = step, CodeVersion = "v1", Target = step + "-activity",
            StartedAt = start.AddSeconds(seq * 100), EndedAt = start.AddSeconds((seq * 100) + seconds),
            Cached = cached, CachedFromRunId = cached ? "run-0" : null, Attempts = attempts, Status = StepStatus.Succeeded,
        };
        return new PipelineReport
        {
            RunId = runId,
            Pipeline = "MnistPipeline",
            Outcome = MnistPipelineOutcomes.Promoted,
            Reason = "candidate 0.97 beats champion 0.95",
            StartedAt = start,
            EndedAt = start.AddMinutes(12),
            Metrics = new Dictionary<string, double> { ["test_accuracy"] = 0.97, ["test_loss"] = 0.1 },
            DatasetVersion = "mnist/v1",
            ModelVersion = 3,
            Sweep = new SweepResult("sweep-1", SweepOutcomes.MaxTrialsReached, "6 trials", best, null,
                [Trial("t1", 0.91, "0.1"), best, Trial("t3", null, "1", TrialState.Failed), Trial("t4", 0.95, "0.001")], 2),
            Smoke = new SmokeInferenceResult(0, 7, 7, 0.99, 3, "CPUExecutionProvider"),
            Lineage = [Step(1, "prepare", true, 0, 1), Step(2, "sweep", false, 2, 300)],
        };
    }

    [Fact]
    public void MarkdownHasTheSweepSortedByObjectiveAndTheLineageRows()
    {
        var md = RunReportMarkdown.Render(Report("run-md"));

        Assert.Contains("**Outcome:** Promoted — candidate 0.97 beats champion 0.95", md);
        Assert.Contains("| test_accuracy | 0.97 |", md);
        Assert.Contains("| Rank | Trial | State | Objective | Secondary | Budget | Parameters |", md);
        int t2 = md.IndexOf("| 1 | t2 ★ | Succeeded | 0.97 |", StringComparison.Ordinal);
        int t4 = md.IndexOf("| 2 | t4 | Succeeded | 0.95 |", StringComparison.Ordinal);
        int t1 = md.IndexOf("| 3 | t1 | Succeeded | 0.91 |", StringComparison.Ordinal);
        int t3 = md.IndexOf("| 4 | t3 | Failed | - |", StringComparison.Ordinal);
        Assert.True(t2 > 0 && t2 < t4 && t4 < t1 && t1 < t3, md);
        Assert.Contains("arch=mlp, lr=0.01", md);
        Assert.Contains("worker \\| lost", md);
        Assert.Contains("| 1 | prepare | prepare-activity | yes (run run-0) | 0 | 1.0s | Succeeded |  |", md);
        Assert.Contains("| 2 | sweep | sweep-activity | no | 2 | 5m 00s | Succeeded |  |", md);
        Assert.Contains("| Slowest step | sweep (5m 00s) |", md);
        Assert.Contains("| Run | 12m 00s |", md);
    }

    [Fact]
    public async Task WriteRunReportStoresJsonAndMarkdownNextToTheLineage()
    {
        string runId = $"run-{Guid.NewGuid():N}";
        var report = Report(runId);
        var location = await new WriteRunReportActivity(Storage).RunAsync(new WriteRunReportInput(runId, report), Call(ActivityNames.WriteRunReport));

        var runs = azurite.Service.GetBlobContainerClient(PipelineLayout.RunsContainer);
        var json = runs.GetBlobClient($"{runId}/report.json");
        var md = runs.GetBlobClient($"{runId}/report.md");
        Assert.Equal(new RunReportLocation(json.Uri.ToString(), md.Uri.ToString()), location);
        var stored = (await json.DownloadContentAsync()).Value.Content.ToObjectFromJson<PipelineReport>(MlJson.Options)!;
        Assert.Equal((report.RunId, report.Outcome, 4, 2), (stored.RunId, stored.Outcome, stored.Sweep!.Trials.Count, stored.Lineage.Count));
        Assert.Equal(RunReportMarkdown.Render(report), (await md.DownloadContentAsync()).Value.Content.ToString());

        await Assert.ThrowsAsync<ArgumentException>(() =>
            new WriteRunReportActivity(Storage).RunAsync(new WriteRunReportInput("other-run", report), Call(ActivityNames.WriteRunReport)));
    }
}
