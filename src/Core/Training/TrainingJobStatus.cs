namespace MlFunctions.Core.Training;

/// <summary>
/// The job-status blob (<see cref="TrainingStorage.StatusBlob"/>) the training worker rewrites at every state
/// change and after every epoch. Versioned like the other cross-process contracts: add fields with defaults.
/// </summary>
public sealed record TrainingJobStatus
{
    public const int CurrentSchemaVersion = 1;

    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    public required string JobId { get; init; }

    /// <summary>One of the <see cref="TrainingJobStates"/>.</summary>
    public required string State { get; init; }

    public int Attempt { get; init; } = 1;

    /// <summary>Epochs finished and checkpointed.</summary>
    public int EpochsDone { get; init; }

    public int Epochs { get; init; }

    public string? Device { get; init; }

    /// <summary>Which worker process wrote this (machine/pid), for diagnosing redeliveries.</summary>
    public string? Worker { get; init; }

    public IReadOnlyList<EpochMetrics> History { get; init; } = [];

    /// <summary>Set when <see cref="State"/> is completed or stopped: a redelivered job re-reports it without retraining.</summary>
    public TrainingResult? Result { get; init; }

    public string? Error { get; init; }

    public DateTimeOffset UpdatedAt { get; init; } = DateTimeOffset.UtcNow;
}

public static class TrainingJobStates
{
    public const string Running = "running";
    public const string Retrying = "retrying";
    public const string Completed = "completed";
    public const string Stopped = "stopped";
    public const string Failed = "failed";
}
