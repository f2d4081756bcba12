using MlFunctions.Core.Training;
using Xunit;

namespace MlFunctions.Tests.Training;

/// <summary>TrainModel's decisions about each event, without an orchestration around them.</summary>
public sealed class TrainingDecisionsTests
{
    private static TrainingEvent Event(string kind, int attempt = 2) => new()
    {
        JobId = "j1",
        Kind = kind,
        Attempt = attempt,
        Metrics = kind == TrainingEvents.Progress ? new EpochMetrics(3, 0.5, 0.6, 0.8, 1000, 2) : null,
        Result = kind is TrainingEvents.Completed or TrainingEvents.Stopped ? Result() : null,
        Error = kind == TrainingEvents.Failed ? "CUDA out of memory" : null,
    };

    private static TrainingResult Result() => new()
    {
        JobId = "j1",
        Model = "mlp",
        Device = "cpu",
        History = [new EpochMetrics(1, 0.9, 0.8, 0.7, 1000, 2), new EpochMetrics(2, 0.7, 0.6, 0.75, 1000, 2)],
    };

    [Fact]
    public void Events_of_the_current_attempt_map_to_their_actions()
    {
        Assert.Equal(TrainingAction.Progress, TrainingDecisions.OnEvent(Event(TrainingEvents.Progress), 2).Action);
        Assert.Equal(3, TrainingDecisions.OnEvent(Event(TrainingEvents.Progress), 2).Metrics!.Epoch);
        Assert.Equal(TrainingAction.Heartbeat, TrainingDecisions.OnEvent(Event(TrainingEvents.Heartbeat), 2).Action);
        Assert.Equal(TrainingAction.RequestStop, TrainingDecisions.OnEvent(Event(TrainingEvents.StopRequested), 2).Action);
        var failed = TrainingDecisions.OnEvent(Event(TrainingEvents.Failed), 2);
        Assert.Equal(TrainingAction.FailAttempt, failed.Action);
        Assert.Equal("attempt 2: CUDA out of memory", failed.Failure);
        Assert.Equal("attempt 2: the worker reported a failure without a reason",
            TrainingDecisions.OnEvent(Event(TrainingEvents.Failed) with { Error = null }, 2).Failure);
        Assert.Equal(TrainingAction.Ignore, TrainingDecisions.OnEvent(Event("TrainingSomethingNew"), 2).Action);
    }

    [Fact]
    public void An_earlier_attempts_worker_counts_only_with_a_result()
    {
        Assert.Equal(TrainingAction.Ignore, TrainingDecisions.OnEvent(Event(TrainingEvents.Progress, attempt: 1), 2).Action);
        Assert.Equal(TrainingAction.Ignore, TrainingDecisions.OnEvent(Event(TrainingEvents.Heartbeat, attempt: 1), 2).Action);
        Assert.Equal(TrainingAction.Ignore, TrainingDecisions.OnEvent(Event(TrainingEvents.Failed, attempt: 1), 2).Action);
        Assert.Equal(TrainingAction.Finish, TrainingDecisions.OnEvent(Event(TrainingEvents.Completed, attempt: 1), 2).Action);
    }

    [Fact]
    public void A_stopped_result_is_marked_early_and_a_result_less_end_is_ignored()
    {
        var stopped = TrainingDecisions.OnEvent(Event(TrainingEvents.Stopped), 2);
        Assert.Equal(TrainingAction.Finish, stopped.Action);
        Assert.True(stopped.Result!.StoppedEarly);
        Assert.Equal("stopped early", TrainingDecisions.Finished("j1", 2, stopped.Result).State);

        var completed = TrainingDecisions.OnEvent(Event(TrainingEvents.Completed), 2);
        Assert.False(completed.Result!.StoppedEarly);
        var status = TrainingDecisions.Finished("j1", 2, completed.Result);
        Assert.Equal(("completed", 2, 2), (status.State, status.EpochsDone, status.Last!.Epoch));

        Assert.Equal(TrainingAction.Ignore, TrainingDecisions.OnEvent(Event(TrainingEvents.Completed) with { Result = null }, 2).Action);
    }

    [Fact]
    public void Failure_messages_name_the_attempt_the_silence_and_the_last_reason()
    {
        Assert.Equal("attempt 3: no event from the worker for 300 s", TrainingDecisions.Silent(3, TimeSpan.FromMinutes(5)));
        Assert.Equal("training job j1 failed after 3 attempt(s); last failure: attempt 3: boom", TrainingDecisions.Exhausted("j1", 3, "attempt 3: boom"));
    }
}
