using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using MlFunctions.Api;
using MlFunctions.Api.Inference;

namespace MlFunctions.Functions;

/// <summary>The rollout routes as HTTP triggers over the shared <see cref="RolloutHandlers"/> (the local host maps the same ones).</summary>
public sealed class RolloutFunctions(RolloutHandlers handlers, ILogger<RolloutFunctions> logger)
{
    [Function("StartRollout")]
    public Task StartRollout(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = ServingRoutes.Rollouts)] HttpRequest request,
        string model,
        [DurableClient] DurableTaskClient client,
        FunctionContext context)
    {
        request.RouteValues["model"] = model;
        return ApiGuard.RunAsync(request.HttpContext, logger, () => handlers.HandleStart(request.HttpContext, client, ManagementPayloads.Factory(client, context)));
    }

    [Function("GetRollout")]
    public Task GetRollout(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ServingRoutes.Rollout)] HttpRequest request,
        string model,
        string rollout,
        [DurableClient] DurableTaskClient client)
    {
        (request.RouteValues["model"], request.RouteValues["rollout"]) = (model, rollout);
        return ApiGuard.RunAsync(request.HttpContext, logger, () => handlers.HandleGet(request.HttpContext, client));
    }

    [Function("CancelRollout")]
    public Task CancelRollout(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = ServingRoutes.RolloutCancel)] HttpRequest request,
        string model,
        string rollout,
        [DurableClient] DurableTaskClient client)
    {
        (request.RouteValues["model"], request.RouteValues["rollout"]) = (model, rollout);
        return ApiGuard.RunAsync(request.HttpContext, logger, () => handlers.HandleCancel(request.HttpContext, client));
    }
}
