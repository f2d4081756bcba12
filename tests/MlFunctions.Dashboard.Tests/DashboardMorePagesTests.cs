using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;
using MlFunctions.Local.Cli;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Dashboard.Tests;

/// <summary>
/// The Datasets, Serving and Compare pages after the fixture's pipeline run (with one prediction sent through the CLI's
/// <c>predict</c>), the dashboard at /dashboard/ (the path the Functions app serves it on), and the first-render times
/// with 100 more pipeline runs and a 200-trial sweep in the store.
/// </summary>
[Collection(DashboardCollection.Name)]
public sealed class DashboardMorePagesTests(DashboardFixture fixture, ITestOutputHelper output)
{
    private const float Wait = 30_000;

    [BrowserFact]
    public async Task TheDatasetsPageShowsTheVersionItsColumnProfileAndTheFittedTransform()
    {
        var page = await fixture.PageAsync();
        await page.GotoAsync(fixture.BaseUrl + "#/datasets");
        await page.Locator("#datasets-table").WaitForAsync(new() { Timeout = Wait });
        var link = page.Locator($"#datasets-table a[href^='#/datasets/{fixture.Pipeline}']").First;
        await link.ClickAsync();
        await page.Locator("#columns").WaitForAsync(new() { Timeout = Wait });
        await ShotAsync(page, "dataset");
        // The loans CSV's columns: numeric income with its statistics, categorical city with its value counts.
        var income = await page.Locator("#columns [data-column='income']").InnerTextAsync();
        Assert.Contains("mean", income);
        Assert.Equal(4, await page.Locator("#columns [data-column='city'] .bar-row").CountAsync());
        Assert.True(await page.Locator("#class-bars .bar-row").CountAsync() == 2);
        Assert.Equal("tabular", await page.Locator("#transforms .card").First.GetAttributeAsync("data-kind"));
        Assert.Contains("Succeeded", await page.Locator("#checks-table").InnerTextAsync());

        await page.GotoAsync(fixture.BaseUrl + "#/datasets/no-such-data/v1");
        await page.Locator("#dataset-missing").WaitForAsync(new() { Timeout = Wait });
        Assert.Contains("no dataset 'no-such-data'", await page.Locator("#dataset-missing").InnerTextAsync());
    }

    [BrowserFact]
    public async Task APredictionFromTheCliShowsOnTheServingPage()
    {
        var row = Path.Combine(Path.GetTempPath(), $"loan-{Guid.NewGuid():N}.csv");
        await File.WriteAllTextAsync(row, "applicant,income,debt,employed,city\na-new,88.5,4.0,yes,Graz\n");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await Commands.RunAsync(["predict", fixture.Pipeline, row, "--url", fixture.BaseUrl, "--key", DashboardFixture.Key], stdout, stderr, CancellationToken.None);
        output.WriteLine($"$ mlf predict {fixture.Pipeline} {row} → {code}\n{stdout}{stderr}");
        Assert.True(code == 0, stderr.ToString());
        Assert.Contains("label", stdout.ToString());

        var page = await fixture.PageAsync();
        await page.GotoAsync(fixture.BaseUrl + "#/serving");
        var card = page.Locator($".card[data-model='{fixture.Pipeline}']");
        await card.Locator("tr[data-version]").First.WaitForAsync(new() { Timeout = Wait });
        await card.Locator("canvas").First.WaitForAsync(new() { Timeout = Wait });
        var text = await card.InnerTextAsync();
        output.WriteLine(text);
        Assert.Contains("ms", text);     // p50 / p99
        Assert.Contains("Policy", text);
        await ShotAsync(page, "serving");
    }

    [BrowserFact]
    public async Task TheComparePageShowsTwoTrialsSideBySide()
    {
        using var api = fixture.Api();
        var trials = (await api.GetFromJsonAsync<JsonObject>($"api/sweeps/{fixture.Result.Sweep!.SweepId}/trials"))!["trials"]!.AsArray();
        var ids = trials.Take(2).Select(t => (string)t!["runId"]!).ToList();
        var page = await fixture.PageAsync();
        await page.GotoAsync(fixture.BaseUrl + "#/compare?runs=" + string.Join(',', ids));
        await page.Locator("#compare-metrics").WaitForAsync(new() { Timeout = Wait });
        Assert.Equal(ids.Count + 1, await page.Locator("#compare-params thead th").CountAsync());
        Assert.True(await page.Locator("#compare-metrics tbody tr").CountAsync() >= 1);
        await ShotAsync(page, "compare");

        await page.GotoAsync(fixture.BaseUrl + "#/compare?runs=" + ids[0] + ",no-such-trial");
        await page.Locator("#compare-missing").WaitForAsync(new() { Timeout = Wait });
        Assert.Contains("no-such-trial", await page.Locator("#compare-missing").InnerTextAsync());
    }

