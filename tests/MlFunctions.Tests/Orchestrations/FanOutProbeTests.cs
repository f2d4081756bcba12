using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Probes;
using MlFunctions.Orchestrations.Probes;
using Moq;
using Xunit;

namespace MlFunctions.Tests.Orchestrations;

/// <summary>Orchestrator unit tests on a mocked context, as in durabletask-dotnet's samples.</summary>
public sealed class FanOutProbeTests
{
    [Fact]
    public async Task ParallelProbeSchedulesEveryStepBeforeAwaitingAny()
    {
        var context = new Mock<TaskOrchestrationContext>();
        var pending = new List<TaskCompletionSource<int>>();
        context
            .Setup(c => c.CallActivityAsync<int>(It.Is<TaskName>(n => n.Name == ActivityNames.ProbeStep), It.IsAny<object?>(), It.IsAny<TaskOptions?>()))
            .Returns(() =>
            {
                var step = new TaskCompletionSource<int>();
                pending.Add(step);
                return step.Task;
            });

        var run = FanOutProbe.RunAsync(context.Object, new FanOutProbeInput(7, 5));

        // All seven are in flight at once: that is what makes it a fan-out.
        Assert.Equal(7, pending.Count);
        Assert.False(run.IsCompleted);
        for (var i = 0; i < pending.Count; i++)
        {
            pending[i].SetResult(i);
        }

        Assert.Equal(7, await run);
        context.Verify(
            c => c.CallActivityAsync<int>(It.IsAny<TaskName>(), It.Is<object?>(o => o is ProbeStepInput && ((ProbeStepInput)o).DelayMs == 5), It.IsAny<TaskOptions?>()),
            Times.Exactly(7));
    }

    [Fact]
    public async Task SequentialProbeRunsOneStepAtATimeAndReportsProgress()
    {
        var context = new Mock<TaskOrchestrationContext>();
        var inFlight = 0;
        var maxInFlight = 0;
        context
            .Setup(c => c.CallActivityAsync<int>(It.IsAny<TaskName>(), It.IsAny<object?>(), It.IsAny<TaskOptions?>()))
            .Returns(async () =>
            {
                maxInFlight = Math.Max(maxInFlight, ++inFlight);
                await Task.Yield();
                inFlight--;
                return 0;
            });

        Assert.Equal(4, await FanOutProbe.RunAsync(context.Object, new FanOutProbeInput(4, 0, Sequential: true)));
        Assert.Equal(1, maxInFlight);
        context.Verify(c => c.SetCustomStatus(It.IsAny<object?>()), Times.Exactly(4));
    }

    [Theory]
    [InlineData(-1, 0, "count must be between 0 and 10000, got -1")]
    [InlineData(10_001, 0, "count must be between")]
    [InlineData(1, -1, "delayMs must be between 0 and 600000, got -1")]
    public async Task InvalidInputFailsBeforeAnyActivityRuns(int count, int delay, string reason)
    {
        var context = new Mock<TaskOrchestrationContext>(MockBehavior.Strict);
        var error = await Assert.ThrowsAsync<ArgumentException>(() => FanOutProbe.RunAsync(context.Object, new FanOutProbeInput(count, delay)));
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public async Task MissingInputSaysWhatTheInputLooksLike()
    {
        var context = new Mock<TaskOrchestrationContext>(MockBehavior.Strict);
        var error = await Assert.ThrowsAsync<ArgumentException>(() => FanOutProbe.RunAsync(context.Object, null));
        Assert.Contains("\"count\"", error.Message);
    }
}
