using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.OnlineValidation;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Registry;

namespace MlFunctions.Orchestrations.Rollouts;

/// <summary>
/// A staged canary rollout of one alias over a model's traffic: for each stage below 100 % a canary policy
/// (champion 100 − p, challenger p) is put on the model, and every poll the stage's statistics are read and judged by
/// <see cref="RolloutDecision"/> (hold, advance or roll back). The 100 % stage is the promotion: the champion alias
/// moves to the challenger's pinned version (the registry's ETag-checked move, as a pipeline's promote step) and the
/// policy becomes fixed champion. A rollback, a cancel event or a failed activity puts the policy back to fixed
/// champion and ends with the reason. Control flow only: timers are durable, I/O is in the activities, so it resumes
/// after a crash or host restart where it stopped.
/// </summary>
public static class Rollout
{
    private static readonly TaskOptions Io = TaskOptions.FromRetryPolicy(new RetryPolicy(5, TimeSpan.FromSeconds(2), backoffCoefficient: 2));

    public static async Task<RolloutReport> RunAsync(TaskOrchestrationContext context, RolloutInput? input)
    {
        if (input?.Spec.Challenger is null)
            throw new ArgumentException("Rollout needs a RolloutInput with a challenger alias");
        var spec = input.Spec;
        string model = input.Model, champion = spec.ChampionAlias, challenger = spec.Challenger;
        var report = new RolloutReport
        {
            Model = model,
            Champion = champion,
            Challenger = challenger,
            ChampionVersion = input.ChampionVersion,
            ChallengerVersion = input.ChallengerVersion,
        };
        var cancel = context.WaitForExternalEvent<string?>(RolloutEvents.Cancel);
        context.SetCustomStatus(report);

        async Task<RolloutReport> EndAsync(string outcome, string reason)
        {
            if (outcome != RolloutOutcomes.Promoted)
                await SetPolicyAsync(context, model, new RoutingPolicy { Kind = RoutingPolicy.Fixed, Alias = champion });
            report = report with { Outcome = outcome, Reason = reason, Percent = outcome == RolloutOutcomes.Promoted ? 100 : 0 };
            context.SetCustomStatus(report);
            return report;
        }

        try
        {
            foreach (double percent in spec.StagesOrDefault)
            {
                var started = context.CurrentUtcDateTime;
                if (percent >= 100)
                {
                    await context.CallActivityAsync<ModelAlias>(ActivityNames.MoveModelAlias, new MoveModelAliasInput(model, champion, input.ChallengerVersion), Io);
                    var final = await SetPolicyAsync(context, model, new RoutingPolicy { Kind = RoutingPolicy.Fixed, Alias = champion });
                    report.Stages.Add(new RolloutStageRecord(100, final, started, context.CurrentUtcDateTime, null, null));
                    return await EndAsync(RolloutOutcomes.Promoted,
                        $"'{challenger}' (v{input.ChallengerVersion}) held at every stage; '{champion}' now points at v{input.ChallengerVersion} (was v{input.ChampionVersion}).");
                }

                var generation = await SetPolicyAsync(context, model, new RoutingPolicy
                {
                    Kind = RoutingPolicy.Canary,
                    Weights = new Dictionary<string, double> { [champion] = 100 - percent, [challenger] = percent },
                    Seed = spec.Seed,
                });
                report.Stages.Add(new RolloutStageRecord(percent, generation, started, null, null, null));
                report = report with { Percent = percent };
                context.SetCustomStatus(report);

                while (true)
                {
                    var now = context.CurrentUtcDateTime;
                    var deadline = started + spec.MaxStage;
                    var fireAt = now + spec.Poll < deadline ? now + spec.Poll : deadline;
                    using (var stopTimer = new CancellationTokenSource())
                    {
                        var timer = context.CreateTimer(fireAt, stopTimer.Token);
                        if (await Task.WhenAny(timer, cancel) == cancel)
                        {
                            stopTimer.Cancel();
                            string why = await cancel is { Length: > 0 } said ? said : "no reason given";
                            return await EndAsync(RolloutOutcomes.Cancelled, $"cancelled at the {percent}% stage: {why}");
                        }
                    }

                    var observation = await context.CallActivityAsync<RolloutObservation>(ActivityNames.ReadRolloutStats,
                        new ReadRolloutStatsInput(model, generation, champion, input.ChampionVersion, challenger, input.ChallengerVersion), Io);
                    var verdict = RolloutDecision.Evaluate(spec, observation, context.CurrentUtcDateTime - started);
                    bool done = verdict.Action != RolloutVerdict.Hold;
                    report.Stages[^1] = report.Stages[^1] with { Verdict = verdict, Observation = observation, EndedAt = done ? context.CurrentUtcDateTime : null };
                    report = report with { Reason = verdict.Reason };
                    context.SetCustomStatus(report);
                    if (verdict.Action == RolloutVerdict.Rollback)
                        return await EndAsync(RolloutOutcomes.RolledBack, $"rolled back at the {percent}% stage: {verdict.Reason}");
                    if (verdict.Action == RolloutVerdict.Advance)
                        break;
                }
            }
            throw new InvalidOperationException("the stages did not end at 100%"); // Validate refuses such specs
        }
        catch (TaskFailedException e)
        {
            // An activity failed past its retries: serve the champion alone again, and say which step failed.
            return await EndAsync(RolloutOutcomes.Failed, $"{e.TaskName} failed: {e.FailureDetails.ErrorMessage}");
        }
    }

    private static async Task<string> SetPolicyAsync(TaskOrchestrationContext context, string model, RoutingPolicy policy) =>
        (await context.CallActivityAsync<SetRoutingPolicyResult>(ActivityNames.SetRoutingPolicy, new SetRoutingPolicyInput(model, policy), Io)).Generation;
}
