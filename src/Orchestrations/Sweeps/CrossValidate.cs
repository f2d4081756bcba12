using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;

namespace MlFunctions.Orchestrations.Sweeps;

/// <summary>
/// k-fold cross-validation: the same trial k times, each holding out one fold of train+val, fanned out
/// as sub-orchestrations. The result's metrics are the means over folds (with <c>{metric}_std</c> beside
/// each), so a sweep can score trials by it exactly as by a single run. A failed fold fails the whole.
/// </summary>
public static class CrossValidate
{
    public static async Task<TrialOutcome> RunAsync(TaskOrchestrationContext context, CrossValidationInput? input)
    {
        if (input is null || (input.Job is null) == (input.StandIn is null))
        {
            throw new ArgumentException("CrossValidate needs an input with folds and exactly one of job and standIn");
        }

        if (input.Folds is < 2 or > 20)
        {
            throw new ArgumentException($"CrossValidate: folds must be between 2 and 20, got {input.Folds}");
        }

        var folds = Enumerable.Range(0, input.Folds).Select(fold => RunFoldAsync(context, input, fold)).ToList();
        var metrics = await Task.WhenAll(folds);
        var summary = CrossValidationSummary.Of(metrics);

        var final = new Dictionary<string, double>(summary.Mean, StringComparer.Ordinal);
        foreach (var (name, std) in summary.StdDev)
        {
            final[$"{name}_std"] = std;
        }

        return new TrialOutcome(input.TrialId, TrialState.Succeeded, final, [new MetricStep(1, summary.Mean)], new Dictionary<string, string>())
        {
            CrossValidation = summary,
        };
    }

    private static async Task<IReadOnlyDictionary<string, double>> RunFoldAsync(TaskOrchestrationContext context, CrossValidationInput input, int fold)
    {
        var options = new SubOrchestrationOptions { InstanceId = $"{context.InstanceId}-f{fold}" };
        if (input.StandIn is { } standIn)
        {
            var outcome = await context.CallSubOrchestratorAsync<TrialOutcome>(
                OrchestrationNames.StandInTrial, standIn with { Fold = fold, ProgressTo = null }, options);
            return outcome.Metrics;
        }

        var job = input.Job! with
        {
            JobId = $"{input.Job!.JobId}-f{fold}",
            Fold = new CrossValidationFold(fold, input.Folds),

            // The folds only score a configuration; the model worth exporting is the retrained one.
            ExportOnnx = false,
        };
        var result = await context.CallSubOrchestratorAsync<TrainingResult>(
            OrchestrationNames.TrainModel, new TrainModelInput(job, input.MaxAttempts, input.HeartbeatTimeoutSeconds), options);
        return TrialMetrics.FromTraining(job.JobId, result).Metrics;
    }
}
