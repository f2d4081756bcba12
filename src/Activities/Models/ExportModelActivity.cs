using Azure;
using Azure.Storage.Blobs.Models;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Training;
using MlFunctions.Serving;

namespace MlFunctions.Activities.Models;

/// <summary>
/// Copies the worker's ONNX export into the model store under its content hash and reads its signature.
/// </summary>
/// <remarks>
/// The worker writes under its job id, next to checkpoints that retention may delete; a registry version must
/// point at bytes that never change or vanish, so the copy is named by sha256 (<see cref="ArtifactBlob"/>).
/// A retry finds the blob with the same hash and skips the upload: same name, same bytes, same result.
/// </remarks>
public sealed class ExportModelActivity(IStorageClients storage, IArtifactStore artifacts, ISessionFactory sessions)
    : IActivity<ExportModelInput, ExportModelResult>
{
    public const string Sha256Metadata = "sha256";

    /// <summary>The immutable, content-addressed name of a model's artifact in the <c>models</c> container.</summary>
    public static string ArtifactBlob(string model, string sha256) => $"artifacts/{model}/{sha256}.onnx";

    public async Task<ExportModelResult> RunAsync(ExportModelInput input, ActivityCall call)
    {
        var ct = call.Cancellation;
        RegistryNames.Validate(input.Model, "model");
        if (string.IsNullOrWhiteSpace(input.OnnxUri))
            throw new ArgumentException("ExportModel needs the worker's ONNX URI.");
        if (input.OnnxSha256 is not { Length: 64 } || !input.OnnxSha256.All(char.IsAsciiHexDigit))
            throw new ArgumentException($"ExportModel needs the ONNX artifact's sha256 as 64 hex digits, not '{input.OnnxSha256}'.");
        string sha = input.OnnxSha256.ToLowerInvariant();

        // Verify before copying: a mismatched artifact must never get a content-addressed name it does not have.
        var bytes = await artifacts.ReadVerifiedAsync(input.OnnxUri, sha, ct);
        ModelSignature signature;
        using (var handle = await Task.Run(() => sessions.Create(bytes, $"{input.Model} export {sha[..12]}"), ct))
            signature = OnnxSignature.Read(handle.Session);

        var container = (await storage.BlobsAsync(ct)).GetBlobContainerClient(TrainingStorage.ModelsContainer);
        await container.CreateIfNotExistsAsync(cancellationToken: ct);
        var blob = container.GetBlobClient(ArtifactBlob(input.Model, sha));
        bool present;
        try
        {
            var props = (await blob.GetPropertiesAsync(cancellationToken: ct)).Value;
            present = props.ContentLength == bytes.LongLength
                && props.Metadata.TryGetValue(Sha256Metadata, out var stored) && stored == sha;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            present = false;
        }

        if (!present)
        {
            // Overwrite is safe: whatever is there under this name is either these bytes or a broken earlier copy.
            await blob.UploadAsync(new BinaryData(bytes), new BlobUploadOptions
            {
                Metadata = new Dictionary<string, string> { [Sha256Metadata] = sha },
                HttpHeaders = new BlobHttpHeaders { ContentType = "application/octet-stream" },
            }, ct);
        }

        return new ExportModelResult(blob.Uri.ToString(), sha, signature, bytes.LongLength);
    }
}
