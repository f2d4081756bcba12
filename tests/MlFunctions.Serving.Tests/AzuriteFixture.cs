using Azure.Storage.Blobs;
using MlFunctions.Tests.Infrastructure;

namespace MlFunctions.Serving.Tests;

/// <summary>
/// Blob storage for registry tests: the shared test storage (<see cref="TestStorage"/>: CI's Azurite from
/// <c>MLF_TEST_STORAGE</c>, else one Azurite per test run). Missing Azurite is a failure, never a skip: these
/// tests are the only proof that ETag concurrency works against real blob semantics.
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public string ConnectionString { get; private set; } = "";

    public BlobServiceClient Service => new(ConnectionString);

    /// <summary>A fresh container per call, so tests and runs never see each other's blobs.</summary>
    public async Task<BlobContainerClient> NewContainerAsync(string prefix = "models")
    {
        var container = Service.GetBlobContainerClient($"{prefix}-{Guid.NewGuid():N}"[..Math.Min(63, prefix.Length + 33)]);
        await container.CreateIfNotExistsAsync();
        return container;
    }

    public async Task InitializeAsync() => ConnectionString = await TestStorage.ConnectionStringAsync();

    public Task DisposeAsync() => Task.CompletedTask;
}

[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "azurite";
}
