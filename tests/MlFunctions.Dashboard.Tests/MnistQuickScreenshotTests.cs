using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Dashboard.Tests;

/// <summary>
/// The main job as a user runs it (<c>MlFunctions.Local.dll mnist --quick</c>, its own process, keeping on serving when
/// done), then the run, sweep and model pages of its host in the browser: the MNIST run's steps, the trial count, a
/// curve's points and the champion version, saved as mnist-run.png, mnist-sweep.png and mnist-model.png.
/// </summary>
[Collection(DashboardCollection.Name)]
public sealed class MnistQuickScreenshotTests(DashboardFixture fixture, ITestOutputHelper output)
{
    private const string Key = "mnist-screenshots-key";

    [BrowserFact]
    public async Task TheRunSweepAndModelPagesAfterTheQuickMainJob()
    {
        var dll = RepoPaths.ProjectOutput("Local", "MlFunctions.Local.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: dotnet build MlFunctions.sln");
        var port = FreePorts.Next();
        var url = $"http://127.0.0.1:{port}/";
        var start = new ProcessStartInfo("dotnet");
        foreach (var arg in new[]
                 {
                     dll, "mnist", "--quick", "--new", "--data", RepoPaths.SharedDatasets, "--urls", url.TrimEnd('/'), "--Local:ApiKey", Key,
                     "--Local:DataPath", Directory.CreateTempSubdirectory("mlf-mnist-shots-").FullName,
                     "--Local:TaskHub", TestStorage.NewTaskHub("mnistshots"), "--Logging:LogLevel:Default", "Warning",
                 })
            start.ArgumentList.Add(arg);
        start.Environment["AzureWebJobsStorage"] = await TestStorage.ConnectionStringAsync();
        var clock = Stopwatch.StartNew();
        using var job = ChildProcess.Start(start);
        while (!job.Output.Contains("serving until Ctrl-C", StringComparison.Ordinal))
        {
            Assert.False(job.HasExited, "mnist --quick exited:\n" + job.Output);
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(10), "mnist --quick not done in 10 minutes:\n" + job.Output);
            await Task.Delay(1000);
        }

        var result = job.Output.Split('\n').First(l => l.StartsWith("RESULT mnist", StringComparison.Ordinal)).Trim();
        output.WriteLine($"{result} (job {clock.Elapsed.TotalSeconds:F0} s)");

        using var api = new HttpClient { BaseAddress = new Uri(url) };
        api.DefaultRequestHeaders.Add("x-functions-key", Key);
        var run = (await api.GetFromJsonAsync<JsonObject>("api/pipelines/runs"))!["runs"]!.AsArray().Single()!;
        var runId = (string)run["runId"]!;
        var steps = (await api.GetFromJsonAsync<JsonObject>($"api/pipelines/runs/{runId}"))!["steps"]!.AsArray().Count;
        // The sweeps and registry live in the shared test storage (other tests' sweeps and models are there too):
        // take this run's own from its output.
        var final = (await api.GetFromJsonAsync<JsonObject>($"runtime/webhooks/durabletask/instances/{runId}"))!["output"]!;
        var sweepId = (string)final["sweep"]!["sweepId"]!;
        var trialCount = (await api.GetFromJsonAsync<JsonObject>($"api/sweeps/{sweepId}/trials"))!["trials"]!.AsArray().Count;
        var modelName = (string)final["model"]!;
        var champion = (int)(await api.GetFromJsonAsync<JsonObject>($"api/registry/models/{modelName}/aliases/champion"))!["version"]!;

        var context = await fixture.Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 } });
        await context.AddInitScriptAsync($"localStorage.setItem('mlf-api-key', '{Key}');");
        var page = await context.NewPageAsync();

        await page.GotoAsync(url + "#/runs/" + runId);
        await page.Locator("#steps-table").WaitForAsync(new() { Timeout = 30_000 });
        Assert.Equal(steps, await page.Locator("#steps-table tbody tr").CountAsync());
        await ShotAsync(page, "mnist-run");

        await page.GotoAsync(url + "#/sweeps/" + sweepId);
        await page.Locator("#curves .chart canvas").First.WaitForAsync(new() { Timeout = 30_000 });
        Assert.StartsWith($"{trialCount} trials", await page.Locator("#sweep-summary").InnerTextAsync());
        var points = (await page.Locator("#curves .chart").First.GetAttributeAsync("data-points"))!;
        output.WriteLine($"run {runId}: {steps} steps; sweep {sweepId}: {trialCount} trials, first curve points {points}; {modelName} champion v{champion}");
        await ShotAsync(page, "mnist-sweep");

        await page.GotoAsync(url + "#/models/" + modelName);
        await page.Locator("#versions-table").WaitForAsync(new() { Timeout = 30_000 });
        Assert.Equal(champion.ToString(System.Globalization.CultureInfo.InvariantCulture), await page.Locator("#aliases [data-alias='champion']").GetAttributeAsync("data-version"));
        await ShotAsync(page, "mnist-model");
        await context.CloseAsync();
    }

    private async Task ShotAsync(IPage page, string name)
    {
        var path = Path.Combine(fixture.Screenshots, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        output.WriteLine("screenshot: " + path);
    }
}
