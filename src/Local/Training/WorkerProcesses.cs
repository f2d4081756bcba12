using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MlFunctions.Local.Storage;

namespace MlFunctions.Local.Training;

/// <summary>
/// The embedded default for training: N worker processes (<c>Local:Workers</c>, default 1; <c>--workers N</c>)
/// consuming the same training-jobs queue the dispatcher writes to. They are child processes, not
/// in-process, for the same reason the worker is its own deployment in a cluster: TorchSharp and its
/// native threads stay out of the Functions host, and a crashed or killed worker is restarted and
/// resumes from its checkpoint without taking the host down.
/// </summary>
public sealed class WorkerProcesses(IConfiguration configuration, LocalStorage storage, ILogger<WorkerProcesses> logger) : BackgroundService
{
    private readonly List<Process> running = [];

    /// <summary>
    /// The built worker: <c>Local:WorkerPath</c>, else the newest src/GpuWorker build (Release or Debug)
    /// under the nearest parent of the working directory or the application folder that has one.
    /// </summary>
    public static string? FindWorker(IConfiguration configuration)
    {
        var configured = configuration["Local:WorkerPath"];
        if (!string.IsNullOrEmpty(configured))
        {
            return File.Exists(configured) ? Path.GetFullPath(configured) : null;
        }

        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var newest = new[] { "Release", "Debug" }
                    .Select(config => new FileInfo(Path.Combine(dir.FullName, "src", "GpuWorker", "bin", config, "net10.0", "linux-x64", "MlFunctions.GpuWorker.dll")))
                    .Where(f => f.Exists)
                    .MaxBy(f => f.LastWriteTimeUtc);
                if (newest is not null)
                {
                    return newest.FullName;
                }
            }
        }

        return null;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var count = configuration.GetValue("Local:Workers", 1);
        if (count <= 0)
        {
            logger.LogInformation("No embedded training workers (Local:Workers = {Count}); jobs wait for an external worker", count);
            return;
        }

        var worker = FindWorker(configuration);
        if (worker is null)
        {
            logger.LogWarning(
                "Training worker not found: build it (dotnet build src/GpuWorker -c Release) or set Local:WorkerPath. " +
                "Training jobs will wait on the queue, and TrainModel steps fail after their heartbeat timeout.");
            return;
        }

        var connection = await storage.GetConnectionStringAsync(stoppingToken);
        await Task.WhenAll(Enumerable.Range(1, count).Select(i => SuperviseAsync(worker, connection, i, stoppingToken)));
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        lock (running)
        {
            foreach (var process in running)
            {
                Kill(process);
            }
        }
    }

    /// <summary>Runs one worker and restarts it when it exits, with a growing pause so a broken worker cannot spin.</summary>
    private async Task SuperviseAsync(string dll, string connection, int index, CancellationToken stoppingToken)
    {
        var pause = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            var start = OwnedProcess.StartInfo("dotnet", [dll]);
            start.Environment["AzureWebJobsStorage"] = connection;

            // The workers read the queue the dispatcher writes to, unless Worker:* says otherwise.
            var queue = configuration["Dispatch:JobsQueue"] ?? Core.Training.TrainingStorage.JobsQueue;
            start.Environment["Worker__JobsQueue"] = queue;
            start.Environment["Worker__PoisonQueue"] = queue + "-poison";
            start.Environment["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Warning";
            foreach (var setting in configuration.GetSection("Worker").AsEnumerable(makePathsRelative: true).Where(s => s.Value is not null))
            {
                start.Environment["Worker__" + setting.Key.Replace(":", "__", StringComparison.Ordinal)] = setting.Value;
            }

            using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the training worker");
            process.OutputDataReceived += (_, e) => Forward(index, e.Data, LogLevel.Information);
            process.ErrorDataReceived += (_, e) => Forward(index, e.Data, LogLevel.Warning);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            lock (running)
            {
                running.Add(process);
            }

            logger.LogInformation("Training worker {Index} started (pid {Pid})", index, process.Id);
            var started = Stopwatch.StartNew();
            try
            {
                await process.WaitForExitAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                Kill(process);
                return;
            }
            finally
            {
                lock (running)
                {
                    running.Remove(process);
                }
            }

            logger.LogWarning("Training worker {Index} exited with code {Code}; restarting in {Pause}", index, process.ExitCode, pause);
            pause = started.Elapsed > TimeSpan.FromMinutes(1) ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(Math.Min(pause.TotalSeconds * 2, 60));
            await Task.Delay(pause, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private void Forward(int index, string? line, LogLevel level)
    {
        if (!string.IsNullOrWhiteSpace(line))
        {
            logger.Log(level, "worker {Index}: {Line}", index, line);
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
}
