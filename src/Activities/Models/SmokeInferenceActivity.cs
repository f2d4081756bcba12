using System.Globalization;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Pipelines;
using MlFunctions.Serving;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Activities.Models;

/// <summary>
/// Classifies one test image through the serving layer in process, exactly as a V2 infer request would reach it:
/// resolve the version in the registry, load (sha256-checked) and run, with raw pixels so the server applies the
/// version's stored transform. It proves the registered version is servable, not just that the model is good.
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
        var shard = await reader.ReadSplitAsync(input.Data, input.Split, ct);
        if (input.ImageIndex < 0 || input.ImageIndex >= shard.Count)
            throw new ArgumentOutOfRangeException(nameof(input), $"Image index {input.ImageIndex} is outside split '{input.Split}' (0..{shard.Count - 1}).");

        string version = input.Version.ToString(CultureInfo.InvariantCulture);
        string display = $"{input.Model} v{version}";
        var metadata = await dataplane.GetModelMetadataAsync(input.Model, version, ct);
        if (metadata.Parameters.TryGetValue("transform", out var transform) && transform == "none")
            throw new InvalidOperationException(
                $"{display} has no stored transform: raw pixels would reach the model unnormalized. Register the version with the dataset's transform.");
        var pixels = ModelIo.PixelInput(metadata.Inputs, null, display);
        var logitsMeta = ModelIo.Logits(metadata.Outputs, display);

        int size = shard.SampleSize;
        var data = new float[size];
        var raw = shard.Features.AsSpan(input.ImageIndex * size, size);
        for (int i = 0; i < size; i++)
            data[i] = raw[i];
        var request = new InferRequest
        {
            Id = $"smoke-{call.InstanceId}",
            Inputs = [new InferTensor(pixels.Name, Datatype.FP32, ModelIo.BatchShape(pixels, shard.SampleShape, 1, display), data)],
            Outputs = [new InferRequestedOutput(logitsMeta.Name)],
        };
        var response = await dataplane.InferAsync(input.Model, version, request, cancellationToken: ct);
        var logits = (float[])response.Outputs.Single(o => o.Name == logitsMeta.Name).Data;
        var (predicted, confidence, _) = ModelIo.Softmax(logits);
        string provider = metadata.Parameters.TryGetValue("execution_provider", out var ep) ? ep : "unknown";
        return new SmokeInferenceResult(input.ImageIndex, shard.Labels[input.ImageIndex], predicted, confidence, input.Version, provider);
    }
}
