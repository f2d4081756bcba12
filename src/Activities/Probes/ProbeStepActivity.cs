using System.Diagnostics;
using Microsoft.Extensions.Options;
using MlFunctions.Core.Probes;

namespace MlFunctions.Activities.Probes;

public sealed class ProbeOptions
{
    /// <summary>
    /// When set, every probe step appends "start"/"end" lines (instance, index, process id) to this
    /// file. Crash and scale-out tests read it to prove which process ran what, and how often.
    /// </summary>
    public string? JournalPath { get; set; }
}

/// <summary>Appends probe events to the journal file; one writer lock per process.</summary>
public sealed class ProbeJournal(IOptions<ProbeOptions> options)
{
    private readonly SemaphoreSlim gate = new(1, 1);
    private readonly string? path = options.Value.JournalPath;
    private readonly int processId = Environment.ProcessId;

    public async Task WriteAsync(string phase, string instanceId, int index)
    {
        if (string.IsNullOrEmpty(path))
        {
            return;
        }

        await gate.WaitAsync();
        try
        {
            // One short append per line, flushed at once: a kill -9 right after must not lose it.
            await File.AppendAllTextAsync(path, $"{phase} {instanceId} {index} {processId}\n");
        }
        finally
        {
            gate.Release();
        }
    }
}

/// <summary>The probe's unit of work: wait, then return the step index.</summary>
public sealed class ProbeStepActivity(ProbeJournal journal) : IActivity<ProbeStepInput, int>
{
    public async Task<int> RunAsync(ProbeStepInput input, ActivityCall call)
    {
        await journal.WriteAsync("start", call.InstanceId, input.Index);
        if (input.DelayMs > 0)
        {
            await Task.Delay(input.DelayMs, call.Cancellation);
        }

        await journal.WriteAsync("end", call.InstanceId, input.Index);
        Debug.Assert(input.Index >= 0, "the orchestration numbers steps from 0");
        return input.Index;
    }
}
