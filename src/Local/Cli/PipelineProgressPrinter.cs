using System.Globalization;
using Microsoft.DurableTask.Client;
using MlFunctions.Core;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;

namespace MlFunctions.Local.Cli;

/// <summary>Prints a line whenever the step, the sweep or the epochs move: bars for trials and epochs.</summary>
internal sealed class PipelineProgressPrinter(DurableTaskClient client, string runId, int maxTrials, int trialEpochs, int retrainEpochs, string model = "mlp")
{
    private string last = string.Empty;

    /// <summary>
    /// Starts <paramref name="spec"/> on TrainingPipeline in the running host and prints its progress until it ends: the
    /// result, or the command's exit code when there is none (130: the host stopped and the run resumes later; 1: it failed).
    /// One place for what the <c>run</c> command and every case-study command do between host start and their RESULT line.
    /// </summary>
    public static async Task<(string RunId, PipelineRunResult? Result, int ExitCode)> RunToEndAsync(Microsoft.Extensions.Hosting.IHost app, PipelineSpec spec)
    {
        var stopping = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Microsoft.Extensions.Hosting.IHostApplicationLifetime>(app.Services).ApplicationStopping;
        var client = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<MlFunctions.Local.Engine.EngineService>(app.Services).Client;
        var runId = await client.ScheduleNewOrchestrationInstanceAsync(
            OrchestrationNames.TrainingPipeline, spec, new Microsoft.DurableTask.StartOrchestrationOptions($"{spec.Name}-{Guid.NewGuid().ToString("N")[..12]}"), stopping);
        Console.WriteLine($"started run {runId}");
        var done = await new PipelineProgressPrinter(client, runId, spec.Sweep.MaxTrials, spec.Sweep.Epochs, spec.RetrainEpochs, spec.Model).WaitAsync(stopping);
        if (done?.IsCompleted != true)
        {
            Console.WriteLine($"stopped; run {runId} is saved in the task hub and the engine resumes it when the host runs again");
            return (runId, null, 130);
        }

        if (done.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
        {
            Console.Error.WriteLine($"run {runId} ended {done.RuntimeStatus}: {done.FailureDetails?.ErrorMessage ?? done.SerializedOutput}");
            return (runId, null, 1);
        }

        return (runId, done.ReadOutputAs<PipelineRunResult>()!, 0);
    }

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
                line += string.Create(CultureInfo.InvariantCulture, $", best val_accuracy {best:F4} ({s.Best.Parameters.GetValueOrDefault("model", model)})");
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

    /// <summary>A 20-character text bar: [#########...........].</summary>
    internal static string Bar(int done, int total)
    {
        const int width = 20;
        var filled = (int)Math.Round(width * Math.Clamp((double)done / total, 0, 1));
        return "[" + new string('#', filled) + new string('.', width - filled) + "]";
    }
}
