using Azure.Storage.Blobs;

namespace MlFunctions.Tests.Infrastructure;

/// <summary>Files put into the <c>uploads</c> container under one prefix, as a user's upload would be, for the pipeline end-to-end tests.</summary>
public static class TestUploads
{
    public static Task<string> PutAsync(string prefix, params (string Name, string Content)[] files) =>
        PutAsync(prefix, files.Select(f => (f.Name, BinaryData.FromString(f.Content))).ToArray());

    public static Task<string> PutAsync(string prefix, params (string Name, byte[] Content)[] files) =>
        PutAsync(prefix, files.Select(f => (f.Name, BinaryData.FromBytes(f.Content))).ToArray());

    private static async Task<string> PutAsync(string prefix, (string Name, BinaryData Content)[] files)
    {
        var container = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient("uploads");
        await container.CreateIfNotExistsAsync();
        foreach (var (name, content) in files)
            await container.GetBlobClient($"{prefix}/{name}").UploadAsync(content, overwrite: true);
        return prefix;
    }
}
