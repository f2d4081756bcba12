using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Dashboard.Tests;

/// <summary>
/// The dashboard in headless chromium after one small pipeline run: what a user sees on the runs, sweep and model
/// pages, and the messages for a missing key, a bad key, an unknown run and a host that does not answer.
/// Screenshots go to TestResults/screenshots; first-render timings come from the browser's navigation entry.
/// </summary>
[Collection(DashboardCollection.Name)]
public sealed class DashboardPageTests(DashboardFixture fixture, ITestOutputHelper output)
{
    private const float Wait = 30_000;

    [BrowserFact]
    public async Task TheRunsPageListsTheRunAndTheRunPageShowsItsSteps()
    {
        output.WriteLine($"pipeline {fixture.Pipeline} run {fixture.RunId}: {fixture.Result.Outcome} in {fixture.PipelineTime.TotalSeconds:F0} s");
        var page = await fixture.PageAsync();
        await page.GotoAsync(fixture.BaseUrl);
        await page.Locator($"tr[data-run='{fixture.RunId}']").WaitForAsync(new() { Timeout = Wait });
        await TimingAsync(page, "runs");
        Assert.Contains("Completed", await page.Locator($"tr[data-run='{fixture.RunId}']").InnerTextAsync());
        await ShotAsync(page, "runs");

        // Filtering by another pipeline hides it, with an empty-state message.
        await page.GotoAsync(fixture.BaseUrl + "#/runs?pipeline=no-such-pipeline");
        await page.GetByText("No runs match these filters.").WaitForAsync(new() { Timeout = Wait });

        using var api = fixture.Api();
        var lineage = await api.GetFromJsonAsync<JsonObject>($"api/pipelines/runs/{fixture.RunId}");
        var expected = lineage!["steps"]!.AsArray().Select(s => (string)s!["step"]!).ToList();
        await page.GotoAsync(fixture.BaseUrl + "#/runs/" + fixture.RunId);
        await page.Locator("#steps-table").WaitForAsync(new() { Timeout = Wait });
        await TimingAsync(page, "run");
        var shown = await page.Locator("#step-graph .step").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.step)");
        output.WriteLine("steps: " + string.Join(" → ", shown));
        Assert.Equal(expected, shown);
        Assert.Contains($"{expected.Count} steps", await page.Locator("#run-summary").InnerTextAsync());
        Assert.Equal(expected.Count, await page.Locator("#steps-table tbody tr").CountAsync());
        Assert.Equal(expected.Count, await page.Locator("#timeline .tl-bar").CountAsync());
        Assert.Contains(fixture.Pipeline, await page.Locator("#model-link").InnerTextAsync());
        await ShotAsync(page, "run");

