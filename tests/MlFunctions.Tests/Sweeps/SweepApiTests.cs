using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using MlFunctions.Tests.Http;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Sweeps;

/// <summary>
/// Sweeps on the embedded engine with Azurite, through the HTTP API: stand-in trials run as real
/// sub-orchestrations with real events, and every trial lands in the tracking store.
/// </summary>
[Collection(nameof(LocalHostCollection))]
public sealed class SweepApiTests(LocalHostFixture host, ITestOutputHelper output)
{
    [Fact]
    public async Task ATpeSweepRunsItsBudgetTracksEveryTrialAndServesTheTrackingApi()
    {
        using var api = host.Client();
        var spec = new
        {
            name = "branin tpe",
            parameters = new object[]
            {
                new { name = "x1", kind = "double", min = -5, max = 10 },
                new { name = "x2", kind = "double", min = 0, max = 15 },
            },
            algorithm = "tpe",
            algorithmSettings = new Dictionary<string, string> { ["nStartup"] = "4" },
            objective = new { metric = "loss", direction = "minimize" },
            secondaryObjective = new { metric = "score", direction = "maximize" },
            parallelTrialCount = 3,
            maxTrialCount = 8,
            seed = 11,
            trial = new { standIn = new { function = "branin", epochs = 3 } },
        };
        var start = await api.Http.PostAsJsonAsync("api/sweeps", spec);
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        var id = (string)(await start.Content.ReadFromJsonAsync<JsonObject>())!["id"]!;
        Assert.StartsWith("branin-tpe-", id);

        var (status, done) = await api.WaitDoneAsync(id, TimeSpan.FromMinutes(4));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Completed", (string?)done!["runtimeStatus"]);
        var result = done["output"]!;
        Assert.Equal("MaxTrialsReached", (string?)result["outcome"]);
        Assert.Equal(8, result["trials"]!.AsArray().Count);

        // A Pareto front of loss vs score is one point (they are the same quantity): the best trial.
        Assert.Equal((string?)result["best"]!["trialId"], (string?)Assert.Single(result["paretoFront"]!.AsArray())!["trialId"]);

        var trials = await api.Http.GetFromJsonAsync<JsonObject>($"api/sweeps/{id}/trials");
        var rows = trials!["trials"]!.AsArray();
        Assert.Equal(8, rows.Count);
        var losses = rows.Select(r => (double)r!["objective"]!).ToList();
        Assert.Equal(losses.Order(), losses);
        foreach (var row in rows)
            output.WriteLine($"{row!["rank"]} {row["runId"]} loss={row["objective"]} {row["params"]!.ToJsonString()}");
        Assert.Equal(8, (int)trials["total"]!);
        Assert.Equal(3, (int)rows[0]!["epochs"]!);

        // Paging the ranking: rows 3-5 of 8, the same trials in the same order as the whole list's.
        var page = await api.Http.GetFromJsonAsync<JsonObject>($"api/sweeps/{id}/trials?top=3&skip=2");
        Assert.Equal(8, (int)page!["total"]!);
        Assert.Equal(rows.Skip(2).Take(3).Select(r => (string?)r!["runId"]), page["trials"]!.AsArray().Select(r => (string?)r!["runId"]));
        Assert.Equal(3, (int?)page["trials"]!.AsArray()[0]!["rank"]);
        var badPage = await api.Http.GetAsync($"api/sweeps/{id}/trials?top=0&skip=-1&limit=5");
        Assert.Equal(HttpStatusCode.BadRequest, badPage.StatusCode);
        var pageProblems = (await badPage.Content.ReadFromJsonAsync<JsonObject>())!["problems"]!.AsArray().Select(p => (string)p!).ToList();
        Assert.Equal(3, pageProblems.Count); // top, skip and the unknown parameter, in one answer

        var bestId = (string)rows[0]!["runId"]!;
        var metrics = await api.Http.GetFromJsonAsync<JsonObject>($"api/sweeps/{id}/trials/{bestId}/metrics?metric=loss");
        var history = metrics!["metrics"]!["loss"]!.AsArray();
        Assert.Equal([1, 2, 3], history.Select(h => (int)h!["step"]!));
        Assert.Equal((double)rows[0]!["objective"]!, (double)history[^1]!["value"]!, 9);

        var compare = await api.Http.GetFromJsonAsync<JsonObject>($"api/sweeps/{id}/compare?trials={bestId},{rows[1]!["runId"]}");
        Assert.Equal(2, compare!["parameters"]!["x1"]!.AsArray().Count);
        Assert.Contains("x1", compare["differingParameters"]!.AsArray().Select(p => (string)p!));

        var list = await api.Http.GetFromJsonAsync<JsonObject>("api/sweeps");
        var mine = list!["sweeps"]!.AsArray().Single(s => (string?)s!["sweepId"] == id);
        Assert.Equal("Completed", (string?)mine!["status"]);
        Assert.Equal(8, (int)mine["trialCount"]!);
    }

