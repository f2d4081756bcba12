using DurableTask.Core;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Worker.Shims;
using Microsoft.Extensions.DependencyInjection;
using MlFunctions.Activities;
using MlFunctions.Orchestrations;

namespace MlFunctions.Local.Engine;

/// <summary>
/// Turns the catalog's orchestrators and activities into DTFx objects through the SDK's public shim
/// factory, so the exact code that runs in Azure Functions runs here on <c>TaskHubWorker</c>.
/// </summary>
public sealed class ShimRegistry(
    DurableTaskShimFactory shims,
    IServiceProvider services,
    CancellationToken stopping,
    Func<string, string?>? eventCallbackUri = null)
    : IOrchestratorRegistry, IActivityRegistry
{
    private readonly List<ObjectCreator<TaskOrchestration>> orchestrations = [];
    private readonly List<ObjectCreator<TaskActivity>> activities = [];
    private readonly HashSet<string> names = new(StringComparer.OrdinalIgnoreCase);

    public IReadOnlyList<ObjectCreator<TaskOrchestration>> Orchestrations => orchestrations;

    public IReadOnlyList<ObjectCreator<TaskActivity>> Activities => activities;

    public IReadOnlyCollection<string> OrchestrationNames => orchestrations.Select(o => o.Name).ToList();

    public void AddOrchestrator<TInput, TOutput>(string name, Func<TaskOrchestrationContext, TInput?, Task<TOutput>> run)
    {
        Claim(name);

        // A shim holds per-execution state, so every work item gets a fresh one.
        orchestrations.Add(new Creator<TaskOrchestration>(name, () =>
            shims.CreateOrchestration<TInput, TOutput>(name, async (context, input) => await run(context, input))));
    }

    public void AddActivity<TInput, TOutput, TActivity>(string name)
        where TActivity : class, IActivity<TInput, TOutput>
    {
        AddActivity<TInput, TOutput>(name, async (input, call) =>
        {
            await using var scope = services.CreateAsyncScope();
            var activity = scope.ServiceProvider.GetRequiredService<TActivity>();
            return await activity.RunAsync(input!, call);
        });
    }

    /// <summary>An activity given as a function (tests and probes use this).</summary>
    public void AddActivity<TInput, TOutput>(string name, Func<TInput?, ActivityCall, Task<TOutput>> run)
    {
        Claim(name);
        activities.Add(new Creator<TaskActivity>(name, () =>
            shims.CreateActivity<TInput, TOutput>(name, async (context, input) =>
                await run(input, new ActivityCall(name, context.InstanceId, stopping, eventCallbackUri?.Invoke(context.InstanceId))))));
    }

    private void Claim(string name)
    {
        if (!names.Add(name))
        {
            throw new InvalidOperationException($"'{name}' is registered twice; orchestration and activity names must be unique.");
        }
    }

    private sealed class Creator<T> : ObjectCreator<T>
    {
        private readonly Func<T> create;

        public Creator(string name, Func<T> create)
        {
            Name = name;
            Version = string.Empty;
            this.create = create;
        }

        public override T Create() => create();
    }
}
