using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace MlFunctions.Local.Storage;

/// <summary>
/// The storage account of the local host: <c>AzureWebJobsStorage</c> when it is set (the same setting
/// Functions reads: Azurite elsewhere, or a real account), else an Azurite child process with its data
/// under the host's data folder, stopped when the host stops.
/// </summary>
public sealed class LocalStorage(IConfiguration configuration, LocalPaths paths, ILogger<LocalStorage> logger) : IAsyncDisposable
{
    private readonly SemaphoreSlim gate = new(1, 1);
    private Azurite? azurite;
    private string? connectionString;

    public bool UsesOwnAzurite => azurite is not null;

    public async Task<string> GetConnectionStringAsync(CancellationToken cancellation = default)
    {
        if (connectionString is not null)
        {
            return connectionString;
        }

        await gate.WaitAsync(cancellation);
        try
        {
            if (connectionString is null)
            {
                var configured = configuration["AzureWebJobsStorage"];
                if (!string.IsNullOrWhiteSpace(configured) && configured != "UseDevelopmentStorage=true")
                {
                    connectionString = configured;
                }
                else
                {
                    azurite = await Azurite.StartAsync(Path.Combine(paths.DataPath, "azurite"), logger, cancellation);
                    connectionString = azurite.ConnectionString;
                }
            }

            return connectionString;
        }
        finally
        {
            gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (azurite is not null)
        {
            await azurite.DisposeAsync();
        }
    }
}

/// <summary>The local host's data folder (<c>Local:DataPath</c>, default ./.data under the working directory).</summary>
public sealed class LocalPaths(IConfiguration configuration)
{
    public string DataPath { get; } = Path.GetFullPath(configuration["Local:DataPath"] ?? Path.Combine(Directory.GetCurrentDirectory(), ".data"));
}
