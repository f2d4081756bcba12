using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;

namespace MlFunctions.Serving;

/// <summary>Reads model artifacts by the URI recorded in the registry.</summary>
public interface IArtifactStore
{
    /// <summary>The artifact's bytes; throws <see cref="FileNotFoundException"/> when it does not exist.</summary>
    Task<byte[]> ReadAsync(string artifactUri, CancellationToken cancellationToken = default);
}

public static class ArtifactStoreExtensions
{
    /// <summary>
    /// The artifact's bytes, after checking they hash to <paramref name="expectedSha256"/>: the one integrity
    /// check that serving (before ONNX Runtime sees a byte) and the pipeline's model activities share.
    /// </summary>
    /// <exception cref="ModelIntegrityException">The bytes hash to something else.</exception>
    public static async Task<byte[]> ReadVerifiedAsync(this IArtifactStore store, string artifactUri, string expectedSha256, CancellationToken cancellationToken = default)
    {
        var bytes = await store.ReadAsync(artifactUri, cancellationToken).ConfigureAwait(false);
        string actual = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (!string.Equals(actual, expectedSha256, StringComparison.OrdinalIgnoreCase))
            throw new ModelIntegrityException($"sha256 mismatch: artifact '{artifactUri}' hashes to {actual}, expected {expectedSha256}.") { Actual = actual };
        return bytes;
    }
}

/// <summary>
/// Artifacts in Azure Blob Storage. A URI is either an absolute blob URL (https://account/container/path, or
/// Azurite's http://host:port/account/container/path) read with this client's credentials, or
/// <c>container/path</c> relative to this storage account, the form the training worker writes.
/// </summary>
public sealed class BlobArtifactStore(BlobServiceClient service) : IArtifactStore
{
    public async Task<byte[]> ReadAsync(string artifactUri, CancellationToken cancellationToken = default)
    {
        var (container, blob) = Locate(artifactUri);
        try
        {
            var result = await service.GetBlobContainerClient(container).GetBlobClient(blob).DownloadContentAsync(cancellationToken).ConfigureAwait(false);
            return result.Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new FileNotFoundException($"Artifact '{artifactUri}' does not exist.", artifactUri, e);
        }
    }

    private (string Container, string Blob) Locate(string uri)
    {
        if (Uri.TryCreate(uri, UriKind.Absolute, out var abs) && (abs.Scheme == Uri.UriSchemeHttp || abs.Scheme == Uri.UriSchemeHttps))
        {
            // BlobUriBuilder knows both the Azure host-per-account and Azurite's path-per-account forms.
            var b = new BlobUriBuilder(abs);
            return (b.BlobContainerName, b.BlobName);
        }
        var trimmed = uri.StartsWith("blob://", StringComparison.OrdinalIgnoreCase) ? uri[7..] : uri.TrimStart('/');
        int slash = trimmed.IndexOf('/');
        if (slash <= 0 || slash == trimmed.Length - 1)
            throw new ArgumentException($"Artifact URI '{uri}' is neither a blob URL nor 'container/path'.");
        return (trimmed[..slash], trimmed[(slash + 1)..]);
    }
}

/// <summary>Artifacts on the local file system (file:// URIs or paths): for development and tests.</summary>
public sealed class FileArtifactStore : IArtifactStore
{
    public Task<byte[]> ReadAsync(string artifactUri, CancellationToken cancellationToken = default)
    {
        var path = Uri.TryCreate(artifactUri, UriKind.Absolute, out var u) && u.IsFile ? u.LocalPath : artifactUri;
        return File.ReadAllBytesAsync(path, cancellationToken);
    }
}
