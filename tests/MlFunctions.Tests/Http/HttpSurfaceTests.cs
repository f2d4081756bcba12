using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using MlFunctions.Tests.Infrastructure;
using Xunit;

namespace MlFunctions.Tests.Http;

/// <summary>The HTTP surface of the local host: starter, Durable management API, keys and bad input.</summary>
[Collection(nameof(LocalHostCollection))]
public sealed class HttpSurfaceTests(LocalHostFixture host)
{
    [Fact]
    public async Task HealthNeedsNoKey()
    {
        using var http = new HttpClient { BaseAddress = new Uri(host.BaseUrl) };
        var response = await http.GetAsync("/api/health");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("healthy", (string?)(await response.Content.ReadFromJsonAsync<JsonObject>())!["status"]);
    }

    [Fact]
    public async Task V2HealthProbesNeedNoKeySoKubernetesProbesWork()
    {
        using var http = new HttpClient { BaseAddress = new Uri(host.BaseUrl) };
        var live = await http.GetAsync("/v2/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        var ready = await http.GetAsync("/v2/health/ready");
        Assert.Contains(ready.StatusCode, new[] { HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable });
        Assert.DoesNotContain("function key", await ready.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("wrong-key")]
    public async Task EveryOtherRouteNeedsTheKey(string? key)
    {
        using var http = new HttpClient { BaseAddress = new Uri(host.BaseUrl) };
        if (key is not null)
        {
            http.DefaultRequestHeaders.Add("x-functions-key", key);
        }

        foreach (var (method, path) in new[]
                 {
                     ("POST", "/api/orchestrators/FanOutProbe"), ("GET", "/runtime/webhooks/durabletask/instances"),
                     ("GET", "/runtime/webhooks/durabletask/instances/x"), ("DELETE", "/runtime/webhooks/durabletask/instances/x"),
                     ("PUT", "/api/serving/m/policy"), ("POST", "/v2/models/m/feedback"), ("GET", "/v2"),
                 })
        {
            var response = await http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path) { Content = JsonContent.Create(new { count = 1 }) });
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Contains("function key is required", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task KeyInTheCodeQueryParameterIsAccepted()
    {
        using var http = new HttpClient { BaseAddress = new Uri(host.BaseUrl) };
        var response = await http.GetAsync($"/runtime/webhooks/durabletask/instances?code={LocalHostFixture.Key}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task StarterAnswers202WithLocationAndTheManagementLinksThenStatusShowsTheOutput()
    {
        using var api = host.Client();
        var (response, body) = await api.StartAsync("FanOutProbe", new { count = 5, delayMs = 0, sequential = false });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var id = (string)body["id"]!;
        Assert.Equal(
            ["id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"],
            body.Select(p => p.Key).ToArray());
        Assert.Equal((string)body["statusQueryGetUri"]!, response.Headers.Location!.ToString());
        Assert.Contains($"/runtime/webhooks/durabletask/instances/{id}?taskHub=", (string)body["statusQueryGetUri"]!);
        Assert.Contains($"code={LocalHostFixture.Key}", (string)body["sendEventPostUri"]!);

        // The status URL works as given, with the key in its query string and no header.
        using var bare = new HttpClient();
        var status = await Eventually.GetAsync(
            () => bare.GetAsync((string)body["statusQueryGetUri"]!),
            r => r.StatusCode != HttpStatusCode.Accepted,
            TimeSpan.FromMinutes(2));
        Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        var payload = (await status.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("FanOutProbe", (string?)payload["name"]);
        Assert.Equal("Completed", (string?)payload["runtimeStatus"]);
        Assert.Equal(5, (int)payload["output"]!);
        Assert.Equal(5, (int)payload["input"]!["count"]!);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", (string)payload["createdTime"]!);

        var (_, withHistory) = await api.StatusAsync(id, "?showHistory=true&showInput=false");
        Assert.Null(withHistory!["input"]);
        Assert.True(withHistory["historyEvents"]!.AsArray().Count > 5);
    }

    [Fact]
    public async Task UnknownOrchestrationIs404WithTheKnownNames()
    {
        using var api = host.Client();
        var (response, body) = await api.StartAsync("NoSuchPipeline", new { });
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("FanOutProbe", (string?)body["error"]);
    }

    [Fact]
    public async Task ALegacyMnistPipelineInputThatMakesABadSpecIs400ListingEveryProblem()
    {
        using var api = host.Client();
        var (noData, noDataBody) = await api.StartAsync("MnistPipeline", new { retrainEpochs = 3 });
        Assert.Equal(HttpStatusCode.BadRequest, noData.StatusCode);
        Assert.Contains("missing required properties including: 'dataset'", (string?)noDataBody["error"]);

        var (bad, body) = await api.StartAsync("MnistPipeline", new
        {
            dataset = new { name = "mnist", sourceDirectories = new[] { "/nowhere" } },
            retrainEpochs = 0,
            gateMargin = 2,
            smokeImageIndex = -1,
            sweep = new { maxTrials = 0 },
        });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var error = (string?)body["error"];
        foreach (var problem in new[] { "retrainEpochs must be between 1 and 500, got 0", "gate.margin must be between 0 and 1, got 2", "smokeIndex must not be negative, got -1", "sweep.maxTrials must be between 1 and 500, got 0" })
            Assert.Contains(problem, error);
    }

    [Fact]
    public async Task MalformedJsonIs400()
    {
        using var api = host.Client();
        var response = await api.Http.PostAsync("/api/orchestrators/FanOutProbe", new StringContent("{\"count\": 3,", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("not valid JSON", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task BadInstanceIdIs400AndARunningIdIs409()
    {
        using var api = host.Client();
        var (bad, _) = await api.StartAsync("FanOutProbe", new { count = 1 }, instanceId: "a%2Fb");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        var id = "dup-" + Guid.NewGuid().ToString("N");
        var (first, _) = await api.StartAsync("FanOutProbe", new { count = 1, delayMs = 20_000, sequential = true }, id);
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        var (second, body) = await api.StartAsync("FanOutProbe", new { count = 1 }, id);
        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        Assert.Contains("already pending or running", (string?)body["error"]);
        await api.Http.PostAsync($"/runtime/webhooks/durabletask/instances/{id}/terminate?reason=test", null);
    }

    [Fact]
    public async Task InvalidInputFailsTheInstanceWithTheReasonAsOutput()
    {
        using var api = host.Client();
        var (response, body) = await api.StartAsync("FanOutProbe", new { count = -3 });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var (status, payload) = await api.WaitDoneAsync((string)body["id"]!);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Failed", (string?)payload!["runtimeStatus"]);
        Assert.Contains("count must be between 0 and 10000, got -3", (string?)payload["output"]);

        var (failAs500, _) = await api.StatusAsync((string)body["id"]!, "?returnInternalServerErrorOnFailure=true");
        Assert.Equal(HttpStatusCode.InternalServerError, failAs500);
    }

    [Fact]
    public async Task RunningInstanceIs202AndTakesEventsTerminateThenRefusesThemWith410()
    {
        using var api = host.Client();
        var (_, body) = await api.StartAsync("FanOutProbe", new { count = 1, delayMs = 60_000, sequential = true });
        var id = (string)body["id"]!;
        var (running, _) = await Eventually.GetAsync(() => api.StatusAsync(id), s => (string?)s.Body?["runtimeStatus"] == "Running", TimeSpan.FromMinutes(1));
        Assert.Equal(HttpStatusCode.Accepted, running);

        var notJson = await api.Http.PostAsync($"/runtime/webhooks/durabletask/instances/{id}/raiseEvent/go", new StringContent("hi", Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
        var badJson = await api.Http.PostAsync($"/runtime/webhooks/durabletask/instances/{id}/raiseEvent/go", new StringContent("{", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, badJson.StatusCode);
        var evt = await api.Http.PostAsJsonAsync($"/runtime/webhooks/durabletask/instances/{id}/raiseEvent/go", new { ok = true });
        Assert.Equal(HttpStatusCode.Accepted, evt.StatusCode);

        var purgeRunning = await api.Http.DeleteAsync($"/runtime/webhooks/durabletask/instances/{id}");
        Assert.Equal(HttpStatusCode.PreconditionFailed, purgeRunning.StatusCode);

        var terminate = await api.Http.PostAsync($"/runtime/webhooks/durabletask/instances/{id}/terminate?reason=test", null);
        Assert.Equal(HttpStatusCode.Accepted, terminate.StatusCode);
        var (_, final) = await api.WaitDoneAsync(id);
        Assert.Equal("Terminated", (string?)final!["runtimeStatus"]);

        var again = await api.Http.PostAsync($"/runtime/webhooks/durabletask/instances/{id}/terminate", null);
        Assert.Equal(HttpStatusCode.Gone, again.StatusCode);
        var lateEvent = await api.Http.PostAsJsonAsync($"/runtime/webhooks/durabletask/instances/{id}/raiseEvent/go", new { ok = true });
        Assert.Equal(HttpStatusCode.Gone, lateEvent.StatusCode);

        var purge = await api.Http.DeleteAsync($"/runtime/webhooks/durabletask/instances/{id}");
        Assert.Equal(HttpStatusCode.OK, purge.StatusCode);
        Assert.Equal(1, (int)(await purge.Content.ReadFromJsonAsync<JsonObject>())!["instancesDeleted"]!);
        var (gone, _) = await api.StatusAsync(id);
        Assert.Equal(HttpStatusCode.NotFound, gone);
    }

    [Fact]
    public async Task UnknownInstanceIs404ForEveryOperation()
    {
        using var api = host.Client();
        const string prefix = "/runtime/webhooks/durabletask/instances/nope";
        Assert.Equal(HttpStatusCode.NotFound, (await api.Http.GetAsync(prefix)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await api.Http.DeleteAsync(prefix)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await api.Http.PostAsync(prefix + "/terminate", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await api.Http.PostAsJsonAsync(prefix + "/raiseEvent/x", new { })).StatusCode);
    }

    [Fact]
    public async Task InstancesQueryFiltersAndRejectsUnknownStatuses()
    {
        using var api = host.Client();
        var id = "query-" + Guid.NewGuid().ToString("N");
        await api.StartAsync("FanOutProbe", new { count = 2 }, id);
        await api.WaitDoneAsync(id);

        var response = await api.Http.GetAsync("/runtime/webhooks/durabletask/instances?runtimeStatus=Completed,Failed&instanceIdPrefix=query-&top=50");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(response.Headers.Contains("x-ms-continuation-token"));
        var list = (await response.Content.ReadFromJsonAsync<JsonArray>())!;
        Assert.Contains(list, n => (string?)n!["instanceId"] == id);

        var bad = await api.Http.GetAsync("/runtime/webhooks/durabletask/instances?runtimeStatus=Sleeping");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("runtimeStatus 'Sleeping'", await bad.Content.ReadAsStringAsync());

        var noFrom = await api.Http.DeleteAsync("/runtime/webhooks/durabletask/instances");
        Assert.Equal(HttpStatusCode.BadRequest, noFrom.StatusCode);
    }
}
