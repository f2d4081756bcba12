using Azure.Storage.Blobs;
using Azure.Storage.Queues;

namespace MlFunctions.Activities.Storage;

/// <summary>
/// The storage account activities write to (datasets, checkpoints, models, the training queue). Each
/// host says where it is: Functions from <c>AzureWebJobsStorage</c>, the local host from its own
/// storage (which may be an Azurite it started itself, so the connection string is only known after
/// start: hence async).
/// </summary>
public interface IStorageClients
{
    Task<BlobServiceClient> BlobsAsync(CancellationToken cancellation = default);

    Task<QueueServiceClient> QueuesAsync(CancellationToken cancellation = default);
}

/// <summary>Clients from a connection string that is known (or found) once, then cached.</summary>
public sealed class ConnectionStringStorageClients(Func<CancellationToken, Task<string>> connectionString) : IStorageClients
{
    private readonly Lazy<Task<(BlobServiceClient Blobs, QueueServiceClient Queues)>> clients = new(async () =>
    {
        var cs = await connectionString(CancellationToken.None);

        // Base64 message encoding: what DTFx, Functions' queue triggers and KEDA's queue scaler expect.
        return (new BlobServiceClient(cs), new QueueServiceClient(cs, new QueueClientOptions { MessageEncoding = QueueMessageEncoding.Base64 }));
    });

    public async Task<BlobServiceClient> BlobsAsync(CancellationToken cancellation = default) => (await clients.Value).Blobs;

    public async Task<QueueServiceClient> QueuesAsync(CancellationToken cancellation = default) => (await clients.Value).Queues;
}
