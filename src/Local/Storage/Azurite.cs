using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;

namespace MlFunctions.Local.Storage;

/// <summary>
/// Azurite, the Azure Storage emulator, run as a child process from the project's own npm install
/// (tools/azurite, pinned by its package-lock.json). It listens on free loopback ports chosen by the
/// OS (port 0) and reports them on stdout, so parallel hosts and test runs never collide. Its output goes to
/// <c>azurite.log</c> in its data folder, and an exit the host did not ask for is logged as an error with that path.
/// </summary>
public sealed partial class Azurite : IAsyncDisposable
{
    /// <summary>Azurite's well-known development account key (public; it only opens the emulator).</summary>
    private const string DevAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly Process process;
    private readonly StreamWriter log;
    private int disposed;
    private int exitReported;

    private Azurite(Process process, StreamWriter log, int blobPort, int queuePort, int tablePort, string dataPath)
    {
        this.process = process;
        this.log = log;
        BlobPort = blobPort;
        QueuePort = queuePort;
        TablePort = tablePort;
        DataPath = dataPath;
    }

    public int BlobPort { get; }

    public int QueuePort { get; }

    public int TablePort { get; }

    public string DataPath { get; }

    /// <summary>Azurite's stdout and stderr (stderr lines marked), appended across starts: <c>{data}/azurite.log</c>.</summary>
    public string LogPath => Path.Combine(DataPath, LogFileName);

    /// <summary>The pid of the watchdog that runs node (<see cref="OwnedProcess"/>); a session leader of its own.</summary>
    public int ProcessId => process.Id;

    public const string LogFileName = "azurite.log";

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
                // --silent drops the access log, one line per request (DTFx polls its queues every second and renews
                // leases, so a long-running host would grow azurite.log without bound); start, close and error lines
                // still come out and go there.
                "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent",
            ]);
        InOwnSession(start);

        var log = new StreamWriter(new FileStream(Path.Combine(dataPath, LogFileName), FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start node for Azurite");
        Write(log, $"== {DateTimeOffset.UtcNow:O} Azurite started by host pid {Environment.ProcessId}: watchdog pid {process.Id}, data {dataPath}");
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

            Write(log, e.Data);
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
                Write(log, "stderr: " + e.Data);
                lock (errors)
                {
                    errors.Add(e.Data);
                    if (errors.Count > 50)
                    {
                        errors.RemoveAt(0);
                    }
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
            lock (log)
            {
                log.Dispose();
            }

            throw;
        }

        var azurite = new Azurite(process, log, ports["Blob"], ports["Queue"], ports["Table"], dataPath);
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => azurite.OnExited(logger, errors);
        if (process.HasExited)
        {
            azurite.OnExited(logger, errors);
        }

        logger.LogInformation(
            "Azurite started (pid {Pid}): blob {Blob}, queue {Queue}, table {Table}, data {Data}, output {Log}",
            process.Id,
            azurite.BlobPort,
            azurite.QueuePort,
            azurite.TablePort,
            dataPath,
            azurite.LogPath);
        return azurite;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        Kill(process);
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
        Write(log, $"== {DateTimeOffset.UtcNow:O} stopped by the host");
        process.Dispose();
        lock (log)
        {
            log.Dispose();
        }
    }

    /// <summary>
    /// Node ended while the host still uses it: every storage call from now on fails with "connection refused", so say
    /// so once, loudly, with the exit code, its last stderr lines and where its whole output is.
    /// </summary>
    private void OnExited(ILogger logger, List<string> errors)
    {
        if (Volatile.Read(ref disposed) == 1 || Interlocked.Exchange(ref exitReported, 1) == 1)
        {
            return;
        }

        int code;
        try
        {
            code = process.ExitCode;
        }
        catch (InvalidOperationException)
        {
            return;
        }

        string lastErrors;
        lock (errors)
        {
            lastErrors = errors.Count == 0 ? "none" : string.Join(" | ", errors.TakeLast(5));
        }

        Write(log, $"== {DateTimeOffset.UtcNow:O} exited with code {code} while the host was running");
        logger.LogError(
            "Azurite (pid {Pid}) exited with code {Code} while the host was still using it; storage calls now fail with " +
            "'connection refused'. Last stderr: {Errors}. Its output: {Log}. A 'service is closing' line there means it was " +
            "sent SIGTERM or SIGINT; a heap or uncaught-error message means it crashed.",
            process.Id,
            code,
            lastErrors,
            LogPath);
    }

    /// <summary>
    /// Runs the watchdog (and so node) as the leader of a new session via <c>setsid</c>, where it exists. In the host's
    /// process group, a terminal's Ctrl-C or a <c>timeout</c> (which signals its whole group) reached Azurite as well as
    /// the host: Azurite closed at once (its SIGINT/SIGTERM handler), and the host, still stopping the engine and the
    /// running activity, met "connection refused" (a full CT run stopped by the timeout it ran under, 5 s into its evaluate
    /// step, then spent 10 minutes retrying DTFx's partition table against the dead emulator). In its own session only
    /// the host is signalled; it stops the engine first and Azurite last (<see cref="DisposeAsync"/>), and the
    /// watchdog still stops node within a second of the host's death.
    /// </summary>
    private static void InOwnSession(ProcessStartInfo start)
    {
        var setsid = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "setsid"))
            .FirstOrDefault(File.Exists);
        if (setsid is null)
        {
            return;
        }

        start.ArgumentList.Insert(0, start.FileName);
        start.FileName = setsid;
    }

    private static void Write(StreamWriter log, string line)
    {
        lock (log)
        {
            try
            {
                log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
                // Output that arrives after the host stopped Azurite.
            }
        }
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