    [BrowserFact]
    public async Task TheDashboardAlsoWorksUnderDashboardSlashAsTheFunctionsAppServesIt()
    {
        var page = await fixture.PageAsync();
        await page.GotoAsync(fixture.BaseUrl + "dashboard/#/runs/" + fixture.RunId);
        await page.Locator("#steps-table").WaitForAsync(new() { Timeout = Wait });
        Assert.True(await page.Locator("#steps-table tbody tr").CountAsync() > 0);
    }

    /// <summary>
    /// 100 more pipeline runs (real TrainingPipeline runs that fail at their first step: no data under their prefix) and a
    /// 200-trial sweep of 20 epochs each (saved through the tracking store), then each page's first render, from the
    /// browser's own clock. Prints figures; asserts only that the pages show the seeded data.
    /// </summary>
    [BrowserFact]
    public async Task FirstRenderTimesWithAHundredRunsAndATwoHundredTrialSweep()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var sweepId = await SeedSweepAsync(200, 20);
        var seededSweep = clock.Elapsed;
        var pipeline = await SeedFailedRunsAsync(100);
        output.WriteLine($"seeded: sweep {sweepId} (200 trials × 20 epochs) in {seededSweep.TotalSeconds:F1} s; 100 runs of {pipeline} in {(clock.Elapsed - seededSweep).TotalSeconds:F1} s");

        // The trial table's store read, the way it was (every run blob, with its history) and from the markers' summaries.
        var store = fixture.Services.GetRequiredService<ITrackingStore>();
        var read = System.Diagnostics.Stopwatch.StartNew();
        var whole = await store.ListRunsAsync(sweepId);
        var wholeMs = read.ElapsedMilliseconds;
        read.Restart();
        var summaries = await store.ListRunSummariesAsync(sweepId);
        var summariesMs = read.ElapsedMilliseconds;
        Assert.Equal(whole.Count, summaries.Count);
        output.WriteLine($"RESULT tracking_list runs={whole.Count} epochs=20 whole_runs_ms={wholeMs} summaries_ms={summariesMs}");

        var figures = new List<string>();
        async Task MeasureAsync(string name, string hash, string ready, Func<IPage, Task> check)
        {
            var page = await fixture.PageAsync();
            await page.GotoAsync(fixture.BaseUrl + hash);
            await page.Locator(ready).First.WaitForAsync(new() { Timeout = 60_000 });
            await page.WaitForFunctionAsync("() => document.body.dataset.firstRenderAt", null, new() { Timeout = 60_000 });
            var t = await page.EvaluateAsync<JsonElement>(
                "() => { const n = performance.getEntriesByType('navigation')[0]; const p = performance.getEntriesByName('first-contentful-paint')[0];" +
                " return { fcp: p ? Math.round(p.startTime) : -1, dcl: Math.round(n.domContentLoadedEventEnd), load: Math.round(n.loadEventEnd)," +
                " firstRender: Number(document.body.dataset.firstRenderAt), renderMs: Number(document.body.dataset.renderMs) }; }");
            await check(page);
            // Each API call's own time (the browser's resource timing), to tell the host's part from the page's.
            var calls = await page.EvaluateAsync<JsonElement>(
                "() => performance.getEntriesByType('resource').filter(e => e.name.includes('/api/'))" +
                ".map(e => ({ path: new URL(e.name).pathname.replace(/^\\/api\\//, ''), ms: Math.round(e.duration) }))");
            output.WriteLine($"{name} calls: " + string.Join(", ", calls.EnumerateArray().Select(c => $"{c.GetProperty("path").GetString()} {c.GetProperty("ms")} ms")));
            var line = $"{name}_first_render_ms={t.GetProperty("firstRender")} {name}_fcp_ms={t.GetProperty("fcp")} {name}_dcl_ms={t.GetProperty("dcl")} {name}_data_ms={t.GetProperty("renderMs")}";
            output.WriteLine(line);
            figures.Add(line);
            await ShotAsync(page, "speed-" + name);
            await page.Context.CloseAsync();
        }

