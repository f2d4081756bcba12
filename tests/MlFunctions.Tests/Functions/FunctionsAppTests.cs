using System.Reflection;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Activities;
using MlFunctions.Api;
using MlFunctions.Functions;
using MlFunctions.Orchestrations;
using MlFunctions.Tests.Http;
using MlFunctions.Tests.Infrastructure;
using Moq;
using Xunit;

namespace MlFunctions.Tests.Functions;

/// <summary>
/// The Functions app cannot run here (the Functions host installs itself from a CDN), so its classes
/// are tested directly, and its surface is compared with the local host's.
/// </summary>
[Collection(nameof(LocalHostCollection))]
public sealed class FunctionsAppTests(LocalHostFixture host)
{
    private static readonly Assembly FunctionsAssembly = typeof(HttpFunctions).Assembly;

    [Fact]
    public void FunctionsMetadataListsEveryOrchestrationActivityAndHttpFunction()
    {
        var path = RepoPaths.ProjectOutput("Functions", "functions.metadata");
        Assert.True(File.Exists(path), $"{path} is missing: the Functions build must generate it");
        var metadata = JsonNode.Parse(File.ReadAllText(path))!.AsArray();
        var byName = metadata.ToDictionary(f => (string)f!["name"]!, f => f!["bindings"]!.AsArray().Select(b => (string)b!["type"]!).ToList());

        foreach (var name in OrchestrationCatalog.Names)
        {
            Assert.Contains("orchestrationTrigger", byName[name]);
        }

        foreach (var name in ActivityCatalog.Names)
        {
            Assert.Contains("activityTrigger", byName[name]);
        }

        foreach (var (method, route) in FunctionsHttpRoutes())
        {
            Assert.Contains(metadata, f => f!["bindings"]!.AsArray().Any(b => (string?)b!["route"] == route));
        }
    }

    [Fact]
    public void EveryHttpRouteOfTheFunctionsAppIsServedByTheLocalHostAndTheOtherWayRound()
    {
        var functions = FunctionsHttpRoutes().ToHashSet();
        var local = host.App.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? []).Select(m => (m, e.RoutePattern.RawText!.TrimStart('/'))))
            .ToHashSet();

        // In Azure Functions the Durable extension serves its management API; the local host serves it itself.
        var extension = DurableWebhookRoutes.All.ToHashSet();
        var localOnly = LocalOnlyRoutes.All.ToHashSet();
        Assert.Empty(functions.Except(local));
        Assert.Empty(local.Except(functions).Except(extension).Except(localOnly));
        Assert.Subset(local, extension);
        Assert.Subset(local, localOnly);
        Assert.Subset(functions, Api.Inference.InferenceRoutes.All.Select(r => (r.HttpMethod, r.Template)).ToHashSet());
    }

    [Fact]
    public void EveryCatalogOrchestrationAndActivityHasAFunctionWrapper()
    {
        var names = FunctionsAssembly.GetTypes()
            .SelectMany(t => t.GetMethods())
            .Select(m => m.GetCustomAttribute<FunctionAttribute>()?.Name)
            .OfType<string>()
            .ToHashSet();
        Assert.Subset(names, OrchestrationCatalog.Names.Concat(ActivityCatalog.Names).ToHashSet());
    }

    [Fact]
    public void HttpFunctionsUseFunctionKeysExceptHealth()
    {
        foreach (var method in FunctionsAssembly.GetTypes().SelectMany(t => t.GetMethods()))
        {
            var trigger = method.GetParameters().Select(p => p.GetCustomAttribute<HttpTriggerAttribute>()).OfType<HttpTriggerAttribute>().FirstOrDefault();
            if (trigger is null)
            {
                continue;
            }

            var expected = ApiRoutes.Anonymous.Contains(trigger.Route!) ? AuthorizationLevel.Anonymous : AuthorizationLevel.Function;
            Assert.Equal(expected, trigger.AuthLevel);
        }
    }

    [Fact]
    public async Task HealthFunctionAnswers200()
    {
        var http = new DefaultHttpContext();
        http.Response.Body = new MemoryStream();
        await new HttpFunctions(NullLogger<HttpFunctions>.Instance).Health(http.Request);
        Assert.Equal(200, http.Response.StatusCode);
    }

    [Fact]
    public async Task StartFunctionAnswers404ForAnUnknownOrchestrationWithoutTouchingTheClient()
    {
        var http = new DefaultHttpContext();
        http.Response.Body = new MemoryStream();
        var client = new Mock<DurableTaskClient>(MockBehavior.Strict, "hub");
        await new HttpFunctions(NullLogger<HttpFunctions>.Instance).StartOrchestration(http.Request, "Nope", client.Object, Mock.Of<FunctionContext>());
        Assert.Equal(404, http.Response.StatusCode);
        http.Response.Body.Position = 0;
        Assert.Contains("FanOutProbe", await new StreamReader(http.Response.Body).ReadToEndAsync());
    }

    [Fact]
    public async Task StartFunctionSchedulesTheCatalogNameWithTheBodyAsInput()
    {
        var http = new DefaultHttpContext();
        http.Request.Body = new MemoryStream("{\"count\":3}"u8.ToArray());
        http.Response.Body = new MemoryStream();
        var client = new Mock<DurableTaskClient>("hub");
        client
            .Setup(c => c.ScheduleNewOrchestrationInstanceAsync(It.IsAny<TaskName>(), It.IsAny<object?>(), It.IsAny<StartOrchestrationOptions?>(), It.IsAny<CancellationToken>()))
            .ReturnsAsync("abc");

        // The starter only needs links; FunctionContext's request data is not reachable in a unit test,
        // so this exercises the shared handler with the local link factory.
        await Api.Durable.OrchestrationStarter.HandleAsync(http, client.Object, "fanoutprobe", (_, id) =>
            Task.FromResult(Api.Durable.HttpManagementLinks.Create("http://x", id, "hub", "Storage", "k")));

        Assert.Equal(202, http.Response.StatusCode);
        client.Verify(c => c.ScheduleNewOrchestrationInstanceAsync(
            It.Is<TaskName>(n => n.Name == "FanOutProbe"),
            It.Is<object?>(o => o!.ToString()!.Contains("\"count\":3")),
            It.IsAny<StartOrchestrationOptions?>(),
            It.IsAny<CancellationToken>()));
        Assert.StartsWith("http://x/runtime/webhooks/durabletask/instances/abc?taskHub=hub", http.Response.Headers.Location.ToString());
    }

    private static IEnumerable<(string Method, string Route)> FunctionsHttpRoutes() =>
        FunctionsAssembly.GetTypes()
            .SelectMany(t => t.GetMethods())
            .SelectMany(m => m.GetParameters())
            .Select(p => p.GetCustomAttribute<HttpTriggerAttribute>())
            .OfType<HttpTriggerAttribute>()
            .SelectMany(t => (t.Methods ?? []).Select(m => (m.ToUpperInvariant(), t.Route!)));
}
