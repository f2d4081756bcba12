using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Training;

namespace MlFunctions.Activities.Datasets;

/// <summary>
/// Loads prepared data for training: the manifest a <see cref="PreparedDataRef"/> points at and the
/// split shards, each checked against the sha256 in the manifest, so a model is never trained on bytes
/// other than the ones the manifest (and its transform) describe.
/// </summary>
public sealed class PreparedDatasetReader(BlobServiceClient blobs)
{
    public async Task<PreparedDatasetManifest> ReadManifestAsync(PreparedDataRef data, CancellationToken ct = default)
    {
        var blob = blobs.GetBlobContainerClient(data.Container).GetBlobClient(PreparedLayout.ManifestBlob(data.Prefix));
        var manifest = await DatasetBlobs.ReadJsonAsync<PreparedDatasetManifest>(blob, ct)
            ?? throw new InvalidOperationException($"prepared data {data.Container}/{PreparedLayout.ManifestBlob(data.Prefix)} does not exist; run TransformDataset first");
        if (manifest.SchemaVersion is < 1 or > PreparedDatasetManifest.CurrentSchemaVersion)
        {
            throw new InvalidDataException($"prepared manifest schema {manifest.SchemaVersion} is not supported (this build reads 1..{PreparedDatasetManifest.CurrentSchemaVersion})");
        }

        if (!string.IsNullOrEmpty(data.ContentHash) && manifest.ContentHash != data.ContentHash)
        {
            throw new InvalidDataException($"prepared data at {data.Container}/{data.Prefix} has content hash {manifest.ContentHash}, the job expected {data.ContentHash}");
        }

        return manifest;
    }

    /// <summary>A tabular split's raw rows (see <see cref="PreparedLayout.RawRowsBlob"/>); null for image datasets, which keep raw bytes in the shards.</summary>
    public async Task<RawRows?> ReadRawRowsAsync(PreparedDataRef data, string split, CancellationToken ct = default) =>
        await DatasetBlobs.ReadJsonAsync<RawRows>(blobs.GetBlobContainerClient(data.Container).GetBlobClient(PreparedLayout.RawRowsBlob(data.Prefix, split)), ct);

    /// <summary>One split ("train", "val", "test"), loaded whole and verified.</summary>
    public async Task<PreparedShard> ReadSplitAsync(PreparedDataRef data, string split, CancellationToken ct = default) =>
        await ReadSplitAsync(data, await ReadManifestAsync(data, ct), split, ct);

    public async Task<PreparedShard> ReadSplitAsync(PreparedDataRef data, PreparedDatasetManifest manifest, string split, CancellationToken ct = default)
    {
        var info = manifest.Split(split);
        var blob = blobs.GetBlobContainerClient(data.Container).GetBlobClient(info.Blob);
        BinaryData content;
        try
        {
            content = (await blob.DownloadContentAsync(ct)).Value.Content;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new InvalidDataException($"prepared split {data.Container}/{info.Blob} is missing although the manifest lists it", e);
        }

        var bytes = content.ToMemory();
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes.Span));
        if (sha != info.Sha256)
        {
            throw new InvalidDataException($"prepared split {data.Container}/{info.Blob} has sha256 {sha}, the manifest says {info.Sha256}; the blob was changed or corrupted, prepare the data again");
        }

        using var stream = content.ToStream();
        var shard = PreparedShard.ReadFrom(stream);
        if (shard.Count != info.Count)
        {
            throw new InvalidDataException($"prepared split {info.Blob} holds {shard.Count} samples, the manifest says {info.Count}");
        }

        return shard;
    }
}
