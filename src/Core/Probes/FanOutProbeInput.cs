namespace MlFunctions.Core.Probes;

/// <summary>Input of the built-in <c>FanOutProbe</c> orchestration used by smoke checks and benchmarks.</summary>
/// <param name="Count">How many activities to run.</param>
/// <param name="DelayMs">How long each activity waits.</param>
/// <param name="Sequential">Run one after another instead of fanning out.</param>
public sealed record FanOutProbeInput(int Count, int DelayMs = 0, bool Sequential = false)
{
    /// <summary>Upper bounds keep one request from flooding the task hub.</summary>
    public const int MaxCount = 10_000;
    public const int MaxDelayMs = 600_000;

    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Count < 0 || Count > MaxCount)
        {
            problems.Add($"count must be between 0 and {MaxCount}, got {Count}");
        }

        if (DelayMs < 0 || DelayMs > MaxDelayMs)
        {
            problems.Add($"delayMs must be between 0 and {MaxDelayMs}, got {DelayMs}");
        }

        return problems;
    }
}

/// <summary>One probe activity: which step of the probe it is and how long it waits.</summary>
public sealed record ProbeStepInput(int Index, int DelayMs);
