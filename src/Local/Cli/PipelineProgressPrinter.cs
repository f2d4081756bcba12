using System.Globalization;
using Microsoft.DurableTask.Client;
using MlFunctions.Core;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;

namespace MlFunctions.Local.Cli;

/// <summary>Prints a line whenever the step, the sweep or the epochs move: bars for trials and epochs.</summary>
internal sealed class PipelineProgressPrinter(DurableTaskClient client, string runId, int maxTrials, int trialEpochs, int retrainEpochs)
{
    private string last = string.Empty;

    /// <summary>Polls the run once a second, printing progress, until it ends (its final state) or the host stops (what was last seen).</summary>
    public async Task<OrchestrationMetadata?> WaitAsync(CancellationToken stopping)
    {
        OrchestrationMetadata? run = null;
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                run = await client.GetInstanceAsync(runId, getInputsAndOutputs: true, stopping);
                if (run?.IsCompleted == true)
                    break;
                await PrintAsync(run, stopping);
                await Task.Delay(1000, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }

        return run;
    }

    public async Task PrintAsync(OrchestrationMetadata? pipeline, CancellationToken ct)
    {
        var step = pipeline?.ReadCustomStatusAs<PipelineProgress>()?.Step ?? "starting";
        var line = $"[{step}]";
        if (step == "sweep" && await client.GetInstanceAsync(InstanceIds.Sweep(runId), getInputsAndOutputs: true, ct) is { } sweep && sweep.ReadCustomStatusAs<SweepStatus>() is { } s)
        {
            var finished = s.Done + s.Failed + s.EarlyStopped;
            line += $" trials {Bar(finished, maxTrials)} {finished}/{maxTrials} done, {s.Running} running";
            if (s.Best?.Objective is { } best)
                line += string.Create(CultureInfo.InvariantCulture, $", best val_accuracy {best:F4} ({s.Best.Parameters.GetValueOrDefault("model", "mlp")})");
            for (var t = 1; t <= s.Started; t++)
            {
                if (await client.GetInstanceAsync(InstanceIds.Trial(InstanceIds.Sweep(runId), t), getInputsAndOutputs: true, ct) is { IsRunning: true } trial && trial.ReadCustomStatusAs<TrainModelStatus>() is { } ts)
                    line += $" | t{t:D3} epoch {ts.EpochsDone}/{trialEpochs}";
            }
        }
        else if (step == "retrain" && await client.GetInstanceAsync(InstanceIds.Retrain(runId), getInputsAndOutputs: true, ct) is { } retrain && retrain.ReadCustomStatusAs<TrainModelStatus>() is { } r)
        {
            line += $" epochs {Bar(r.EpochsDone, retrainEpochs)} {r.EpochsDone}/{retrainEpochs}";
            if (r.Last is { } m)
                line += string.Create(CultureInfo.InvariantCulture, $" loss {m.TrainLoss:F4} held-out acc {m.ValAccuracy:F4} ({m.SamplesPerSecond:F0} samples/s)");
        }

        if (line != last)
        {
            Console.WriteLine($"{DateTime.Now:HH:mm:ss} {line}");
            last = line;
        }
    }

    private static string Bar(int done, int total)
    {
        const int width = 20;
        var filled = (int)Math.Round(width * Math.Clamp((double)done / total, 0, 1));
        return "[" + new string('#', filled) + new string('.', width - filled) + "]";
    }
}