    [Fact]
    public async Task ALongSweepContinuesAsNewAcrossGenerationsAndRunsItsWholeBudget()
    {
        using var api = host.Client();
        var spec = SphereSpec("generations", "random", maxTrials: 7, trialsPerGeneration: 3);
        var (id, done) = await RunSweepAsync(api, spec);
        var result = done["output"]!;
        Assert.Equal(7, result["trials"]!.AsArray().Count);
        Assert.Equal(7, result["trials"]!.AsArray().Select(t => (string)t!["trialId"]!).Distinct().Count());
        Assert.True((int)result["generations"]! >= 2, $"generations {result["generations"]}");
    }

    [Fact]
    public async Task ASweepScoredByCrossValidationReportsMeanAndSpreadPerTrial()
    {
        using var api = host.Client();
        var spec = SphereSpec("cv", "sobol", maxTrials: 2, crossValidationFolds: 3);
        var (id, done) = await RunSweepAsync(api, spec);

        var trialId = (string)done["output"]!["best"]!["trialId"]!;
        var run = await api.Http.GetFromJsonAsync<JsonObject>($"api/sweeps/{id}/trials/{trialId}");
        var cv = run!["crossValidation"]!;
        Assert.Equal(3, (int)cv["folds"]!);
        var folds = cv["perFold"]!.AsArray().Select(f => (double)f!["loss"]!).ToArray();
        Assert.Equal(3, folds.Length);
        Assert.Equal(folds.Average(), (double)cv["mean"]!["loss"]!, 9);
        Assert.True((double)cv["stdDev"]!["loss"]! > 0);
        Assert.Equal(folds.Average(), (double)run["objective"]!, 9);
    }

    [Fact]
    public async Task AnInvalidSpecIsRefusedWithEveryProblemListed()
    {
        using var api = host.Client();
        var spec = new
        {
            name = "bad",
            parameters = new object[]
            {
                new { name = "lr", kind = "double", min = 0, max = 0.1, scale = "log" },
                new { name = "width", kind = "int", min = 256, max = 16 },
            },
            algorithm = "annealing",
            objective = new { metric = "loss", direction = "minimize" },
            trial = new { standIn = new { function = "sphere" } },
        };
        var response = await api.Http.PostAsJsonAsync("api/sweeps", spec);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonObject>();
        var problems = body!["problems"]!.AsArray().Select(p => (string)p!).ToList();
        output.WriteLine(string.Join("\n", problems));
        Assert.Contains(problems, p => p.Contains("lr") && p.Contains("log"));
        Assert.Contains(problems, p => p.Contains("width"));
        Assert.Contains(problems, p => p.Contains("unknown algorithm 'annealing'"));

        var empty = await api.Http.PostAsJsonAsync("api/sweeps", new { name = "empty", parameters = Array.Empty<object>(), objective = new { metric = "loss" }, trial = new { standIn = new { } } });
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);

        // The generic starter checks the same rules.
        var (generic, genericBody) = await api.StartAsync("HyperparameterSweep", new { spec });
        Assert.Equal(HttpStatusCode.BadRequest, generic.StatusCode);
        Assert.Contains("unknown algorithm", (string?)genericBody["error"]);

        Assert.Equal(HttpStatusCode.NotFound, (await api.Http.GetAsync("api/sweeps/no-such-sweep/trials")).StatusCode);
    }

    /// <summary>A one-parameter sweep of 1-epoch stand-in trials on the sphere function.</summary>
    private static Dictionary<string, object> SphereSpec(string name, string algorithm, int maxTrials, int? trialsPerGeneration = null, int? crossValidationFolds = null)
    {
        var spec = new Dictionary<string, object>
        {
            ["name"] = name,
            ["parameters"] = new object[] { new { name = "x1", kind = "double", min = -1, max = 1 } },
            ["algorithm"] = algorithm,
            ["objective"] = new { metric = "loss", direction = "minimize" },
            ["parallelTrialCount"] = 2,
            ["maxTrialCount"] = maxTrials,
            ["trial"] = new { standIn = new { function = "sphere", epochs = 1 } },
        };
        if (trialsPerGeneration is { } perGeneration)
            spec["trialsPerGeneration"] = perGeneration;
        if (crossValidationFolds is { } folds)
            spec["crossValidationFolds"] = folds;
        return spec;
    }

    /// <summary>Starts a sweep through the API and waits until it completes.</summary>
    private static async Task<(string Id, JsonObject Done)> RunSweepAsync(ApiClient api, object spec)
    {
        var start = await api.Http.PostAsJsonAsync("api/sweeps", spec);
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        var id = (string)(await start.Content.ReadFromJsonAsync<JsonObject>())!["id"]!;
        var (_, done) = await api.WaitDoneAsync(id, TimeSpan.FromMinutes(3));
        Assert.Equal("Completed", (string?)done!["runtimeStatus"]);
        return (id, done);
    }
}
