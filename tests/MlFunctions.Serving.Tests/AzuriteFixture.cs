using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Storage.Blobs;

namespace MlFunctions.Serving.Tests;

/// <summary>
/// Blob storage for registry tests. Uses <c>MLF_TEST_STORAGE</c> (a connection string) when set; otherwise starts
/// Azurite from <c>MLF_AZURITE_JS</c> or the repo's <c>tools/azurite/node_modules/azurite/dist/src/azurite.js</c>
/// on free loopback ports with a temporary location. Missing Azurite is a failure, never a skip: these tests are
/// the only proof that ETag concurrency works against real blob semantics.
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    private const string DevKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    private Process? _process;
    private string? _location;
    private readonly System.Text.StringBuilder _output = new();

    public string ConnectionString { get; private set; } = "";

    public BlobServiceClient Service => new(ConnectionString);

    /// <summary>A fresh container per call, so tests and runs never see each other's blobs.</summary>
    public async Task<BlobContainerClient> NewContainerAsync(string prefix = "models")
    {
        var container = Service.GetBlobContainerClient($"{prefix}-{Guid.NewGuid():N}"[..Math.Min(63, prefix.Length + 33)]);
        await container.CreateIfNotExistsAsync();
        return container;
    }

    public async Task InitializeAsync()
    {
        var fromEnv = Environment.GetEnvironmentVariable("MLF_TEST_STORAGE");
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            ConnectionString = fromEnv;
            return;
        }

        var script = LocateAzurite();
        int blobPort = FreePort(), queuePort = FreePort(), tablePort = FreePort();
        _location = Directory.CreateTempSubdirectory("mlf-azurite-").FullName;
        var psi = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
        {
            script,
            "--blobHost", "127.0.0.1", "--blobPort", blobPort.ToString(),
            "--queueHost", "127.0.0.1", "--queuePort", queuePort.ToString(),
            "--tableHost", "127.0.0.1", "--tablePort", tablePort.ToString(),
            "--location", _location, "--skipApiVersionCheck", "--loose", "--silent",
        })
            psi.ArgumentList.Add(a);
        _process = Process.Start(psi) ?? throw new InvalidOperationException("Could not start node for Azurite.");
        _process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        ConnectionString = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DevKey};BlobEndpoint=http://127.0.0.1:{blobPort}/devstoreaccount1;";
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"Azurite exited with code {_process.ExitCode}: {_output}");
            try
            {
                await Service.GetPropertiesAsync();
                return;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }

    private static string LocateAzurite()
    {
        var fromEnv = Environment.GetEnvironmentVariable("MLF_AZURITE_JS");
        if (!string.IsNullOrWhiteSpace(fromEnv))
            return File.Exists(fromEnv) ? fromEnv : throw new InvalidOperationException($"MLF_AZURITE_JS points at '{fromEnv}', which does not exist.");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "MlFunctions.sln")))
                continue;
            var candidate = Path.Combine(dir.FullName, "tools", "azurite", "node_modules", "azurite", "dist", "src", "azurite.js");
            if (File.Exists(candidate))
                return candidate;
            throw new InvalidOperationException(
                $"Azurite not found at {candidate}. Run 'npm ci' in tools/azurite, set MLF_AZURITE_JS to azurite's dist/src/azurite.js, or set MLF_TEST_STORAGE to a storage connection string.");
        }
        throw new InvalidOperationException("Cannot find the repository root (MlFunctions.sln) to locate Azurite; set MLF_AZURITE_JS or MLF_TEST_STORAGE.");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }
        _process?.Dispose();
        if (_location is not null)
        {
            try { Directory.Delete(_location, recursive: true); }
            catch (IOException) { /* a file still held open by the exiting process: the temp dir is cleaned later */ }
        }
        return Task.CompletedTask;
    }
}

[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "azurite";
}
