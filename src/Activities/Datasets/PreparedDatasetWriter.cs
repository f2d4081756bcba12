using System.Security.Cryptography;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Activities.Datasets;

/// <summary>
/// Writes prepared splits and their manifest in the layout <see cref="PreparedDatasetReader"/> reads:
/// shards first, the manifest last and create-only, so a reader never sees a manifest whose shards are
/// not all there, and two writers of the same prefix agree on one manifest.
/// </summary>
public static class PreparedDatasetWriter
{
    public static async Task<(PreparedDatasetManifest Manifest, bool Created)> WriteAsync(
        BlobContainerClient container,
        string prefix,
        DatasetRef source,
        PreparationRecipe recipe,
        string recipeHash,
        TransformSpec transform,
        int numClasses,
        IReadOnlyDictionary<string, PreparedShard> splits,
        CancellationToken ct,
        string? objective = null)
    {
        var written = new List<PreparedSplit>();
        foreach (var (name, shard) in splits)
        {
            using var buffer = new MemoryStream();
            shard.WriteTo(buffer);
            var sha = Convert.ToHexStringLower(SHA256.HashData(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)));
            buffer.Position = 0;
            var blobName = PreparedLayout.ShardBlob(prefix, name);

            // Overwrite: a crashed earlier attempt may have left this shard; the recipe is deterministic, so
            // the bytes are the same, and the manifest (written below) names their hash.
            await container.GetBlobClient(blobName).UploadAsync(
                buffer,
                new BlobUploadOptions { Metadata = new Dictionary<string, string> { ["sha256"] = sha } },
                ct);
            written.Add(new PreparedSplit(name, blobName, shard.Count, buffer.Length, sha, ShardOps.ClassCounts(shard)));
        }

        var manifest = new PreparedDatasetManifest
        {
            Source = source,
            Recipe = recipe,
            RecipeHash = recipeHash,
            Transform = transform,
            SampleShape = splits[PreparedLayout.Train].SampleShape,
            NumClasses = numClasses,
            Objective = objective,
            Splits = written,
            ContentHash = PreparedLayout.ContentHash(written, transform),
        };
        var manifestBlob = container.GetBlobClient(PreparedLayout.ManifestBlob(prefix));
        if (await DatasetBlobs.CreateJsonAsync(manifestBlob, manifest, ct))
        {
            return (manifest, true);
        }

        var winner = await DatasetBlobs.ReadJsonAsync<PreparedDatasetManifest>(manifestBlob, ct)
            ?? throw new InvalidOperationException($"{manifestBlob.Name} was reported as existing but cannot be read");
        return (winner, false);
    }
}
