using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Client;

namespace MlFunctions.Api.Durable;

/// <summary>
/// Durable Functions' HTTP management API (<c>/runtime/webhooks/durabletask/instances</c>) over any
/// <see cref="DurableTaskClient"/>. Status codes follow the extension's HttpApiHandler: 202 while an
/// instance runs, 200 once it is terminal (500 for Failed with returnInternalServerErrorOnFailure),
/// 404 unknown, 410 for events or terminate on a finished instance, 412 for purging a running one.
/// Unlike the extension, every 4xx carries a <c>{"error": ...}</c> body that says what is wrong.
/// </summary>
public static class DurableManagementApi
{
    /// <summary>Reads the DTFx history of an instance as JSON; null where the host has none.</summary>
    public delegate Task<string?> HistoryReader(string instanceId);

    public static async Task GetStatusAsync(HttpContext http, DurableTaskClient client, string instanceId, HistoryReader? history)
    {
        var showInput = QueryBool(http, "showInput", true);
        var showHistory = QueryBool(http, "showHistory", false);
        var showHistoryOutput = QueryBool(http, "showHistoryOutput", false);
        var failAs500 = QueryBool(http, "returnInternalServerErrorOnFailure", false);

        var metadata = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true, http.RequestAborted);
        if (metadata is null)
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status404NotFound, $"no orchestration instance '{instanceId}'");
            return;
        }

        var body = ToStatus(metadata, showInput);
        if (showHistory && history is not null)
        {
            body["historyEvents"] = ToHistory(await history(instanceId), showHistoryOutput);
        }

        int status;
        switch (metadata.RuntimeStatus)
        {
            case OrchestrationRuntimeStatus.Pending:
            case OrchestrationRuntimeStatus.Running:
#pragma warning disable CS0618 // ContinuedAsNew is obsolete in the SDK but DTFx still reports it.
            case OrchestrationRuntimeStatus.ContinuedAsNew:
#pragma warning restore CS0618
            case OrchestrationRuntimeStatus.Suspended:
                status = StatusCodes.Status202Accepted;
                http.Response.Headers.Location = $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}{http.Request.Path}{http.Request.QueryString}";
                http.Response.Headers.RetryAfter = "5";
                break;
            case OrchestrationRuntimeStatus.Failed:
                status = failAs500 ? StatusCodes.Status500InternalServerError : StatusCodes.Status200OK;
                break;
            default:
                status = StatusCodes.Status200OK;
                break;
        }

        await HttpJson.WriteAsync(http, status, body);
    }

    public static async Task QueryAsync(HttpContext http, DurableTaskClient client)
    {
        var query = new OrchestrationQuery
        {
            CreatedFrom = QueryDate(http, "createdTimeFrom"),
            CreatedTo = QueryDate(http, "createdTimeTo"),
            Statuses = QueryStatuses(http),
            InstanceIdPrefix = http.Request.Query["instanceIdPrefix"].FirstOrDefault(),
            PageSize = QueryInt(http, "top") ?? OrchestrationQuery.DefaultPageSize,
            FetchInputsAndOutputs = QueryBool(http, "showInput", false),
            ContinuationToken = http.Request.Headers["x-ms-continuation-token"].FirstOrDefault(),
        };

        var showInput = query.FetchInputsAndOutputs;
        await foreach (var page in client.GetAllInstancesAsync(query).AsPages(query.ContinuationToken, query.PageSize))
        {
            http.Response.Headers["x-ms-continuation-token"] = page.ContinuationToken ?? string.Empty;
            await HttpJson.WriteAsync(http, StatusCodes.Status200OK, page.Values.Select(m => ToStatus(m, showInput)).ToList());
            return;
        }

        http.Response.Headers["x-ms-continuation-token"] = string.Empty;
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, Array.Empty<JsonObject>());
    }

    public static async Task RaiseEventAsync(HttpContext http, DurableTaskClient client, string instanceId, string eventName)
    {
        var metadata = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: false, http.RequestAborted);
        if (metadata is null)
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status404NotFound, $"no orchestration instance '{instanceId}'");
            return;
        }

        if (metadata.IsCompleted)
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status410Gone, $"instance '{instanceId}' is {metadata.RuntimeStatus}; it takes no more events");
            return;
        }

        if (!IsJson(http.Request.ContentType))
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status400BadRequest, "Only application/json request content is supported");
            return;
        }

        try
        {
            var payload = await HttpJson.ReadBodyAsync(http.Request);
            await client.RaiseEventAsync(instanceId, eventName, payload, http.RequestAborted);
            http.Response.StatusCode = StatusCodes.Status202Accepted;
        }
        catch (BadRequestException e)
        {
            await HttpJson.ErrorAsync(http, e.Status, e.Message);
        }
    }

    public static Task TerminateAsync(HttpContext http, DurableTaskClient client, string instanceId) =>
        ChangeRunningAsync(http, client, instanceId, reason =>
            client.TerminateInstanceAsync(instanceId, new TerminateInstanceOptions(reason), http.RequestAborted));

    public static Task SuspendAsync(HttpContext http, DurableTaskClient client, string instanceId) =>
        ChangeRunningAsync(http, client, instanceId, reason => client.SuspendInstanceAsync(instanceId, reason, http.RequestAborted));

    public static Task ResumeAsync(HttpContext http, DurableTaskClient client, string instanceId) =>
        ChangeRunningAsync(http, client, instanceId, reason => client.ResumeInstanceAsync(instanceId, reason, http.RequestAborted));

    public static async Task PurgeAsync(HttpContext http, DurableTaskClient client, string instanceId)
    {
        var metadata = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: false, http.RequestAborted);
        if (metadata is null)
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status404NotFound, $"no orchestration instance '{instanceId}'");
            return;
        }

        if (!metadata.IsCompleted)
        {
            await HttpJson.ErrorAsync(
                http,
                StatusCodes.Status412PreconditionFailed,
                $"Only orchestrations in a terminal state can be purged, but the orchestration with instance ID {instanceId} has status {metadata.RuntimeStatus}");
            return;
        }

        var result = await client.PurgeInstanceAsync(instanceId, cancellation: http.RequestAborted);
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new { instancesDeleted = result.PurgedInstanceCount });
    }

    public static async Task PurgeManyAsync(HttpContext http, DurableTaskClient client)
    {
        DateTimeOffset? from;
        try
        {
            from = QueryDate(http, "createdTimeFrom");
        }
        catch (BadRequestException e)
        {
            await HttpJson.ErrorAsync(http, e.Status, e.Message);
            return;
        }

        if (from is null)
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status400BadRequest, "Please provide value for 'createdTimeFrom' parameter.");
            return;
        }

        var filter = new PurgeInstancesFilter(from, QueryDate(http, "createdTimeTo") ?? DateTimeOffset.UtcNow, QueryStatuses(http));
        var result = await client.PurgeAllInstancesAsync(filter, http.RequestAborted);
        if (result.PurgedInstanceCount == 0)
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status404NotFound, "no instances matched the filter");
            return;
        }

        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new { instancesDeleted = result.PurgedInstanceCount });
    }

    /// <summary>The status payload, in the extension's property order and date format.</summary>
    public static JsonObject ToStatus(OrchestrationMetadata metadata, bool showInput)
    {
        // Durable Functions reports a failed instance's reason as its output.
        var output = metadata.RuntimeStatus == OrchestrationRuntimeStatus.Failed && metadata.FailureDetails is { } failure
            ? JsonValue.Create($"{failure.ErrorType}: {failure.ErrorMessage}")
            : ParseOrString(metadata.SerializedOutput);

        return new JsonObject
        {
            ["name"] = metadata.Name,
            ["instanceId"] = metadata.InstanceId,
            ["runtimeStatus"] = metadata.RuntimeStatus.ToString(),
            ["input"] = showInput ? ParseOrString(metadata.SerializedInput) : null,
            ["customStatus"] = ParseOrString(metadata.SerializedCustomStatus),
            ["output"] = output,
            ["createdTime"] = Iso(metadata.CreatedAt),
            ["lastUpdatedTime"] = Iso(metadata.LastUpdatedAt),
        };
    }

    private static async Task ChangeRunningAsync(HttpContext http, DurableTaskClient client, string instanceId, Func<string?, Task> change)
    {
        var metadata = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: false, http.RequestAborted);
        if (metadata is null)
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status404NotFound, $"no orchestration instance '{instanceId}'");
            return;
        }

        if (metadata.IsCompleted)
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status410Gone, $"instance '{instanceId}' is already {metadata.RuntimeStatus}");
            return;
        }

        await change(http.Request.Query["reason"].FirstOrDefault());
        http.Response.StatusCode = StatusCodes.Status202Accepted;
    }

    private static JsonArray ToHistory(string? historyJson, bool showOutput)
    {
        var events = new JsonArray();
        if (string.IsNullOrEmpty(historyJson) || JsonNode.Parse(historyJson) is not JsonArray raw)
        {
            return events;
        }

        foreach (var node in raw.OfType<JsonObject>())
        {
            var item = new JsonObject();
            foreach (var (key, value) in node)
            {
                // DTFx stores .NET type names ("$type") and large payloads; the API shows neither.
                if (key.StartsWith('$') || (!showOutput && key is "Result" or "Input"))
                {
                    continue;
                }

                item[key] = value?.DeepClone();
            }

            events.Add(item);
        }

        return events;
    }

    private static JsonNode? ParseOrString(string? serialized)
    {
        if (serialized is null)
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(serialized);
        }
        catch (JsonException)
        {
            return JsonValue.Create(serialized);
        }
    }

    private static string Iso(DateTimeOffset time) =>
        time.UtcDateTime.ToString("s", CultureInfo.InvariantCulture) + "Z";

    private static bool IsJson(string? contentType) =>
        contentType is not null && contentType.Split(';')[0].Trim().Equals("application/json", StringComparison.OrdinalIgnoreCase);

    private static bool QueryBool(HttpContext http, string name, bool fallback) =>
        bool.TryParse(http.Request.Query[name].FirstOrDefault(), out var value) ? value : fallback;

    private static int? QueryInt(HttpContext http, string name) =>
        int.TryParse(http.Request.Query[name].FirstOrDefault(), out var value) && value > 0 ? value : null;

    private static DateTimeOffset? QueryDate(HttpContext http, string name)
    {
        var text = http.Request.Query[name].FirstOrDefault();
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value)
            ? value
            : throw new BadRequestException($"{name} '{text}' is not a date");
    }

    private static List<OrchestrationRuntimeStatus>? QueryStatuses(HttpContext http)
    {
        var values = http.Request.Query["runtimeStatus"]
            .SelectMany(v => (v ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .ToList();
        if (values.Count == 0)
        {
            return null;
        }

        var statuses = new List<OrchestrationRuntimeStatus>();
        foreach (var value in values)
        {
            if (!Enum.TryParse<OrchestrationRuntimeStatus>(value, ignoreCase: true, out var status))
            {
                throw new BadRequestException($"runtimeStatus '{value}' is not one of {string.Join(", ", Enum.GetNames<OrchestrationRuntimeStatus>())}");
            }

            statuses.Add(status);
        }

        return statuses;
    }
}
