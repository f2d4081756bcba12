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
            async (_, instanceId) =>
            {
                // The extension knows its webhook URL and system key; let it build the links.
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
            }));
}
