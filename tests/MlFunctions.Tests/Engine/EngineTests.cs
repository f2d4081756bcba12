using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using MlFunctions.Core;
using MlFunctions.Core.Probes;
using Xunit;

namespace MlFunctions.Tests.Engine;

/// <summary>Each Durable feature the product relies on, on the embedded engine over Azurite.</summary>
[Collection(nameof(EngineCollection))]
public sealed class EngineTests(EngineFixture fixture)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(2);

    private DurableTaskClient Client => fixture.Engine.Client;

    [Fact]
    public async Task ContinueAsNewStartsTheNextGenerationWithItsInput()
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.Generations, 0);
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var done = await Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, wait.Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal(3, done.ReadOutputAs<int>());
    }

    [Fact]
    public async Task FanOutFanInSumsEveryActivity()
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.FanOut, 50);
        var done = await WaitAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal(Enumerable.Range(1, 50).Sum(i => i * 2), done.ReadOutputAs<int>());
    }

    [Fact]
    public async Task ProductFanOutProbeRunsOnTheEngine()
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(OrchestrationNames.FanOutProbe, new FanOutProbeInput(25));
        var done = await WaitAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal(25, done.ReadOutputAs<int>());
    }

    [Fact]
    public async Task SubOrchestrationsReturnValues()
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.Parent, 4);
        var done = await WaitAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal(new[] { 1, 3, 5, 7 }, done.ReadOutputAs<int[]>());
    }

    [Fact]
    public async Task ExternalEventResumesTheOrchestrationAndCustomStatusShowsProgress()
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.WaitForApproval, "x");
        var waiting = await Infrastructure.Eventually.GetAsync(
            () => Client.GetInstanceAsync(id, getInputsAndOutputs: true),
            m => m?.SerializedCustomStatus?.Contains("waiting") == true,
            Limit,
            "custom status 'waiting'");
        Assert.Equal(OrchestrationRuntimeStatus.Running, waiting!.RuntimeStatus);

        await Client.RaiseEventAsync(id, "approve", new EngineFixture.Approval("alice"));
        var done = await WaitAsync(id);
        Assert.Equal("approved by alice", done.ReadOutputAs<string>());
        Assert.Contains("approved", done.SerializedCustomStatus);
    }

    [Fact]
    public async Task DurableTimerWaitsOnTheOrchestrationClock()
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.Timer, 2);
        var done = await WaitAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.True(done.ReadOutputAs<double>() >= 2.0, $"timer fired after {done.ReadOutputAs<double>()} s");
    }

    [Fact]
    public async Task RetryPolicyRetriesAFailingActivityUntilItSucceeds()
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.Retry, "x");
        var done = await WaitAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal(3, done.ReadOutputAs<int>());
        Assert.Equal(3, fixture.FlakyAttempts[id]);
    }

    [Fact]
    public async Task ActivityExceptionSurfacesAsTaskFailedExceptionWithDetails()
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.CatchFailure, "caught");
        var done = await WaitAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal($"{typeof(InvalidOperationException).FullName}|boom: caught", done.ReadOutputAs<string>());
    }

    [Fact]
    public async Task UnhandledActivityFailureFailsTheOrchestrationWithTheReason()
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.Fail, "uncaught");
        var done = await WaitAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Failed, done.RuntimeStatus);
        Assert.NotNull(done.FailureDetails);
        Assert.Contains("boom: uncaught", done.FailureDetails!.ToString());
    }

    [Fact]
    public async Task InvalidProbeInputFailsWithAReasonAPersonCanAct()
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(OrchestrationNames.FanOutProbe, new FanOutProbeInput(-1, -5));
        var done = await WaitAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Failed, done.RuntimeStatus);
        Assert.Contains("count must be between 0 and", done.FailureDetails!.ErrorMessage);
        Assert.Contains("delayMs must be between 0 and", done.FailureDetails!.ErrorMessage);
    }

    [Fact]
    public async Task TerminateStopsARunningInstance()
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.WaitForApproval, "x");
        await Client.WaitForInstanceStartAsync(id);
        await Client.TerminateInstanceAsync(id, "no longer needed");
        var done = await WaitAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, done.RuntimeStatus);
    }

    [Fact]
    public async Task StartingARunningInstanceIdAgainIsRefused()
    {
        var id = "dedupe-" + Guid.NewGuid().ToString("N");
        await Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.WaitForApproval, "x", new StartOrchestrationOptions(id));
        await Assert.ThrowsAsync<Api.Durable.InstanceAlreadyRunningException>(() =>
            Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.WaitForApproval, "x", new StartOrchestrationOptions(id)));
        await Client.TerminateInstanceAsync(id);
    }

    [Fact]
    public async Task QueryAndPurgeSeeFinishedInstances()
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.FanOut, 2, new StartOrchestrationOptions("qp-" + Guid.NewGuid().ToString("N")));
        await WaitAsync(id);
        var found = new List<OrchestrationMetadata>();
        await foreach (var m in Client.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = "qp-", Statuses = [OrchestrationRuntimeStatus.Completed] }))
        {
            found.Add(m);
        }

        Assert.Contains(found, m => m.InstanceId == id);
        var purged = await Client.PurgeInstanceAsync(id);
        Assert.Equal(1, purged.PurgedInstanceCount);
        Assert.Null(await Client.GetInstanceAsync(id));
    }

    private async Task<OrchestrationMetadata> WaitAsync(string id)
    {
        using var cts = new CancellationTokenSource(Limit);
        return await Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, cts.Token);
    }
}
