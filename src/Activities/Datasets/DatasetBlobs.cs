using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;

namespace MlFunctions.Activities.Datasets;

/// <summary>Small blob helpers shared by the dataset and pipeline activities: hashing uploads, JSON documents, create-once writes.</summary>
internal static class DatasetBlobs
{
    /// <summary>sha256 (hex) and length of a stream; see <see cref="DatasetLayout.HashFileAsync"/>.</summary>
    public static Task<(string Sha256, long Bytes)> HashAsync(Stream stream, CancellationToken ct) => DatasetLayout.HashFileAsync(stream, ct);

    public static async Task<T?> ReadJsonAsync<T>(BlobClient blob, CancellationToken ct)
        where T : class
    {
        try
        {
            var content = await blob.DownloadContentAsync(ct);
            return content.Value.Content.ToObjectFromJson<T>(MlJson.Options);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    public static Task WriteJsonAsync<T>(BlobClient blob, T value, CancellationToken ct) =>
        blob.UploadAsync(BinaryData.FromObjectAsJson(value, MlJson.Options), new BlobUploadOptions { HttpHeaders = new BlobHttpHeaders { ContentType = "application/json" } }, ct);

    /// <summary>
    /// Writes a manifest only if none exists (<c>If-None-Match: *</c>). Returns false when another run
    /// got there first: the manifest is the commit point, so the first complete one wins and is never changed.
    /// </summary>
    public static async Task<bool> CreateJsonAsync<T>(BlobClient blob, T value, CancellationToken ct)
    {
        try
        {
            await blob.UploadAsync(
                BinaryData.FromObjectAsJson(value, MlJson.Options),
                new BlobUploadOptions
                {
                    HttpHeaders = new BlobHttpHeaders { ContentType = "application/json" },
                    Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
                },
                ct);
            return true;
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            return false;
        }
    }

    public static async Task<BlobContainerClient> ContainerAsync(BlobServiceClient service, string name, CancellationToken ct)
    {
        var container = service.GetBlobContainerClient(name);
        await container.CreateIfNotExistsAsync(cancellationToken: ct);
        return container;
    }

}
