using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using Xunit;

namespace MlFunctions.Tests.Infrastructure;

/// <summary>A keyed HTTP client for a running host, with the Durable starter and status calls.</summary>
public sealed class ApiClient(string baseUrl, string key) : IDisposable
{
    public HttpClient Http { get; } = CreateClient(baseUrl, key);

    public async Task<(HttpResponseMessage Response, JsonObject Body)> StartAsync(string orchestration, object? input, string? instanceId = null)
    {
        var url = $"/api/orchestrators/{orchestration}" + (instanceId is null ? string.Empty : $"?instanceId={instanceId}");
        var response = await Http.PostAsJsonAsync(url, input);
        var body = await response.Content.ReadFromJsonAsync<JsonObject>() ?? [];
        return (response, body);
    }

    public async Task<(HttpStatusCode Status, JsonObject? Body)> StatusAsync(string instanceId, string query = "")
    {
        var response = await Http.GetAsync($"/runtime/webhooks/durabletask/instances/{instanceId}{query}");
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text) as JsonObject);
    }

    public Task<(HttpStatusCode Status, JsonObject? Body)> WaitDoneAsync(string instanceId, TimeSpan? within = null) =>
        Eventually.GetAsync(() => StatusAsync(instanceId), s => s.Status != HttpStatusCode.Accepted, within ?? TimeSpan.FromMinutes(3), $"instance {instanceId} done");

    /// <summary>Waits for a pipeline run, asserts it completed, and returns its result.</summary>
    public async Task<PipelineRunResult> WaitPipelineResultAsync(string instanceId, TimeSpan within)
    {
        var (status, final) = await WaitDoneAsync(instanceId, within);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True((string?)final!["runtimeStatus"] == "Completed", final.ToJsonString());
        return final["output"]!.Deserialize<PipelineRunResult>(MlJson.Options)!;
    }

    public void Dispose() => Http.Dispose();

    private static HttpClient CreateClient(string baseUrl, string key)
    {
        var http = new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Add("x-functions-key", key);
        return http;
    }
}
