using Microsoft.Azure.Functions.Worker;
using MlFunctions.Activities;
using MlFunctions.Activities.Probes;
using MlFunctions.Core;
using MlFunctions.Core.Probes;

namespace MlFunctions.Functions;

/// <summary>Thin [Function] wrappers over the shared activity classes.</summary>
public sealed class ActivityFunctions(ProbeStepActivity probeStep)
{
    [Function(ActivityNames.ProbeStep)]
    public Task<int> ProbeStep([ActivityTrigger] ProbeStepInput input, FunctionContext context) =>
        probeStep.RunAsync(input, Call(ActivityNames.ProbeStep, context));

    /// <summary>The activity's caller, from the Durable binding data Functions passes along.</summary>
    internal static ActivityCall Call(string name, FunctionContext context) =>
        new(
            name,
            context.BindingContext.BindingData.TryGetValue("instanceId", out var id) ? id?.ToString() ?? string.Empty : string.Empty,
            context.CancellationToken);
}
