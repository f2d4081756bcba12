using System.Collections.Concurrent;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Activities;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Pipelines;
using MlFunctions.Local.Engine;
using MlFunctions.Orchestrations;
using MlFunctions.Orchestrations.Pipelines;
using MlFunctions.Tests.Infrastructure;
using Xunit;

namespace MlFunctions.Tests.Engine;

/// <summary>
/// One embedded engine on Azurite, with orchestrations that exercise each Durable feature the product
/// relies on. They are registered next to the product catalog through the same shim registry.
/// </summary>
public sealed class EngineFixture : IAsyncLifetime
{
    public const string FanOut = "T_FanOut";
    public const string Parent = "T_Parent";
    public const string Child = "T_Child";
    public const string WaitForApproval = "T_WaitForApproval";
    public const string Timer = "T_Timer";
    public const string Retry = "T_Retry";
    public const string CatchFailure = "T_CatchFailure";
    public const string Fail = "T_Fail";
    public const string Double = "T_Double";
    public const string Flaky = "T_Flaky";
    public const string Boom = "T_Boom";
    public const string Pipeline = "T_Pipeline";
    public const string PipelineWork = "T_PipelineWork";
    public const string Generations = "T_Generations";

    /// <summary>Keyed on dataset content and the multiplier; the dataset path is not content.</summary>
    private static readonly PipelineStep<PipelineInput, int> WorkStep =
        PipelineStep<PipelineInput, int>.Activity("work", "v1", PipelineWork, i => new { dataset = i.DatasetHash, i.Value });

    /// <summary>Executions of the pipeline's work activity per dataset hash.</summary>
    public ConcurrentDictionary<string, int> PipelineExecutions { get; } = new();

    /// <summary>Attempts per instance of the flaky activity (it fails until its third call).</summary>
    public ConcurrentDictionary<string, int> FlakyAttempts { get; } = new();

    public DurableEngine Engine { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var services = new ServiceCollection()
            .AddSingleton<IStorageClients>(new ConnectionStringStorageClients(_ => TestStorage.ConnectionStringAsync()))
            .AddMlActivities()
            .BuildServiceProvider();
        var options = new EngineOptions
        {
            StorageConnectionString = await TestStorage.ConnectionStringAsync(),
            TaskHubName = TestStorage.NewTaskHub("eng"),
        };
        Engine = await DurableEngine.StartAsync(options, services, NullLoggerFactory.Instance, Register);
    }

    public async Task DisposeAsync() => await Engine.DisposeAsync();

    private void Register(ShimRegistry r)
    {
        r.AddActivity<int, int>(Double, (x, _) => Task.FromResult(x * 2));
        r.AddActivity<string, int>(Flaky, (input, call) =>
        {
            var attempt = FlakyAttempts.AddOrUpdate(call.InstanceId, 1, (_, n) => n + 1);
            return attempt < 3 ? throw new TimeoutException($"attempt {attempt} timed out") : Task.FromResult(attempt);
        });
        r.AddActivity<string, int>(Boom, (input, _) => throw new InvalidOperationException($"boom: {input}"));

        r.AddOrchestrator<int, int>(FanOut, async (ctx, n) =>
        {
            var results = await Task.WhenAll(Enumerable.Range(1, n).Select(i => ctx.CallActivityAsync<int>(Double, i)));
            return results.Sum();
        });
        r.AddOrchestrator<int, int>(Child, async (ctx, x) => await ctx.CallActivityAsync<int>(Double, x) + 1);
        r.AddOrchestrator<int, int[]>(Parent, async (ctx, n) =>
            await Task.WhenAll(Enumerable.Range(0, n).Select(i => ctx.CallSubOrchestratorAsync<int>(Child, i))));
        r.AddOrchestrator<string, string>(WaitForApproval, async (ctx, _) =>
        {
            ctx.SetCustomStatus(new { stage = "waiting for approval" });
            var approval = await ctx.WaitForExternalEvent<Approval>("approve");
            ctx.SetCustomStatus(new { stage = "approved" });
            return $"approved by {approval.By}";
        });
        r.AddOrchestrator<int, double>(Timer, async (ctx, seconds) =>
        {
            var start = ctx.CurrentUtcDateTime;
            await ctx.WaitUntilAsync(start.AddSeconds(seconds));
            return (ctx.CurrentUtcDateTime - start).TotalSeconds;
        });
        r.AddOrchestrator<string, int>(Retry, async (ctx, _) =>
        {
            var policy = new RetryPolicy(maxNumberOfAttempts: 4, firstRetryInterval: TimeSpan.FromSeconds(1));
            return await ctx.CallActivityAsync<int>(Flaky, "x", TaskOptions.FromRetryPolicy(policy));
        });
        // ContinueAsNew after an activity, with an event waiter and a timer still pending (as a sweep leaves them).
        r.AddOrchestrator<int, int>(Generations, async (ctx, generation) =>
        {
            var pendingEvent = ctx.WaitForExternalEvent<string>("never");
            using var cancel = new CancellationTokenSource();
            var pendingTimer = ctx.CreateTimer(ctx.CurrentUtcDateTime.AddHours(1), cancel.Token);
            await ctx.CallActivityAsync<int>(Double, generation);
            if (generation < 3)
            {
                // A timer still pending would hold the execution open (found on the Azure Storage backend):
                // cancel it before continuing as new.
                cancel.Cancel();
                ctx.ContinueAsNew(generation + 1, preserveUnprocessedEvents: false);
                return -1;
            }

            cancel.Cancel();
            return generation;
        });
        r.AddOrchestrator<string, string>(CatchFailure, async (ctx, input) =>
        {
            try
            {
                await ctx.CallActivityAsync<int>(Boom, input);
                return "not reached";
            }
            catch (TaskFailedException e)
            {
                return $"{e.FailureDetails.ErrorType}|{e.FailureDetails.ErrorMessage}";
            }
        });
        r.AddOrchestrator<string, int>(Fail, async (ctx, input) => await ctx.CallActivityAsync<int>(Boom, input));

        r.AddActivity<PipelineInput, int>(PipelineWork, (input, _) =>
        {
            PipelineExecutions.AddOrUpdate(input!.DatasetHash, 1, (_, n) => n + 1);
            return Task.FromResult(input.Value * 2);
        });
        r.AddOrchestrator<PipelineInput, PipelineRunRecord>(Pipeline, async (ctx, input) =>
        {
            var run = PipelineRun.Start(ctx, new PipelineRunOptions { MaxStaleness = TimeSpan.FromDays(1) });
            var doubled = await run.RunWithExitHandlerAsync(
                () => run.StepAsync(WorkStep, input!, new StepOptions { Timeout = TimeSpan.FromMinutes(5), MaxAttempts = 2 }),
                _ => Task.CompletedTask);
            ctx.SetCustomStatus(doubled);
            return run.Summary();
        });
    }

    public sealed record Approval(string By);

    public sealed record PipelineInput(string DatasetPath, string DatasetHash, int Value);
}

[CollectionDefinition(nameof(EngineCollection))]
public sealed class EngineCollection : ICollectionFixture<EngineFixture>;
