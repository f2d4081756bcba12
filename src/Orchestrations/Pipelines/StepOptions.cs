namespace MlFunctions.Orchestrations.Pipelines;

/// <summary>
/// How one step runs: attempts with exponential backoff, a deadline, and caching.
/// </summary>
/// <remarks>
/// Retries are run by <see cref="PipelineRun"/> itself rather than by a Durable <c>RetryPolicy</c>: the
/// lineage needs the number of attempts (a RetryPolicy hides it on success), the deadline must cover the
/// retries, and the backoff waits go through <see cref="DurableTime.WaitUntilAsync"/>, so they are not
/// cut short by Azure Storage's early timers. The policy knobs are the RetryPolicy ones.
/// </remarks>
public sealed record StepOptions
{
    public static StepOptions Default { get; } = new();

    /// <summary>Executions of the target before the step fails; 1 = no retry.</summary>
    public int MaxAttempts { get; init; } = 1;

    public TimeSpan FirstRetryInterval { get; init; } = TimeSpan.FromSeconds(5);

    public double BackoffCoefficient { get; init; } = 2;

    public TimeSpan MaxRetryInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Deadline for the whole step (every attempt and backoff), from the step's start. Durable cannot
    /// cancel a running activity: on timeout the step fails and the late result is ignored.
    /// </summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>
    /// False: the step neither reads nor writes the cache (for steps whose output is not a function of
    /// their cache content, e.g. a deployment). Null or true: as the run says.
    /// </summary>
    public bool? Cache { get; init; }

    /// <summary>The oldest cache entry this step accepts; null = the run's default.</summary>
    public TimeSpan? MaxStaleness { get; init; }

    /// <summary>
    /// Instance id of a sub-orchestration step (attempt n > 1 gets "-a{n}"), so progress can be followed
    /// by id (e.g. <c>{run}-sweep</c>, whose trials are <c>{run}-sweep-t001</c>…). Null: a generated id.
    /// </summary>
    public string? InstanceId { get; init; }

    /// <summary>
    /// Failures that say the input is wrong, not that the attempt was unlucky: retrying them only delays the
    /// reason (a bad CSV failed validation three times, 2 s + 4 s apart, before this list existed).
    /// </summary>
    public static IReadOnlyList<string> PermanentErrors { get; } =
    [
        "System.ArgumentException", "System.ArgumentNullException", "System.ArgumentOutOfRangeException",
        "System.FormatException", "System.NotSupportedException", "System.IO.InvalidDataException",
        "MlFunctions.Core.Datasets.DatasetValidationException",
    ];

    /// <summary>True when another attempt of a step that failed with <paramref name="errorType"/> could succeed.</summary>
    public static bool IsRetryable(string? errorType) => errorType is null || !PermanentErrors.Contains(errorType);

    /// <summary>The wait after failed attempt <paramref name="attempt"/> (1-based), as Durable's RetryPolicy computes it.</summary>
    public TimeSpan RetryDelay(int attempt)
    {
        var seconds = FirstRetryInterval.TotalSeconds * Math.Pow(BackoffCoefficient, attempt - 1);
        return seconds >= MaxRetryInterval.TotalSeconds ? MaxRetryInterval : TimeSpan.FromSeconds(seconds);
    }

    internal void Validate(string step)
    {
        var problems = new List<string>();
        if (MaxAttempts < 1)
        {
            problems.Add($"maxAttempts must be at least 1, got {MaxAttempts}");
        }

        if (FirstRetryInterval < TimeSpan.Zero || MaxRetryInterval < TimeSpan.Zero)
        {
            problems.Add("retry intervals must not be negative");
        }

        if (BackoffCoefficient < 1)
        {
            problems.Add($"backoffCoefficient must be at least 1, got {BackoffCoefficient}");
        }

        if (Timeout is { } t && t <= TimeSpan.Zero)
        {
            problems.Add($"timeout must be positive, got {t}");
        }

        if (MaxStaleness is { } s && s < TimeSpan.Zero)
        {
            problems.Add($"maxStaleness must not be negative, got {s}");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException($"Invalid options for step '{step}': {string.Join("; ", problems)}");
        }
    }
}

/// <summary>Per-run settings.</summary>
public sealed record PipelineRunOptions
{
    /// <summary>The run id in lineage and cache entries; null = the orchestration's instance id.</summary>
    public string? RunId { get; init; }

    /// <summary>False turns the cache off for every step of the run (no reads, no writes).</summary>
    public bool Caching { get; init; } = true;

    /// <summary>The oldest cache entry a step accepts unless its options say otherwise; null = no limit.</summary>
    public TimeSpan? MaxStaleness { get; init; }

    /// <summary>Options for steps run without their own.</summary>
    public StepOptions StepDefaults { get; init; } = StepOptions.Default;
}
