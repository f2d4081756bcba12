using System.Globalization;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Pipelines;
using MlFunctions.Serving;

namespace MlFunctions.Activities.Models;

/// <summary>
/// Classifies one test sample through the serving layer in process, exactly as a V2 infer request would reach it:
/// resolve the version in the registry, load (sha256-checked) and run, with raw inputs (pixels, or a row's raw
/// cells) so the server applies the version's stored transform. It proves the registered version is servable,
/// not just that the model is good.
/// </summary>
public sealed class SmokeInferenceActivity(IStorageClients storage, InferenceDataplane dataplane)
    : IActivity<SmokeInferenceInput, SmokeInferenceResult>
{
    public async Task<SmokeInferenceResult> RunAsync(SmokeInferenceInput input, ActivityCall call)
    {
        var ct = call.Cancellation;
        if (input.Version < 1)
            throw new ArgumentException($"SmokeInference needs a registered version (1, 2, ...), not {input.Version}.");
        var reader = new PreparedDatasetReader(await storage.BlobsAsync(ct));
        var manifest = await reader.ReadManifestAsync(input.Data, ct);
        if (Core.Training.TrainingObjectives.Normalize(manifest.Objective) == Core.Training.TrainingObjectives.Ranking)
            return await RecommendAsync(reader, manifest, input, call, ct);
        if (Core.Training.TrainingObjectives.Normalize(manifest.Objective) == Core.Training.TrainingObjectives.Denoise)
            return await DenoiseAsync(reader, manifest, input, call, ct);

        var split = await RawSplit.LoadAsync(reader, input.Data, manifest, input.Split, ct);
        if (input.ImageIndex < 0 || input.ImageIndex >= split.Count)
            throw new ArgumentOutOfRangeException(nameof(input), $"Sample index {input.ImageIndex} is outside split '{input.Split}' (0..{split.Count - 1}).");

        string version = input.Version.ToString(CultureInfo.InvariantCulture);
        string display = $"{input.Model} v{version}";
        var metadata = await dataplane.GetModelMetadataAsync(input.Model, version, ct);
        if (metadata.Parameters.TryGetValue("transform", out var transform) && transform == "none")
            throw new InvalidOperationException(
                $"{display} has no stored transform: raw inputs would reach the model unencoded. Register the version with the dataset's transform.");

        var request = split.Request(input.ImageIndex, 1, metadata.Inputs, display, $"smoke-{call.InstanceId}");
        var response = await dataplane.InferAsync(input.Model, version, request, cancellationToken: ct);
        if (split.IsRegression)
        {
            // A regressor answers a number in the label's units; a non-finite one means the served transform is broken.
            var value = response.Outputs.FirstOrDefault(o => o.Name == Core.Transforms.TargetScaling.PredictionOutput)?.Data is float[] { Length: 1 } p ? p[0]
                : throw new InvalidOperationException($"{display} answered [{string.Join(", ", response.Outputs.Select(o => o.Name))}] without one '{Core.Transforms.TargetScaling.PredictionOutput}'");
            if (!float.IsFinite(value))
                throw new InvalidOperationException($"{display} predicted {value} for test row {input.ImageIndex}");
            string ep0 = metadata.Parameters.TryGetValue("execution_provider", out var e0) ? e0 : "unknown";
            return new SmokeInferenceResult(input.ImageIndex, 0, 0, 0, input.Version, ep0) { Prediction = value, Target = split.Target(input.ImageIndex) };
        }

        var (predicted, confidence, _) = ClassificationMetrics.Softmax((float[])ModelIo.Logits(response.Outputs, display).Data);
        string provider = metadata.Parameters.TryGetValue("execution_provider", out var ep) ? ep : "unknown";
        return new SmokeInferenceResult(input.ImageIndex, split.Label(input.ImageIndex), predicted, confidence, input.Version, provider);
    }

    /// <summary>
    /// A CT denoiser's smoke test (#14): one low-dose test slice in (FP32 [1, 1, H, W] HU), the served slice out, scored
    /// against its full-dose slice. Label and prediction are 0 (no classes); <c>Confidence</c> carries that slice's PSNR
    /// in dB, and the step fails when the served slice does not have the request's size or scores no PSNR.
    /// </summary>
    private async Task<SmokeInferenceResult> DenoiseAsync(PreparedDatasetReader reader, Core.Datasets.PreparedDatasetManifest manifest, SmokeInferenceInput input, ActivityCall call, CancellationToken ct)
    {
        var scale = manifest.Transform.Ct?.HuScale ?? Core.Imaging.CtPatches.DefaultHuScale;
        var test = Core.Imaging.CtPreparation.Pairs(await reader.ReadSplitAsync(input.Data, manifest, input.Split, ct), input.Split, scale);
        if (input.ImageIndex < 0 || input.ImageIndex >= test.Count)
            throw new ArgumentOutOfRangeException(nameof(input), $"Slice index {input.ImageIndex} is outside split '{input.Split}' (0..{test.Count - 1}).");
        var low = test[input.ImageIndex].Low;
        string version = input.Version.ToString(CultureInfo.InvariantCulture);
        var request = new Serving.Protocol.InferRequest
        {
            Id = $"smoke-{call.InstanceId}",
            Inputs = [new("input", Serving.Protocol.Datatype.FP32, [1, 1, low.Height, low.Width], (float[])low.Pixels.Clone())],
        };
        var response = await dataplane.InferAsync(input.Model, version, request, cancellationToken: ct);
        var output = response.Outputs.First(o => o.Name == "denoised");
        if (!output.Shape.SequenceEqual(new long[] { 1, 1, low.Height, low.Width }))
            throw new InvalidOperationException($"{input.Model} v{version} answered a [1,1,{low.Height},{low.Width}] slice with [{string.Join(",", output.Shape)}]");
        var psnr = Core.Imaging.CtEvaluation.Score(new Core.Imaging.HuImage(low.Width, low.Height, (float[])output.Data), test[input.ImageIndex].Full).Psnr;
        if (!double.IsFinite(psnr))
            throw new InvalidOperationException($"{input.Model} v{version}'s served slice scores no finite PSNR");
        var metadata = await dataplane.GetModelMetadataAsync(input.Model, version, ct);
        string provider = metadata.Parameters.TryGetValue("execution_provider", out var ep) ? ep : "unknown";
        return new SmokeInferenceResult(input.ImageIndex, 0, 0, psnr, input.Version, provider);
    }

    /// <summary>A recommender's smoke test: one held-out user's raw id in, the served top 10 out (label = the held-out item, predicted = the top item).</summary>
    private async Task<SmokeInferenceResult> RecommendAsync(PreparedDatasetReader reader, Core.Datasets.PreparedDatasetManifest manifest, SmokeInferenceInput input, ActivityCall call, CancellationToken ct)
    {
        var shard = await reader.ReadSplitAsync(input.Data, manifest, input.Split, ct);
        if (input.ImageIndex < 0 || input.ImageIndex >= shard.Count)
            throw new ArgumentOutOfRangeException(nameof(input), $"Sample index {input.ImageIndex} is outside split '{input.Split}' (0..{shard.Count - 1}).");
        var ids = manifest.Transform.Interactions!;
        var user = ids.Users[(int)shard.FloatFeatures![3 * input.ImageIndex]];
        string version = input.Version.ToString(CultureInfo.InvariantCulture);
        var request = new Serving.Protocol.InferRequest
        {
            Id = $"smoke-{call.InstanceId}",
            Inputs = [new("user", Serving.Protocol.Datatype.BYTES, [1], new[] { user }), new("k", Serving.Protocol.Datatype.INT64, [1], new long[] { 10 })],
        };
        var response = await dataplane.InferAsync(input.Model, version, request, cancellationToken: ct);
        var top = ((string[])response.Outputs.First(o => o.Name == "items").Data)[0];
        var score = ((float[])response.Outputs.First(o => o.Name == "scores").Data)[0];
        var metadata = await dataplane.GetModelMetadataAsync(input.Model, version, ct);
        string provider = metadata.Parameters.TryGetValue("execution_provider", out var ep) ? ep : "unknown";
        return new SmokeInferenceResult(input.ImageIndex, shard.Labels[input.ImageIndex], ids.ItemMap().TryIndex(top, out var i) ? i : -1, score, input.Version, provider);
    }
}
