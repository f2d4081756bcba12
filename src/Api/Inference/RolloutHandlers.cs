using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Client;
using MlFunctions.Api.Durable;
using MlFunctions.Core;
using MlFunctions.Core.OnlineValidation;
using MlFunctions.Core.Registry;

namespace MlFunctions.Api.Inference;

/// <summary>
/// Start, read and cancel a model's staged rollout (the <c>Rollout</c> orchestration), shared by both hosts:
/// <c>POST api/serving/{model}/rollouts</c>, <c>GET api/serving/{model}/rollouts/{rollout}</c>,
/// <c>POST api/serving/{model}/rollouts/{rollout}/cancel</c>.
/// </summary>
public sealed class RolloutHandlers(IModelRegistry registry)
{
    /// <summary>
    /// The body is a <see cref="RolloutSpec"/>. 404 for an unknown model; 400 listing every problem (missing or unknown
    /// aliases, both aliases on one version, bad stages, holds or criteria); 409 while another rollout of the model runs
    /// (two would fight over its policy); else 202 with the management links. Both aliases' versions are pinned now.
    /// </summary>
    public async Task HandleStart(HttpContext http, DurableTaskClient client, ManagementLinkFactory links)
    {
        string model = Route(http, "model");
        if (!RegistryNames.IsValid(model) || (await registry.ListVersionsAsync(model, http.RequestAborted)).Count == 0)
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status404NotFound, $"unknown model '{model}'");
            return;
        }

        var body = await HttpJson.ReadBodyAsync(http.Request);
        var spec = OrchestrationInputs.Read<RolloutSpec>(body, "rollout spec")
            ?? throw new BadRequestException("the body must be a rollout spec: {\"challenger\": \"<alias>\", \"stages\": [5, 25, 50, 100], \"holdSeconds\": 300, ...}");
        var versions = new Dictionary<string, int?>(StringComparer.Ordinal);
        foreach (var alias in new[] { spec.Challenger, spec.ChampionAlias }.OfType<string>().Where(RegistryNames.IsValid).Distinct())
            versions[alias] = (await registry.GetAliasAsync(model, alias, http.RequestAborted))?.Version;
        var problems = spec.Validate(a => versions.GetValueOrDefault(a));
        if (problems.Count > 0)
        {
            await HttpJson.ProblemsAsync(http, "rollout spec", problems);
            return;
        }

        var running = client.GetAllInstancesAsync(new OrchestrationQuery
        {
            InstanceIdPrefix = Prefix(model),
            Statuses = [OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Suspended],
        });
        await foreach (var other in running.WithCancellation(http.RequestAborted))
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status409Conflict,
                $"rollout '{other.InstanceId}' of '{model}' is still {other.RuntimeStatus.ToString().ToLowerInvariant()}; cancel it or wait for it to end");
            return;
        }

        var id = OrchestrationStarter.ReadInstanceId(http.Request) is { } chosen
            ? (chosen.StartsWith(Prefix(model), StringComparison.Ordinal) ? chosen : throw new BadRequestException($"a rollout's instanceId must start with '{Prefix(model)}'"))
            : Prefix(model) + Guid.NewGuid().ToString("N")[..12];
        var input = new RolloutInput(model, spec, versions[spec.ChampionAlias]!.Value, versions[spec.Challenger!]!.Value);
        await OrchestrationStarter.StartAsync(http, client, OrchestrationNames.Rollout, input, id, links);
    }

    /// <summary>GET: the runtime status and the rollout report (stages, last verdict and checks, outcome and why).</summary>
    public async Task HandleGet(HttpContext http, DurableTaskClient client)
    {
        var (model, metadata) = await FindAsync(http, client);
        var report = metadata.IsCompleted && metadata.SerializedOutput is { } output ? output : metadata.SerializedCustomStatus;
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new
        {
            id = metadata.InstanceId,
            model,
            runtimeStatus = metadata.RuntimeStatus.ToString(),
            createdAt = metadata.CreatedAt,
            lastUpdatedAt = metadata.LastUpdatedAt,
            rollout = report is null ? (JsonElement?)null : JsonDocument.Parse(report).RootElement.Clone(),
            failure = metadata.FailureDetails?.ErrorMessage,
        });
    }

    /// <summary>
    /// POST .../cancel with an optional {"reason": "..."}: the rollout puts the policy back to champion only and ends as
    /// cancelled (202); 409 when it has already ended.
    /// </summary>
    public async Task HandleCancel(HttpContext http, DurableTaskClient client)
    {
        var (_, metadata) = await FindAsync(http, client);
        if (metadata.IsCompleted)
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status409Conflict, $"rollout '{metadata.InstanceId}' has already ended ({metadata.RuntimeStatus})");
            return;
        }

        var body = await HttpJson.ReadBodyAsync(http.Request);
        string? reason = body is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
        await client.RaiseEventAsync(metadata.InstanceId, RolloutEvents.Cancel, reason ?? "cancelled through the API", http.RequestAborted);
        await HttpJson.WriteAsync(http, StatusCodes.Status202Accepted, new { id = metadata.InstanceId, cancelling = true });
    }

    private static string Prefix(string model) => $"rollout-{model}-";

    private static async Task<(string Model, OrchestrationMetadata Metadata)> FindAsync(HttpContext http, DurableTaskClient client)
    {
        string model = Route(http, "model"), id = Route(http, "rollout");
        var metadata = id.StartsWith(Prefix(model), StringComparison.Ordinal) && SafeNames.IsId(id)
            ? await client.GetInstancesAsync(id, getInputsAndOutputs: true, http.RequestAborted)
            : null;
        if (metadata is null || metadata.Name != OrchestrationNames.Rollout)
            throw new BadRequestException($"model '{model}' has no rollout '{id}'", StatusCodes.Status404NotFound);
        return (model, metadata);
    }

    private static string Route(HttpContext http, string name) => (string)http.Request.RouteValues[name]!;
}
