using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using MlFunctions.Api;
using MlFunctions.Api.Durable;

namespace MlFunctions.Functions;

/// <summary>
/// HTTP triggers (ASP.NET Core integration) over the shared handlers the local host maps too. The
/// Durable management API under /runtime/webhooks/durabletask comes from the Durable extension here.
/// </summary>
public sealed class HttpFunctions(ILogger<HttpFunctions> logger)
{
    [Function("Health")]
    public Task Health([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ApiRoutes.Health)] HttpRequest request) =>
        HealthHandler.HandleAsync(request.HttpContext, "functions");

    [Function("StartOrchestration")]
    public Task StartOrchestration(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = ApiRoutes.StartOrchestration)] HttpRequest request,
        string name,
        [DurableClient] DurableTaskClient client,
        FunctionContext context) =>
        ApiGuard.RunAsync(request.HttpContext, logger, () => OrchestrationStarter.HandleAsync(
            request.HttpContext,
            client,
            name,
            ManagementPayloads.Factory(client, context)));
}

/// <summary>Management links for a started instance, as the Durable extension builds them (it knows its webhook URL and system key).</summary>
internal static class ManagementPayloads
{
    public static ManagementLinkFactory Factory(DurableTaskClient client, FunctionContext context) =>
        async (_, instanceId) =>
        {
            var data = await context.GetHttpRequestDataAsync();
            var payload = client.CreateHttpManagementPayload(instanceId, data);
            return new HttpManagementLinks(
                payload.Id ?? string.Empty,
                payload.StatusQueryGetUri ?? string.Empty,
                payload.SendEventPostUri ?? string.Empty,
                payload.TerminatePostUri ?? string.Empty,
                payload.PurgeHistoryDeleteUri ?? string.Empty,
                payload.RestartPostUri ?? string.Empty,
                payload.SuspendPostUri ?? string.Empty,
                payload.ResumePostUri ?? string.Empty);
        };
}
