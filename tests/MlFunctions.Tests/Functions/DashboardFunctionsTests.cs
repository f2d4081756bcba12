using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using MlFunctions.Functions;
using MlFunctions.Tests.Http;
using Xunit;

namespace MlFunctions.Tests.Functions;

/// <summary>The Functions app's dashboard function (the Functions host cannot run here), and the same route on the local host.</summary>
[Collection(nameof(LocalHostCollection))]
public sealed class DashboardFunctionsTests(LocalHostFixture host)
{
    private static async Task<(int Status, string? Type, string Body)> GetAsync(string? path)
    {
        var http = new DefaultHttpContext();
        http.Response.Body = new MemoryStream();
        http.Request.Method = "GET";
        await new DashboardFunctions().Dashboard(http.Request, path);
        http.Response.Body.Position = 0;
        return (http.Response.StatusCode, http.Response.ContentType, await new StreamReader(http.Response.Body).ReadToEndAsync());
    }

    [Fact]
    public async Task TheFunctionServesTheDashboardFilesWithTheirTypes()
    {
        var index = await GetAsync(null);
        Assert.Equal(200, index.Status);
        Assert.Equal("text/html", index.Type);
        Assert.Contains("<script src=\"app.js\"></script>", index.Body);

        var script = await GetAsync("app.js");
        Assert.Equal(200, script.Status);
        Assert.Equal("text/javascript", script.Type);
        Assert.Contains("x-functions-key", script.Body);

        var chart = await GetAsync("vendor/uPlot.iife.min.js");
        Assert.Equal(200, chart.Status);
    }

    [Theory]
    [InlineData("no-such-file.js")]
    [InlineData("../host.json")]
    [InlineData("../../Functions.deps.json")]
    [InlineData(".hidden")]
    public async Task AnythingElseIsA404WithAMessage(string path)
    {
        var (status, _, body) = await GetAsync(path);
        Assert.Equal(404, status);
        Assert.Contains("the dashboard has no file", (string)JsonNode.Parse(body)!["error"]!);
    }

    [Fact]
    public async Task TheLocalHostServesTheSameRouteWithoutAKey()
    {
        using var http = new HttpClient { BaseAddress = new Uri(host.BaseUrl) };
        var functions = await GetAsync("app.js");
        var local = await http.GetAsync("dashboard/app.js");
        Assert.Equal(200, (int)local.StatusCode);
        Assert.Equal(functions.Body, await local.Content.ReadAsStringAsync());
        Assert.Equal(200, (int)(await http.GetAsync("dashboard/")).StatusCode);
        Assert.Equal(401, (int)(await http.GetAsync("api/sweeps")).StatusCode);
    }
}
