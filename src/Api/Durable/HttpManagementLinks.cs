namespace MlFunctions.Api.Durable;

/// <summary>
/// The body of Durable Functions' <c>CreateCheckStatusResponse</c>: the instance id and the management
/// URLs, with the same property names and order as the extension writes them.
/// </summary>
public sealed record HttpManagementLinks(
    string Id,
    string StatusQueryGetUri,
    string SendEventPostUri,
    string TerminatePostUri,
    string PurgeHistoryDeleteUri,
    string RestartPostUri,
    string SuspendPostUri,
    string ResumePostUri)
{
    /// <summary>
    /// Builds the links the way the Durable extension does: instance URL + "?taskHub=..&amp;connection=.."
    /// + the key. Azure Functions builds its own (with the extension's system key); the local host uses this.
    /// </summary>
    public static HttpManagementLinks Create(string baseUrl, string instanceId, string taskHub, string connection, string? key)
    {
        var instance = $"{baseUrl.TrimEnd('/')}/{DurableWebhookRoutes.Instances}/{Uri.EscapeDataString(instanceId)}";
        var query = $"taskHub={Uri.EscapeDataString(taskHub)}&connection={Uri.EscapeDataString(connection)}";
        if (!string.IsNullOrEmpty(key))
        {
            query += $"&code={Uri.EscapeDataString(key)}";
        }

        return new HttpManagementLinks(
            instanceId,
            StatusQueryGetUri: $"{instance}?{query}",
            SendEventPostUri: $"{instance}/raiseEvent/{{eventName}}?{query}",
            TerminatePostUri: $"{instance}/terminate?reason={{text}}&{query}",
            PurgeHistoryDeleteUri: $"{instance}?{query}",
            RestartPostUri: $"{instance}/restart?{query}",
            SuspendPostUri: $"{instance}/suspend?reason={{text}}&{query}",
            ResumePostUri: $"{instance}/resume?reason={{text}}&{query}");
    }
}

/// <summary>How a host makes the management links for an instance it just started.</summary>
public delegate Task<HttpManagementLinks> ManagementLinkFactory(Microsoft.AspNetCore.Http.HttpContext http, string instanceId);
