using System.Runtime.InteropServices;
using System.Text.Json;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;
using MlFunctions.GpuWorker.Queue;
using MlFunctions.GpuWorker.Storage;
using MlFunctions.GpuWorker.Training;

namespace MlFunctions.GpuWorker;

/// <summary>
/// Entry points of the training worker, for its own Program and for hosts that embed it (the local host runs it
/// in-process with <see cref="RunAsync"/>, or as a child process: <c>dotnet MlFunctions.GpuWorker.dll</c>).
/// </summary>
public static class TrainingWorkerHost
{
    /// <summary>Env var holding a job's JSON for single-job mode (Kubernetes Jobs).</summary>
    public const string JobEnvironmentVariable = "MLF_TRAINING_JOB";

    /// <summary>Consumes the training-jobs queue until <paramref name="cancellation"/> fires. Throws only for bad configuration.</summary>
    public static async Task RunAsync(IConfiguration configuration, CancellationToken cancellation, ILoggerFactory? loggerFactory = null)
    {
        var options = WorkerOptions.FromConfiguration(configuration);
        using var services = new WorkerServices(options, loggerFactory ?? NullLoggerFactory.Instance);
        await services.Consumer.RunAsync(cancellation);
    }

    /// <summary>
    /// Runs one job (no queue) and returns the process exit code: 0 when it completed or stopped early, 1 when it
    /// failed (after reporting <see cref="TrainingEvents.Failed"/> with the reason) or was cancelled.
    /// </summary>
    public static async Task<int> RunSingleJobAsync(TrainingJob job, IConfiguration configuration, CancellationToken cancellation, ILoggerFactory? loggerFactory = null)
    {
        var options = WorkerOptions.FromConfiguration(configuration);
        using var services = new WorkerServices(options, loggerFactory ?? NullLoggerFactory.Instance);
        var logger = services.LoggerFactory.CreateLogger("MlFunctions.GpuWorker.SingleJob");
        try
        {
            var result = await services.Runner.RunAsync(job, cancellation);
            logger.LogInformation("Job {JobId} {Outcome} after {Epochs} epochs", job.JobId, result.StoppedEarly ? "stopped early" : "completed", result.History.Count);
            return 0;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Not a failure of the job: a re-dispatch resumes it from its newest checkpoint.
            logger.LogWarning("Job {JobId} interrupted by shutdown", job.JobId);
            return 1;
        }
        catch (Exception e)
        {
            var reason = TrainingQueueConsumer.Describe(e);
            logger.LogError(e, "Job {JobId} failed: {Reason}", job.JobId, reason);
            await services.Runner.RecordFailureAsync(job, TrainingJobStates.Failed, reason);
            await services.Callbacks.SendAsync(job.CallbackUri, new TrainingEvent { JobId = job.JobId, Kind = TrainingEvents.Failed, Attempt = job.Attempt, Error = reason });
            return 1;
        }
    }

    /// <summary>The worker's command line: see Program. Returns the exit code.</summary>
    public static async Task<int> MainAsync(string[] args)
    {
        string? jobFile = null;
        var singleJob = false;
        var rest = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--single-job")
                singleJob = true;
            else if (args[i] == "--job-file" && i + 1 < args.Length)
                jobFile = args[++i];
            else
                rest.Add(args[i]);
        }

        var envJob = Environment.GetEnvironmentVariable(JobEnvironmentVariable);
        var builder = Host.CreateApplicationBuilder(rest.ToArray());
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        try
        {
            WorkerOptions.FromConfiguration(builder.Configuration);
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine($"MlFunctions.GpuWorker: {e.Message}");
            return 1;
        }

        if (jobFile is null && !singleJob && string.IsNullOrWhiteSpace(envJob))
        {
            builder.Services.AddHostedService(sp => new TrainingWorkerService(builder.Configuration, sp.GetRequiredService<ILoggerFactory>()));
            using var host = builder.Build();
            await host.RunAsync();
            return 0;
        }

        using var app = builder.Build();
        var loggerFactory = app.Services.GetRequiredService<ILoggerFactory>();
        var logger = loggerFactory.CreateLogger("MlFunctions.GpuWorker");
        string json;
        try
        {
            json = jobFile is not null ? await File.ReadAllTextAsync(jobFile) : envJob ?? throw new InvalidOperationException($"--single-job needs the job JSON in {JobEnvironmentVariable} (or use --job-file PATH)");
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            logger.LogError("Cannot read the job: {Error}", e.Message);
            return 1;
        }

        if (!TrainingQueueConsumer.TryParseJob(json, out var job, out var problem, out var jobId, out var callbackUri))
        {
            var reason = $"malformed training job: {problem}";
            logger.LogError("{Reason}", reason);
            if (jobId is not null && callbackUri is not null)
            {
                // The orchestration is waiting for this job: tell it why nothing will run.
                using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
                var callbacks = new CallbackClient(http, builder.Configuration.GetSection(WorkerOptions.Section).Get<WorkerOptions>() ?? new WorkerOptions(), logger);
                await callbacks.SendAsync(callbackUri, new TrainingEvent { JobId = jobId, Kind = TrainingEvents.Failed, Error = reason });
            }

            return 1;
        }

        using var cts = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cts.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; cts.Cancel(); });
        return await RunSingleJobAsync(job, builder.Configuration, cts.Token, loggerFactory);
    }
}

/// <summary>The queue consumer as a hosted service (the worker's default mode).</summary>
public sealed class TrainingWorkerService(IConfiguration configuration, ILoggerFactory loggerFactory) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => TrainingWorkerHost.RunAsync(configuration, stoppingToken, loggerFactory);
}

/// <summary>The worker's object graph for one set of options.</summary>
internal sealed class WorkerServices : IDisposable
{
    private readonly HttpClient http = new() { Timeout = TimeSpan.FromSeconds(30) };

    public WorkerServices(WorkerOptions options, ILoggerFactory loggerFactory)
    {
        LoggerFactory = loggerFactory;
        var blobs = new BlobServiceClient(options.StorageConnection);
        var queues = new QueueServiceClient(options.StorageConnection);
        Store = new JobStore(blobs);
        Callbacks = new CallbackClient(http, options, loggerFactory.CreateLogger<CallbackClient>());
        Runner = new TrainingJobRunner(Store, Callbacks, options, loggerFactory.CreateLogger<TrainingJobRunner>());
        Consumer = new TrainingQueueConsumer(queues, Runner, Callbacks, options, loggerFactory.CreateLogger<TrainingQueueConsumer>());
    }

    public ILoggerFactory LoggerFactory { get; }

    public JobStore Store { get; }

    public CallbackClient Callbacks { get; }

    public TrainingJobRunner Runner { get; }

    public TrainingQueueConsumer Consumer { get; }

    public void Dispose() => http.Dispose();
}