        // The model link leads to the model page.
        await page.Locator("#model-link").ClickAsync();
        await page.Locator("#versions-table").WaitForAsync(new() { Timeout = Wait });
    }

    [BrowserFact]
    public async Task TheSweepPageShowsEveryTrialAndTheirPerEpochCurves()
    {
        var sweepId = fixture.Result.Sweep!.SweepId;
        using var api = fixture.Api();
        var trials = (await api.GetFromJsonAsync<JsonObject>($"api/sweeps/{sweepId}/trials"))!["trials"]!.AsArray();
        var first = (string)trials[0]!["runId"]!;
        var history = (await api.GetFromJsonAsync<JsonObject>($"api/sweeps/{sweepId}/trials/{first}/metrics"))!["metrics"]!.AsObject();
        var metric = history.Select(kv => kv.Key).Order(StringComparer.Ordinal).First();
        var points = history[metric]!.AsArray().Count;
        output.WriteLine($"sweep {sweepId}: {trials.Count} trials; {first} has {points} points of {metric}");

        var page = await fixture.PageAsync();
        await page.GotoAsync(fixture.BaseUrl + "#/sweeps");
        await page.Locator("#sweeps-table").WaitForAsync(new() { Timeout = Wait });
        await TimingAsync(page, "sweeps");
        await page.Locator($"#sweeps-table a[href='#/sweeps/{sweepId}']").ClickAsync();
        await page.Locator("#trials-table").WaitForAsync(new() { Timeout = Wait });
        await page.Locator($"#curves .chart[data-metric='{metric}'] canvas").WaitForAsync(new() { Timeout = Wait });
        await TimingAsync(page, "sweep");
        Assert.Equal(trials.Count, await page.Locator("#trials-table tbody tr").CountAsync());
        Assert.StartsWith($"{trials.Count} trials", await page.Locator("#sweep-summary").InnerTextAsync());

        // One series per chosen trial; the first trial's curve has one point per recorded epoch.
        var perTrial = (await page.Locator($"#curves .chart[data-metric='{metric}']").GetAttributeAsync("data-points"))!.Split(',');
        Assert.Equal(points.ToString(System.Globalization.CultureInfo.InvariantCulture), perTrial[0]);
        Assert.True(points >= 1);

        // Sorting by the objective twice flips the order.
        var header = page.Locator("#trials-table th[data-key='objective']");
        await header.ClickAsync();
        var ascending = await page.Locator("#trials-table tbody tr").EvaluateAllAsync<string[]>("rs => rs.map(r => r.dataset.trial)");
        await header.ClickAsync();
        var descending = await page.Locator("#trials-table tbody tr").EvaluateAllAsync<string[]>("rs => rs.map(r => r.dataset.trial)");
        Assert.Equal(ascending.Reverse(), descending);
        await ShotAsync(page, "sweep");
    }

    [BrowserFact]
    public async Task TheModelPageShowsTheChampionVersionWithItsSignatureAndDigest()
    {
        var version = fixture.Result.ModelVersion!.Value;
        var page = await fixture.PageAsync();
        await page.GotoAsync(fixture.BaseUrl + "#/models");
        await page.Locator("#models-table").WaitForAsync(new() { Timeout = Wait });
        await TimingAsync(page, "models");
        Assert.Contains($"champion → v{version}", await page.Locator("#models-table").InnerTextAsync());

        await page.GotoAsync(fixture.BaseUrl + "#/models/" + fixture.Pipeline);
        await page.Locator("#versions-table").WaitForAsync(new() { Timeout = Wait });
        await TimingAsync(page, "model");
        Assert.Equal(version.ToString(System.Globalization.CultureInfo.InvariantCulture), await page.Locator("#aliases [data-alias='champion']").GetAttributeAsync("data-version"));
        var row = await page.Locator($"#versions-table tr[data-version='{version}']").InnerTextAsync();
        using var api = fixture.Api();
        var record = await api.GetFromJsonAsync<JsonObject>($"api/registry/models/{fixture.Pipeline}/versions/{version}");
        Assert.Contains((string)record!["sha256"]!, row);
        Assert.Contains((string)record["signature"]!["inputs"]![0]!["name"]!, row);
        Assert.Contains(fixture.RunId, row);
        await ShotAsync(page, "model");

        // Moving the alias asks first; dismissing leaves it where it was.
        page.Dialog += (_, dialog) => { output.WriteLine("confirm: " + dialog.Message); _ = dialog.DismissAsync(); };
        await page.Locator($"#versions-table tr[data-version='{version}'] button").ClickAsync();
        await page.WaitForTimeoutAsync(300);
        var alias = await api.GetFromJsonAsync<JsonObject>($"api/registry/models/{fixture.Pipeline}/aliases/champion");
        Assert.Equal(version, (int)alias!["version"]!);
    }

    [BrowserFact]
    public async Task AMissingKeyABadKeyAnUnknownRunAndAStoppedHostEachGetAClearMessage()
    {
        var page = await fixture.PageAsync(key: null);
        await page.GotoAsync(fixture.BaseUrl);
        await page.Locator("#banner[data-kind='nokey']").WaitForAsync(new() { Timeout = Wait });
        Assert.Contains("Enter the API key", await page.Locator("#banner").InnerTextAsync());
        Assert.True(await page.Locator("#keyform").IsVisibleAsync());
        await ShotAsync(page, "no-key");

        // A wrong key typed into the form is refused with its own message and the form again.
        await page.Locator("#keyinput").FillAsync("not-the-key");
        await page.Locator("#keyform button").ClickAsync();
        await page.Locator("#banner[data-kind='badkey']").WaitForAsync(new() { Timeout = Wait });
        Assert.Contains("refused", await page.Locator("#banner").InnerTextAsync());
        await ShotAsync(page, "bad-key");

        // The right key, typed once, is kept for the next pages and never put in a URL.
        var urls = new List<string>();
        page.Request += (_, request) => urls.Add(request.Url);
        await page.Locator("#keyinput").FillAsync(DashboardFixture.Key);
        await page.Locator("#keyform button").ClickAsync();
        await page.Locator($"tr[data-run='{fixture.RunId}']").WaitForAsync(new() { Timeout = Wait });
        Assert.DoesNotContain(urls, u => u.Contains(DashboardFixture.Key, StringComparison.Ordinal) || u.Contains("code=", StringComparison.Ordinal));

        await page.GotoAsync(fixture.BaseUrl + "#/runs/no-such-run");
        await page.Locator("#run-missing").WaitForAsync(new() { Timeout = Wait });
        Assert.Contains("There is no pipeline run \"no-such-run\"", await page.Locator("#run-missing").InnerTextAsync());
        await ShotAsync(page, "unknown-run");

        // The host stops answering (every API call fails at the network): the page says so.
        await page.RouteAsync("**/api/**", route => route.AbortAsync("connectionrefused"));
        await page.GotoAsync(fixture.BaseUrl + "#/sweeps");
        await page.Locator("#banner[data-kind='down']").WaitForAsync(new() { Timeout = Wait });
        Assert.Contains("did not answer", await page.Locator("#banner").InnerTextAsync());
        await ShotAsync(page, "host-down");
    }

    private async Task ShotAsync(IPage page, string name)
    {
        var path = Path.Combine(fixture.Screenshots, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        output.WriteLine("screenshot: " + path);
    }

    /// <summary>The browser's own timing: the navigation entry, and the dashboard's time from route to rendered data.</summary>
    private async Task TimingAsync(IPage page, string name)
    {
        var timing = await page.EvaluateAsync<JsonElement>(
            "() => { const n = performance.getEntriesByType('navigation')[0]; const p = performance.getEntriesByName('first-contentful-paint')[0];" +
            " return { domContentLoaded: n ? n.domContentLoadedEventEnd : null, load: n ? n.loadEventEnd : null, fcp: p ? p.startTime : null," +
            " renderMs: Number(document.body.dataset.renderMs || -1), now: performance.now() }; }");
        output.WriteLine($"timing {name}: {timing}");
    }
}
