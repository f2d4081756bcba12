using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;

namespace MlFunctions.Local.Storage;

/// <summary>
/// Azurite, the Azure Storage emulator, run as a child process from the project's own npm install
/// (tools/azurite, pinned by its package-lock.json). It listens on free loopback ports chosen by the
/// OS (port 0) and reports them on stdout, so parallel hosts and test runs never collide.
/// </summary>
public sealed partial class Azurite : IAsyncDisposable
{
    /// <summary>Azurite's well-known development account key (public; it only opens the emulator).</summary>
    private const string DevAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly Process process;

    private Azurite(Process process, int blobPort, int queuePort, int tablePort, string dataPath)
    {
        this.process = process;
        BlobPort = blobPort;
        QueuePort = queuePort;
        TablePort = tablePort;
        DataPath = dataPath;
    }

    public int BlobPort { get; }

    public int QueuePort { get; }

    public int TablePort { get; }

    public string DataPath { get; }

    public string ConnectionString =>
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
        $"AccountKey={DevAccountKey};" +
        $"BlobEndpoint=http://127.0.0.1:{BlobPort}/devstoreaccount1;" +
        $"QueueEndpoint=http://127.0.0.1:{QueuePort}/devstoreaccount1;" +
        $"TableEndpoint=http://127.0.0.1:{TablePort}/devstoreaccount1;";

    /// <summary>
    /// Where azurite.js is: <c>MLF_AZURITE_JS</c>, else tools/azurite/node_modules under any parent of
    /// the working directory or of the application folder.
    /// </summary>
    public static string? FindScript()
    {
        var fromEnv = Environment.GetEnvironmentVariable("MLF_AZURITE_JS");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            return File.Exists(fromEnv) ? fromEnv : null;
        }

        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "tools", "azurite", "node_modules", "azurite", "dist", "src", "azurite.js");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    public static async Task<Azurite> StartAsync(string dataPath, ILogger logger, CancellationToken cancellation = default)
    {
        var script = FindScript() ?? throw new InvalidOperationException(
            "Azurite is not installed. Run 'npm ci --prefix tools/azurite' in the repository root, " +
            "or set AzureWebJobsStorage to an Azure Storage connection string.");
        Directory.CreateDirectory(dataPath);

        var start = OwnedProcess.StartInfo(
            "node",
            [
                script, "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
                "--blobPort", "0", "--queuePort", "0", "--tablePort", "0", "--location", dataPath,
                "--skipApiVersionCheck", "--loose", "--disableTelemetry",
            ]);

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start node for Azurite");
        var ports = new Dictionary<string, int>();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var errors = new List<string>();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                ready.TrySetException(new InvalidOperationException("Azurite exited during start: " + string.Join(" ", errors)));
                return;
            }

            var match = ListeningLine().Match(e.Data);
            if (match.Success)
            {
                lock (ports)
                {
                    ports[match.Groups["service"].Value] = int.Parse(match.Groups["port"].Value);
                    if (ports.Count == 3)
                    {
                        ready.TrySetResult();
                    }
                }
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (errors)
                {
                    errors.Add(e.Data);
                }
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            await ready.Task.WaitAsync(timeout.Token);
        }
        catch
        {
            Kill(process);
            throw;
        }

        var azurite = new Azurite(process, ports["Blob"], ports["Queue"], ports["Table"], dataPath);
        logger.LogInformation(
            "Azurite started (pid {Pid}): blob {Blob}, queue {Queue}, table {Table}, data {Data}",
            process.Id,
            azurite.BlobPort,
            azurite.QueuePort,
            azurite.TablePort,
            dataPath);
        return azurite;
    }

    public async ValueTask DisposeAsync()
    {
        Kill(process);
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
        process.Dispose();
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    [GeneratedRegex(@"Azurite (?<service>Blob|Queue|Table) service is successfully listening at http://[^:]+:(?<port>\d+)")]
    private static partial Regex ListeningLine();
}
