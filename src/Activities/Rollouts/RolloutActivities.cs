using System.Text.Json;
using MlFunctions.Core.OnlineValidation;
using MlFunctions.Core.Registry;
using MlFunctions.Serving.Online;

namespace MlFunctions.Activities.Rollouts;

/// <summary>
/// Puts a routing policy on a model (a rollout stage's canary, or fixed champion at its end). Idempotent: when the
/// stored policy already equals the requested one its generation is returned unchanged, so a retried or replayed
/// activity does not restart the stage's statistics. This host's policy cache is dropped at once; other hosts see the
/// new policy within <c>Serving:PolicyRefreshInterval</c>, and count their requests under the generation they routed by.
/// </summary>
public sealed class SetRoutingPolicyActivity(BlobServingStore store, PolicyRouter? router = null) : IActivity<SetRoutingPolicyInput, SetRoutingPolicyResult>
{
    public async Task<SetRoutingPolicyResult> RunAsync(SetRoutingPolicyInput input, ActivityCall call)
    {
        RegistryNames.Validate(input.Model, "model");
        var current = await store.GetPolicyAsync(input.Model, call.Cancellation);
        if (current is not null && Same(current.Policy, input.Policy))
            return new SetRoutingPolicyResult(current.Generation);
        var doc = await store.PutPolicyAsync(input.Model, input.Policy, ifMatch: null, call.Cancellation);
        router?.Invalidate(input.Model);
        return new SetRoutingPolicyResult(doc.Generation);
    }

    private static bool Same(RoutingPolicy a, RoutingPolicy b) =>
        JsonSerializer.Serialize(Normalized(a), RegistryJson.Options) == JsonSerializer.Serialize(Normalized(b), RegistryJson.Options);

    // Weights compare by content, not by the order a JSON object happened to list them in.
    private static RoutingPolicy Normalized(RoutingPolicy p) =>
        p.Weights is null ? p : p with { Weights = p.Weights.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => kv.Value) };
}

/// <summary>
/// What serving recorded for both sides of a rollout stage under its policy generation: requests, server errors and
/// p99 latency (the statistics blob every host flushes into), and label/reward feedback (the policy's learned state).
/// </summary>
public sealed class ReadRolloutStatsActivity(BlobServingStore store) : IActivity<ReadRolloutStatsInput, RolloutObservation>
{
    public async Task<RolloutObservation> RunAsync(ReadRolloutStatsInput input, ActivityCall call)
    {
        RegistryNames.Validate(input.Model, "model");
        var stats = await store.GetStatsAsync(input.Model, input.Generation, call.Cancellation);
        var state = await store.GetStateAsync(input.Model, input.Generation, call.Cancellation);
        ArmObservation Arm(string alias, int version)
        {
            var s = stats.Alias(alias);
            var f = state.Arm(alias);
            return new ArmObservation(alias, version, s.Requests, s.Errors, s.PercentileMs(0.99), f.Feedback, f.RewardSum, s.LatencyBuckets);
        }
        return new RolloutObservation(Arm(input.Champion, input.ChampionVersion), Arm(input.Challenger, input.ChallengerVersion));
    }
}
