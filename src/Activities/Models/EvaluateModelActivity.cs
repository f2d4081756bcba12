using Microsoft.ML.OnnxRuntime;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Pipelines;
using MlFunctions.Serving;

namespace MlFunctions.Activities.Models;

/// <summary>
/// Scores an ONNX model on one prepared split with ONNX Runtime: the same bytes (sha256-checked) and the same
/// session factory (CUDA, else CPU) serving will use, and the dataset's stored transform, so the number the
/// promotion gate compares is what serving would achieve. Read-only, so retries are harmless.
/// </summary>
public sealed class EvaluateModelActivity(IStorageClients storage, IArtifactStore artifacts, ISessionFactory sessions)
    : IActivity<EvaluateModelInput, EvaluateModelResult>
{
    /// <summary>Samples per ORT call: large enough to amortize the call, small enough to keep memory flat.</summary>
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
        var shard = await reader.ReadSplitAsync(input.Data, manifest, input.Split, ct);
        var bytes = await artifacts.ReadVerifiedAsync(input.OnnxUri, input.OnnxSha256, ct);
        using var handle = await Task.Run(() => sessions.Create(bytes, input.OnnxUri), ct);

        string display = input.OnnxUri;
        var session = handle.Session;
        var pixels = ModelIo.PixelInput(OnnxSignature.Inputs(session), manifest.Transform.Input, display);
        var logitsMeta = ModelIo.Logits(OnnxSignature.Outputs(session), display);
        int classes = manifest.NumClasses;
        int total = input.MaxSamples > 0 ? Math.Min(input.MaxSamples, shard.Count) : shard.Count;
        if (total == 0)
            throw new InvalidOperationException($"Split '{input.Split}' of {input.Data.Container}/{input.Data.Prefix} is empty: there is nothing to evaluate.");
        int batch = pixels.Shape[0] > 0 ? (int)pixels.Shape[0] : BatchSize;

        int size = shard.SampleSize, correct = 0;
        double lossSum = 0;
        var perClassCorrect = new int[classes];
        var perClassTotal = new int[classes];
        using var runOptions = new RunOptions();
        for (int start = 0; start < total; start += batch)
        {
            ct.ThrowIfCancellationRequested();
            int rows = Math.Min(batch, total - start);
            var data = new float[rows * size];
            var raw = shard.Features.AsSpan(start * size, rows * size);
            for (int i = 0; i < data.Length; i++)
                data[i] = raw[i];
            manifest.Transform.Apply(data);

            using var value = OrtValue.CreateTensorValueFromMemory(data, ModelIo.BatchShape(pixels, shard.SampleShape, rows, display));
            using var results = session.Run(runOptions, [pixels.Name], [value], [logitsMeta.Name]);
            var logits = results[0].GetTensorDataAsSpan<float>();
            if (logits.Length != rows * classes)
                throw new InvalidOperationException(
                    $"Model {display} returned {logits.Length} logits for {rows} samples; the dataset has {classes} classes, so {rows * classes} were expected.");
            for (int r = 0; r < rows; r++)
            {
                int label = shard.Labels[start + r];
                if (label < 0 || label >= classes)
                    throw new InvalidDataException($"Sample {start + r} of split '{input.Split}' has label {label}, outside 0..{classes - 1}.");
                var (predicted, _, logSumExp) = ModelIo.Softmax(logits.Slice(r * classes, classes));
                lossSum += logSumExp - logits[(r * classes) + label]; // -log softmax(label)
                perClassTotal[label]++;
                if (predicted == label)
                {
                    correct++;
                    perClassCorrect[label]++;
                }
            }
        }

        return new EvaluateModelResult(
            (double)correct / total,
            lossSum / total,
            total,
            perClassCorrect.Select((c, k) => perClassTotal[k] == 0 ? 0.0 : (double)c / perClassTotal[k]).ToList(),
            handle.Provider)
        {
            PerClassSamples = perClassTotal,
        };
    }
}
