using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.OnlineValidation;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Registry;
using MlFunctions.Orchestrations.Rollouts;
using MlFunctions.Tests.Pipelines;
using Moq;
using Xunit;

namespace MlFunctions.Tests.Orchestrations;

/// <summary>The Rollout orchestrator on a mocked context: stage policies, durable holds, promotion, rollback and cancel.</summary>
public sealed class RolloutOrchestrationTests
{
    private static readonly RolloutSpec Spec = new() { Challenger = "challenger", HoldSeconds = 60, PollSeconds = 10 };

    private sealed class Fixture
    {
        public OrchestrationHarness H { get; } = new("rollout-m-1");
        public List<RoutingPolicy> Policies { get; } = [];
        public List<MoveModelAliasInput> Moves { get; } = [];
        public List<ReadRolloutStatsInput> Reads { get; } = [];
        public TaskCompletionSource<string?> Cancel { get; } = new();

        public Fixture(Func<double, int, RolloutObservation> observe)
        {
            H.Context.Setup(c => c.WaitForExternalEvent<string?>(RolloutEvents.Cancel, It.IsAny<CancellationToken>())).Returns(Cancel.Task);
            H.On<SetRoutingPolicyInput, SetRoutingPolicyResult>(ActivityNames.SetRoutingPolicy, i =>
            {
                Policies.Add(i.Policy);
                return new SetRoutingPolicyResult($"g{Policies.Count}");
            });
            H.On<MoveModelAliasInput, ModelAlias>(ActivityNames.MoveModelAlias, i =>
            {
                Moves.Add(i);
                return new ModelAlias { Model = i.Model, Alias = i.Alias, Version = i.Version };
            });
            H.On<ReadRolloutStatsInput, RolloutObservation>(ActivityNames.ReadRolloutStats, i =>
            {
                Reads.Add(i);
                double share = Policies[^1].Weights![i.Challenger];
                return observe(share, Reads.Count(r => r.Generation == i.Generation));
            });
        }

        public Task<RolloutReport> RunAsync(RolloutSpec? spec = null) =>
            H.RunAsync(c => Rollout.RunAsync(c, new RolloutInput("m", spec ?? Spec, 3, 7)));
    }

    private static RolloutObservation Healthy(double share, int look, double challengerAccuracy = 0.95)
    {
        long requests = 400L * look, challenger = (long)(requests * share / 100);
        return new RolloutObservation(
            new ArmObservation("champion", 3, requests - challenger, 0, 12, requests - challenger, 0.9 * (requests - challenger)),
            new ArmObservation("challenger", 7, challenger, 0, 11, challenger, challengerAccuracy * challenger));
    }

    [Fact]
    public async Task A_challenger_that_holds_goes_through_every_stage_and_is_promoted()
    {
        var f = new Fixture((share, look) => Healthy(share, look));
        var report = await f.RunAsync();

        Assert.Equal(RolloutOutcomes.Promoted, report.Outcome);
        Assert.Equal([5.0, 25.0, 50.0], f.Policies.Where(p => p.Kind == RoutingPolicy.Canary).Select(p => p.Weights!["challenger"]));
        Assert.All(f.Policies.Where(p => p.Kind == RoutingPolicy.Canary), p => Assert.Equal(100, p.Weights!.Values.Sum()));
        Assert.Equal((RoutingPolicy.Fixed, "champion"), (f.Policies[^1].Kind, f.Policies[^1].Alias));
        Assert.Equal(new MoveModelAliasInput("m", RegistryNames.Champion, 7), Assert.Single(f.Moves));
        Assert.Equal([5.0, 25.0, 50.0, 100.0], report.Stages.Select(s => s.Percent));
        Assert.Contains("now points at v7 (was v3)", report.Reason);

        // Each stage held its 60 s on durable timers (one poll every 10 s), and read only its own generation.
        foreach (var stage in report.Stages.Take(3))
        {
            Assert.Equal(RolloutVerdict.Advance, stage.Verdict!.Action);
            Assert.Equal(TimeSpan.FromSeconds(60), stage.EndedAt!.Value - stage.StartedAt);
        }
        Assert.Equal(18, f.H.Timers.Count);
        Assert.Equal(["g1", "g2", "g3"], f.Reads.Select(r => r.Generation).Distinct());
    }

    [Fact]
    public async Task A_much_worse_challenger_is_rolled_back_to_the_champion_with_the_reason_and_never_promoted()
    {
        // Fine at 5 %; at 25 % its accuracy collapses.
        var f = new Fixture((share, look) => Healthy(share, look, challengerAccuracy: share >= 25 ? 0.4 : 0.95));
        var report = await f.RunAsync();

        Assert.Equal(RolloutOutcomes.RolledBack, report.Outcome);
        Assert.Contains("rolled back at the 25% stage", report.Reason);
        Assert.Contains("online accuracy 0.4", report.Reason);
        Assert.Empty(f.Moves);
        Assert.Equal(3, f.Policies.Count);
        Assert.Equal((RoutingPolicy.Fixed, "champion"), (f.Policies[^1].Kind, f.Policies[^1].Alias));
        Assert.Equal(0, report.Percent);
        Assert.Equal(RolloutVerdict.Rollback, report.Stages[^1].Verdict!.Action);
        Assert.Equal(RolloutCheck.Fail, report.Stages[^1].Verdict!.Checks.Single(c => c.Name == "accuracy").State);
        // It rolled back at the first look with enough feedback, without waiting out the hold.
        Assert.True(report.Stages[^1].EndedAt!.Value - report.Stages[^1].StartedAt < TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task A_cancel_event_puts_the_policy_back_to_champion_and_ends_cancelled()
    {
        Fixture? f = null;
        f = new Fixture((share, look) =>
        {
            if (look == 2)
                f!.Cancel.TrySetResult("bad dashboard");
            return Healthy(share, look);
        });
        var report = await f.RunAsync();

        Assert.Equal(RolloutOutcomes.Cancelled, report.Outcome);
        Assert.Contains("bad dashboard", report.Reason);
        Assert.Empty(f.Moves);
        Assert.Equal((RoutingPolicy.Fixed, "champion"), (f.Policies[^1].Kind, f.Policies[^1].Alias));
    }

    [Fact]
    public async Task A_failing_activity_ends_as_failed_after_serving_the_champion_alone_again()
    {
        var f = new Fixture((share, look) => throw OrchestrationHarness.Failure(ActivityNames.ReadRolloutStats, "RequestFailedException", "storage is down"));
        var report = await f.RunAsync();
        Assert.Equal(RolloutOutcomes.Failed, report.Outcome);
        Assert.Contains("storage is down", report.Reason);
        Assert.Equal(RoutingPolicy.Fixed, f.Policies[^1].Kind);
    }
}
