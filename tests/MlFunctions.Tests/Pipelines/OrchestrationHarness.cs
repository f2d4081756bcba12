using System.Reflection;
using System.Text.Json;
using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using Moq;

namespace MlFunctions.Tests.Pipelines;

/// <summary>
/// A mocked <see cref="TaskOrchestrationContext"/> for pipeline unit tests: a clock, named activities and
/// sub-orchestrations, and in-memory stand-ins for the cache and lineage activities that apply the same
/// staleness rule as the blob store. Every value crosses a JSON round trip, as it does through Durable's
/// data converter.
/// </summary>
/// <remarks>
/// <see cref="RunAsync{T}"/> runs the orchestrator on the test thread with no synchronization context,
/// so it proceeds synchronously until everything it awaits is pending; only then does the earliest
/// uncancelled timer fire (moving the clock to its time), as in Durable, where a timer fires while the
/// orchestration waits. That makes races between a call and a deadline deterministic.
/// </remarks>
internal sealed class OrchestrationHarness
{
    private static readonly MethodInfo Convert = typeof(OrchestrationHarness).GetMethod(nameof(ConvertAsync), BindingFlags.NonPublic | BindingFlags.Static)!;
    private readonly Dictionary<string, Func<object?, Task<object?>>> handlers = [];
    private readonly List<(DateTime FireAt, TaskCompletionSource Fired)> pendingTimers = [];

    public OrchestrationHarness(string instanceId = "run-1")
    {
        InstanceId = instanceId;
        Context.SetupGet(c => c.InstanceId).Returns(() => InstanceId);
        Context.SetupGet(c => c.CurrentUtcDateTime).Returns(() => Now);
        Context
            .Setup(c => c.CreateTimer(It.IsAny<DateTime>(), It.IsAny<CancellationToken>()))
            .Returns((DateTime fireAt, CancellationToken cancellation) =>
            {
                Timers.Add(fireAt);
                var timer = (fireAt, new TaskCompletionSource());
                pendingTimers.Add(timer);
                cancellation.Register(() =>
                {
                    pendingTimers.Remove(timer);
                    timer.Item2.TrySetCanceled(cancellation);
                });
                return timer.Item2.Task;
            });
        Context
            .Setup(c => c.CallActivityAsync<It.IsAnyType>(It.IsAny<TaskName>(), It.IsAny<object?>(), It.IsAny<TaskOptions?>()))
            .Returns(new InvocationFunc(i => Dispatch(i, "activity")));
        Context
            .Setup(c => c.CallSubOrchestratorAsync<It.IsAnyType>(It.IsAny<TaskName>(), It.IsAny<object?>(), It.IsAny<TaskOptions?>()))
            .Returns(new InvocationFunc(i => Dispatch(i, "orchestration")));
    }

    public Mock<TaskOrchestrationContext> Context { get; } = new();

    public TaskOrchestrationContext Object => Context.Object;

    public string InstanceId { get; set; }

    public DateTime Now { get; set; } = new(2025, 1, 1, 12, 0, 0, DateTimeKind.Utc);

    /// <summary>The fire times of every timer created, in order.</summary>
    public List<DateTime> Timers { get; } = [];

    /// <summary>(kind, name) of every call, in order.</summary>
    public List<(string Kind, string Name, object? Input, TaskOptions? Options)> Calls { get; } = [];

    /// <summary>The cache the fake LookupStepCache/StoreStepCache activities share across runs.</summary>
    public Dictionary<string, StepCacheEntry> Cache { get; } = [];

    /// <summary>What the fake RecordLineage activity persisted.</summary>
    public List<StepRecord> Persisted { get; } = [];

    public int CallsTo(string name) => Calls.Count(c => c.Name == name);

    /// <summary>Registers an activity or sub-orchestration; the handler gets the input after a JSON round trip.</summary>
    public void OnAsync<TIn, TOut>(string name, Func<TIn, Task<TOut>> handler) =>
        handlers[name] = async input => await handler(RoundTrip<TIn>(input)!);

    public void On<TIn, TOut>(string name, Func<TIn, TOut> handler) => OnAsync<TIn, TOut>(name, x => Task.FromResult(handler(x)));

    /// <summary>Runs an orchestrator to its end, firing timers whenever it waits (see remarks).</summary>
    public async Task<T> RunAsync<T>(Func<TaskOrchestrationContext, Task<T>> orchestrator)
    {
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            var run = orchestrator(Object);
            while (!run.IsCompleted)
            {
                if (pendingTimers.Count == 0)
                {
                    throw new InvalidOperationException("The orchestration waits for a call that never completes and has no timer.");
                }

                var next = pendingTimers.MinBy(t => t.FireAt);
                pendingTimers.Remove(next);
                Now = next.FireAt > Now ? next.FireAt : Now;
                next.Fired.SetResult();
            }

            return await run;
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    public static TaskFailedException Failure(string name, string type, string message) =>
        new(name, 0, new TaskFailureDetails(type, message, null, null, null));

    private object Dispatch(IInvocation invocation, string kind)
    {
        var name = ((TaskName)invocation.Arguments[0]!).Name;
        var input = invocation.Arguments[1];
        Calls.Add((kind, name, input, (TaskOptions?)invocation.Arguments[2]));
        Task<object?> result = name switch
        {
            ActivityNames.LookupStepCache => Task.FromResult<object?>(Lookup(RoundTrip<LookupStepCacheInput>(input)!)),
            ActivityNames.StoreStepCache => Task.FromResult<object?>(Store(RoundTrip<StepCacheEntry>(input)!)),
            ActivityNames.RecordLineage => Task.FromResult<object?>(Record(RoundTrip<StepRecord>(input)!)),
            _ when handlers.TryGetValue(name, out var handler) => handler(input),
            _ => throw new InvalidOperationException($"no {kind} '{name}' in this test"),
        };
        return Convert.MakeGenericMethod(invocation.Method.GetGenericArguments()[0]).Invoke(null, [result])!;
    }

    private LookupStepCacheResult Lookup(LookupStepCacheInput input) =>
        new(Cache.TryGetValue(input.Key, out var e) && e.IsFreshAt(input.Now, input.MaxStaleness) ? e : null);

    private bool Store(StepCacheEntry entry)
    {
        Cache[entry.Key] = entry;
        return true;
    }

    private bool Record(StepRecord record)
    {
        Persisted.Add(record);
        return true;
    }

    private static T? RoundTrip<T>(object? value) =>
        JsonSerializer.Deserialize<T>(JsonSerializer.Serialize(value, MlJson.Options), MlJson.Options);

    private static async Task<T> ConvertAsync<T>(Task<object?> result) => RoundTrip<T>(await result)!;
}
