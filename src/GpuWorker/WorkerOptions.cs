using Microsoft.Extensions.Configuration;
using MlFunctions.Core.Training;

namespace MlFunctions.GpuWorker;

/// <summary>
/// Worker settings. Keys: <c>AzureWebJobsStorage</c> (root) and the <c>Worker:*</c> section, e.g.
/// <c>Worker:JobsPerWorker</c> or env <c>Worker__JobsPerWorker</c>.
/// </summary>
public sealed record WorkerOptions
{
    public const string Section = "Worker";

    /// <summary>Storage connection string (the same setting name the Functions host uses).</summary>
    public string StorageConnection { get; init; } = "";

    /// <summary>Jobs trained at once by one worker process. Default 1: a GPU (or the CPU cores) is the unit of work.</summary>
    public int JobsPerWorker { get; init; } = 1;

    /// <summary>
    /// A job is moved to the poison queue when it fails on its N-th dequeue, or is received more than N times
    /// (the worker died each time).
    /// </summary>
    public int MaxDequeueCount { get; init; } = 5;

    /// <summary>How long a received job stays invisible; renewed every third of it while the job runs.</summary>
    public int VisibilityTimeoutSeconds { get; init; } = 60;

    /// <summary>Delay before a failed (not yet poisoned) job becomes visible again.</summary>
    public int RetryDelaySeconds { get; init; } = 10;

    public int PollIntervalMilliseconds { get; init; } = 1000;

    /// <summary>Interval of TrainingHeartbeat events while a job runs.</summary>
    public double HeartbeatSeconds { get; init; } = 10;

    /// <summary>torch intra-op threads; 0 keeps libtorch's default (all cores).</summary>
    public int Threads { get; init; }

    /// <summary>"auto" (CUDA when available, else CPU), "cpu" or "cuda".</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Attempts per callback POST (exponential backoff from <see cref="CallbackBackoffMilliseconds"/>).</summary>
    public int CallbackAttempts { get; init; } = 6;

    public int CallbackBackoffMilliseconds { get; init; } = 500;

    /// <summary>Queue names; overridable so tests (and several deployments on one account) stay apart.</summary>
    public string JobsQueue { get; init; } = TrainingStorage.JobsQueue;

    public string PoisonQueue { get; init; } = TrainingStorage.PoisonQueue;

    /// <summary>Samples in the ONNX parity batch.</summary>
    public int ParityBatchSize { get; init; } = 64;

    public static WorkerOptions FromConfiguration(IConfiguration configuration)
    {
        var options = configuration.GetSection(Section).Get<WorkerOptions>() ?? new WorkerOptions();
        var storage = configuration["AzureWebJobsStorage"] ?? configuration[$"{Section}:StorageConnection"];
        if (string.IsNullOrWhiteSpace(storage))
        {
            throw new InvalidOperationException("AzureWebJobsStorage is not set: the worker needs the storage account holding the training-jobs queue, datasets and checkpoints.");
        }

        options = options with { StorageConnection = storage };
        options.Validate();
        return options;
    }

    public void Validate()
    {
        if (JobsPerWorker < 1) throw new InvalidOperationException("Worker:JobsPerWorker must be at least 1.");
        if (MaxDequeueCount < 1) throw new InvalidOperationException("Worker:MaxDequeueCount must be at least 1.");
        if (VisibilityTimeoutSeconds < 3) throw new InvalidOperationException("Worker:VisibilityTimeoutSeconds must be at least 3.");
        if (Device is not ("auto" or "cpu" or "cuda")) throw new InvalidOperationException($"Worker:Device '{Device}' is not one of auto, cpu, cuda.");
        if (HeartbeatSeconds <= 0) throw new InvalidOperationException("Worker:HeartbeatSeconds must be positive.");
    }
}