        await MeasureAsync("runs", "#/runs", "#runs-table tr[data-run]", async page =>
            Assert.True(await page.Locator("#runs-table tr[data-run]").CountAsync() >= 100));
        await MeasureAsync("sweep", "#/sweeps/" + sweepId, "#curves .chart canvas", async page =>
            Assert.Equal(200, await page.Locator("#trials-table tbody tr").CountAsync()));
        await MeasureAsync("sweeps", "#/sweeps", "#sweeps-table", _ => Task.CompletedTask);
        await MeasureAsync("models", "#/models", "#models-table", _ => Task.CompletedTask);
        output.WriteLine("RESULT dashboard_speed runs=100+ trials=200 epochs=20 " + string.Join(' ', figures));
    }

    private async Task<string> SeedSweepAsync(int trials, int epochs)
    {
        var store = fixture.Services.GetRequiredService<ITrackingStore>();
        var source = await store.GetSweepAsync(fixture.Result.Sweep!.SweepId) ?? throw new InvalidOperationException("the fixture's sweep is not stored");
        var template = (await store.ListRunsAsync(source.SweepId)).First(r => r.Role == RunRole.Trial);
        var sweepId = "speed-" + Guid.NewGuid().ToString("N")[..8];
        var rng = new Random(5);
        var now = DateTime.UtcNow;
        var runs = Enumerable.Range(0, trials).Select(i =>
        {
            var lr = Math.Pow(10, -4 + (3 * rng.NextDouble()));
            var hidden = 16 << rng.Next(4);
            var steps = Enumerable.Range(1, epochs).Select(e => new MetricStep(e, new Dictionary<string, double>
            {
                ["val_auc"] = 0.5 + (0.45 * (1 - Math.Exp(-e * lr * 300))) + (0.01 * rng.NextDouble()),
                ["train_loss"] = 0.7 * Math.Exp(-e * lr * 200) + (0.01 * rng.NextDouble()),
            })).ToList();
            var parameters = new ParameterSet();
            foreach (var (k, v) in template.Params)
                parameters[k] = v;
            parameters["lr"] = lr.ToString("G6", CultureInfo.InvariantCulture);
            parameters["hidden"] = hidden.ToString(CultureInfo.InvariantCulture);
            return template with
            {
                RunId = $"{sweepId}-t{i:000}",
                Experiment = sweepId,
                Status = TrialState.Succeeded,
                Params = parameters,
                Metrics = steps,
                FinalMetrics = steps[^1].Metrics,
                Objective = steps[^1].Metrics["val_auc"],
                StartTime = now.AddMinutes(-trials + i),
                EndTime = now.AddMinutes(-trials + i + 1),
                Tags = new Dictionary<string, string>(template.Tags) { ["sweep"] = sweepId },
            };
        }).ToList();
        foreach (var chunk in runs.Chunk(20))
            await Task.WhenAll(chunk.Select(r => store.SaveRunAsync(r)));
        await store.SaveSweepAsync(source with { SweepId = sweepId, TrialCount = trials, Status = SweepRecordStatus.Completed, CreatedAt = now, UpdatedAt = now });
        return sweepId;
    }

    private async Task<string> SeedFailedRunsAsync(int count)
    {
        var pipeline = "speed-" + Guid.NewGuid().ToString("N")[..6];
        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { Kind = DatasetKinds.Tabular, SourceContainer = "uploads", SourcePrefix = $"datasets/{pipeline}/nothing-here" },
            Columns = new() { Label = "approved" },
            Sweep = new PipelineSweep { Algorithm = "random", MaxTrials = 1, ParallelTrials = 1, Epochs = 1 },
            Metric = "auc",
        };
        using var api = fixture.Api();
        for (var i = 0; i < count; i++)
        {
            var started = await api.PostAsJsonAsync($"api/pipelines/{pipeline}/runs", spec, MlJson.Options);
            Assert.True(started.StatusCode == HttpStatusCode.Accepted, await started.Content.ReadAsStringAsync());
        }

        // Listed at once; give them up to 2 minutes to fail (the page is measured whatever their state, with all 100 listed).
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (true)
        {
            var runs = (await api.GetFromJsonAsync<JsonObject>($"api/pipelines/runs?pipeline={pipeline}"))!["runs"]!.AsArray();
            var done = runs.Count(r => (string?)r!["state"] is not ("Running" or "Pending"));
            if ((runs.Count >= count && done == runs.Count) || DateTime.UtcNow > deadline)
            {
                Assert.Equal(count, runs.Count);
                output.WriteLine($"{pipeline}: {runs.Count} runs listed, {done} done");
                return pipeline;
            }

            await Task.Delay(1000);
        }
    }

    private async Task ShotAsync(IPage page, string name)
    {
        var path = Path.Combine(fixture.Screenshots, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        output.WriteLine("screenshot: " + path);
    }
}
