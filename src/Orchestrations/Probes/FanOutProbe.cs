using MlFunctions.Core;
using MlFunctions.Core.Probes;
using Microsoft.DurableTask;

namespace MlFunctions.Orchestrations.Probes;

/// <summary>
/// Runs N probe activities, in parallel or in sequence, and returns N. It measures the engine itself
/// (benchmarks, smoke checks, crash tests), so it does no work of its own.
/// </summary>
public static class FanOutProbe
{
    public static async Task<int> RunAsync(TaskOrchestrationContext context, FanOutProbeInput? input)
    {
        if (input is null)
        {
            throw new ArgumentException("FanOutProbe needs an input like {\"count\": 10, \"delayMs\": 0, \"sequential\": false}");
        }

        var problems = input.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid FanOutProbe input: " + string.Join("; ", problems));
        }

        if (input.Sequential)
        {
            for (var i = 0; i < input.Count; i++)
            {
                await context.CallActivityAsync<int>(ActivityNames.ProbeStep, new ProbeStepInput(i, input.DelayMs));
                context.SetCustomStatus(new { done = i + 1, total = input.Count });
            }

            return input.Count;
        }

        var steps = new Task<int>[input.Count];
        for (var i = 0; i < input.Count; i++)
        {
            steps[i] = context.CallActivityAsync<int>(ActivityNames.ProbeStep, new ProbeStepInput(i, input.DelayMs));
        }

        var results = await Task.WhenAll(steps);
        return results.Length;
    }
}
