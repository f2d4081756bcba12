using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Pipelines;
using MlFunctions.Serving;

namespace MlFunctions.Activities.Models;

/// <summary>
/// Scores an ONNX model on one prepared split through the serving path (<see cref="ModelScorer"/>): the split's raw
/// inputs go in as a V2 request would carry them, and the model's own transform (the candidate's from the data it
/// was trained on, a champion's from its registry record) is applied by serving, so the number the promotion gate
/// compares is what serving would achieve. Read-only, so retries are harmless.
/// </summary>
public sealed class EvaluateModelActivity(IStorageClients storage, IArtifactStore artifacts, ISessionFactory sessions)
    : IActivity<EvaluateModelInput, EvaluateModelResult>
{
    /// <summary>Samples per request: large enough to amortize the call, small enough to keep memory flat.</summary>
    public const int BatchSize = 256;

    public async Task<EvaluateModelResult> RunAsync(EvaluateModelInput input, ActivityCall call)
    {
        var ct = call.Cancellation;
        if (string.IsNullOrWhiteSpace(input.OnnxUri) || string.IsNullOrWhiteSpace(input.OnnxSha256))
            throw new ArgumentException("EvaluateModel needs the ONNX artifact's URI and sha256.");
        if (input.MaxSamples < 0)
            throw new ArgumentException($"maxSamples must be 0 (all) or positive, not {input.MaxSamples}.");

        var reader = new PreparedDatasetReader(await storage.BlobsAsync(ct));
        var manifest = await reader.ReadManifestAsync(input.Data, ct);
        if (Core.Training.TrainingObjectives.Normalize(manifest.Objective) == Core.Training.TrainingObjectives.Ranking)
        {
            await using var recommender = await ModelScorer.LoadAsync(artifacts, sessions, input.OnnxUri, input.OnnxSha256, input.Transform ?? manifest.Transform, ct);
            return await EvaluateRanking.RunAsync(reader, manifest, input, recommender, ct);
        }

        if (Core.Training.TrainingObjectives.Normalize(manifest.Objective) == Core.Training.TrainingObjectives.Denoise)
        {
            await using var denoiser = await ModelScorer.LoadAsync(artifacts, sessions, input.OnnxUri, input.OnnxSha256, input.Transform ?? manifest.Transform, ct);
            return await EvaluateDenoise.RunAsync(reader, manifest, input, denoiser, ct, await storage.BlobsAsync(ct));
        }

        var split = await RawSplit.LoadAsync(reader, input.Data, manifest, input.Split, ct);
        await using var scorer = await ModelScorer.LoadAsync(artifacts, sessions, input.OnnxUri, input.OnnxSha256, input.Transform ?? manifest.Transform, ct);

        int total = input.MaxSamples > 0 ? Math.Min(input.MaxSamples, split.Count) : split.Count;
        if (total == 0)
            throw new InvalidOperationException($"Split '{input.Split}' of {input.Data.Container}/{input.Data.Prefix} is empty: there is nothing to evaluate.");
        int batch = ModelIo.FixedBatch(scorer.Inputs) ?? BatchSize;
        if (split.IsRegression)
            return await RegressionAsync(split, scorer, total, batch, input, call);

        var metrics = new ClassificationMetrics(manifest.NumClasses);
        for (int start = 0; start < total; start += batch)
        {
            ct.ThrowIfCancellationRequested();
            int rows = Math.Min(batch, total - start);
            var request = split.Request(start, rows, scorer.Inputs, input.OnnxUri, $"evaluate-{call.InstanceId}-{start}");
            var outputs = await scorer.PredictAsync(request, ct);
            var logits = (float[])ModelIo.Logits(outputs, input.OnnxUri).Data;
            if (logits.Length != rows * metrics.Classes)
                throw new InvalidOperationException(
                    $"Model {input.OnnxUri} returned {logits.Length} logits for {rows} samples; the dataset has {metrics.Classes} classes, so {rows * metrics.Classes} were expected.");
            for (int r = 0; r < rows; r++)
                metrics.Add(logits.AsSpan(r * metrics.Classes, metrics.Classes), split.Label(start + r));
        }

        return new EvaluateModelResult(metrics.Accuracy, metrics.Loss, total, metrics.PerClassAccuracy, scorer.Provider)
        {
            PerClassSamples = metrics.PerClassSamples,
            Metrics = metrics.ToDictionary(),
        };
    }

    /// <summary>
    /// A regressor: each test row's raw fields through serving, whose answer is the prediction in the label's units (the
    /// stored target scaling undone there), scored against the row's target: rmse, mae, r2 and loss (MSE), label units.
    /// Accuracy and per-class accuracy do not apply (0 and empty).
    /// </summary>
    private static async Task<EvaluateModelResult> RegressionAsync(RawSplit split, ModelScorer scorer, int total, int batch, EvaluateModelInput input, ActivityCall call)
    {
        var metrics = new RegressionMetrics();
        for (int start = 0; start < total; start += batch)
        {
            call.Cancellation.ThrowIfCancellationRequested();
            int rows = Math.Min(batch, total - start);
            var request = split.Request(start, rows, scorer.Inputs, input.OnnxUri, $"evaluate-{call.InstanceId}-{start}");
            var outputs = await scorer.PredictAsync(request, call.Cancellation);
            var prediction = outputs.FirstOrDefault(o => o.Name == Core.Transforms.TargetScaling.PredictionOutput)?.Data as float[]
                ?? throw new InvalidOperationException($"Model {input.OnnxUri} answered [{string.Join(", ", outputs.Select(o => o.Name))}] without '{Core.Transforms.TargetScaling.PredictionOutput}'; is its transform a regression one?");
            if (prediction.Length != rows)
                throw new InvalidOperationException($"Model {input.OnnxUri} returned {prediction.Length} predictions for {rows} rows.");
            for (int r = 0; r < rows; r++)
                metrics.Add(prediction[r], split.Target(start + r));
        }

        return new EvaluateModelResult(0, metrics.Mse, total, [], scorer.Provider) { Metrics = metrics.ToDictionary() };
    }
}
