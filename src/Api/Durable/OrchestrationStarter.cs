using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using MlFunctions.Orchestrations;

namespace MlFunctions.Api.Durable;

/// <summary>
/// <c>POST /api/orchestrators/{name}</c>, the Durable template's starter: the body is the input, the
/// answer is 202 with a Location header and the management links.
/// </summary>
public static class OrchestrationStarter
{
    public static async Task HandleAsync(HttpContext http, DurableTaskClient client, string name, ManagementLinkFactory links)
    {
        if (string.Equals(name, Core.OrchestrationNames.MnistPipeline, StringComparison.OrdinalIgnoreCase))
        {
            // The former MnistPipeline orchestration: its input still starts the same run, as the built-in mnist spec.
            try
            {
                var spec = OrchestrationInputs.LegacyMnistSpec(await HttpJson.ReadBodyAsync(http.Request));
                var id = ReadInstanceId(http.Request) ?? $"{spec.Name}-{Guid.NewGuid().ToString("N")[..12]}";
                await StartAsync(http, client, Core.OrchestrationNames.TrainingPipeline, spec, id, links);
            }
            catch (BadRequestException e)
            {
                await HttpJson.ErrorAsync(http, e.Status, e.Message);
            }

            return;
        }

        var orchestration = OrchestrationCatalog.Names.FirstOrDefault(n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase));
        if (orchestration is null)
        {
            await HttpJson.ErrorAsync(
                http,
                StatusCodes.Status404NotFound,
                $"unknown orchestration '{name}'; known: {string.Join(", ", OrchestrationCatalog.Names)}");
            return;
        }

        try
        {
            var instanceId = ReadInstanceId(http.Request);
            var input = await HttpJson.ReadBodyAsync(http.Request);
            OrchestrationInputs.EnsureValid(orchestration, input);
            await StartAsync(http, client, orchestration, input, instanceId, links);
        }
        catch (BadRequestException e)
        {
            await HttpJson.ErrorAsync(http, e.Status, e.Message);
        }
    }

    /// <summary>Schedules an instance and answers 202 with the links, or 409 when the id is already running.</summary>
    public static async Task StartAsync(HttpContext http, DurableTaskClient client, string orchestration, object? input, string? instanceId, ManagementLinkFactory links)
    {
        try
        {
            var options = new StartOrchestrationOptions(instanceId);
            var id = await client.ScheduleNewOrchestrationInstanceAsync(orchestration, input, options, http.RequestAborted);
            await WriteAcceptedAsync(http, await links(http, id));
        }
        catch (Exception e) when (IsAlreadyRunning(e))
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status409Conflict, e.Message);
        }
    }

    /// <summary>The 202 answer of Durable Functions' CreateCheckStatusResponse.</summary>
    public static Task WriteAcceptedAsync(HttpContext http, HttpManagementLinks links)
    {
        http.Response.Headers.Location = links.StatusQueryGetUri;
        http.Response.Headers.RetryAfter = "10";
        return HttpJson.WriteAsync(http, StatusCodes.Status202Accepted, links);
    }

    /// <summary>
    /// An optional caller-chosen instance id (<c>?instanceId=</c>) makes a start idempotent. Azure
    /// Storage keys rows and blobs by it, so characters that break those keys are refused.
    /// </summary>
    public static string? ReadInstanceId(HttpRequest request)
    {
        string? id = request.Query["instanceId"];
        if (id is null)
        {
            return null;
        }

        if (id.Length is 0 or > 100 || id.Any(c => char.IsControl(c) || c is '/' or '\\' or '#' or '?'))
        {
            throw new BadRequestException("instanceId must be 1-100 characters without '/', '\\', '#', '?' or control characters");
        }

        return id;
    }

    // The local client throws InstanceAlreadyRunningException; the Functions (gRPC) client throws an
    // RpcException with status AlreadyExists, a type this project does not reference.
    internal static bool IsAlreadyRunning(Exception e) =>
        e is InstanceAlreadyRunningException ||
        e.GetType().Name == "RpcException" && e.Message.Contains("AlreadyExists", StringComparison.Ordinal);
}

/// <summary>A start with an instance id that is still pending or running.</summary>
public sealed class InstanceAlreadyRunningException(string instanceId, Exception inner)
    : Exception($"An orchestration with instance id '{instanceId}' is already pending or running.", inner)
{
    public string InstanceId { get; } = instanceId;
}
