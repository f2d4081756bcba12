using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using MlFunctions.Api;
using MlFunctions.Api.Tracking;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace MlFunctions.Tests.Tracking;

/// <summary>The tracking routes' handlers over an in-memory store: search and ranking across sweeps, compare, live steps, 400s and 404s.</summary>
public sealed class TrackingHandlerTests
{
    private static readonly DateTime T0 = new(2026, 1, 1, 12, 0, 0, DateTimeKind.Utc);

    [Fact]
    public async Task SearchRanksRunsFromDifferentSweepsByAMetricAndFilters()
    {
        var handlers = new TrackingHandlers(Store());
        var (status, body) = await GetAsync(handlers.HandleSearch, "?pipeline=loans&metric=val_accuracy&order=desc");
        Assert.Equal(200, status);
        var ids = body["runs"]!.AsArray().Select(r => (string)r!["runId"]!).ToList();
        Assert.Equal(["b-sweep-t001", "r1-retrain", "a-sweep-t001", "a-sweep-t002"], ids);
        Assert.Equal(0.95, (double)body["runs"]![0]!["value"]!);

        // The running retrain ranks by its latest step.
        Assert.Equal("running", (string?)body["runs"]![1]!["status"]);
        Assert.Equal(2, (int)body["runs"]![1]!["epochs"]!);

        (_, body) = await GetAsync(handlers.HandleSearch, "?role=retrain");
        Assert.Equal("r1-retrain", (string?)Assert.Single(body["runs"]!.AsArray())!["runId"]);
        (_, body) = await GetAsync(handlers.HandleSearch, "?experiment=a-sweep&metric=val_accuracy&order=asc&limit=1");
        Assert.Equal("a-sweep-t001", (string?)Assert.Single(body["runs"]!.AsArray())!["runId"]);
        Assert.Equal(2, (int)body["total"]!);
    }

    [Fact]
    public async Task ABadQueryIsOne400WithEveryProblem()
    {
        var handlers = new TrackingHandlers(Store());
        var (status, body) = await GetAsync(handlers.HandleSearch, "?role=boss&status=done&order=up&limit=0&colour=red&experiment=..%2Fx");
        Assert.Equal(400, status);
        var problems = body["problems"]!.AsArray().Select(p => (string)p!).ToList();
        Assert.Contains(problems, p => p.StartsWith("unknown query parameter 'colour'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("role must be one of train, trial, fold, retrain", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("status must be one of running, succeeded, earlyStopped, failed", StringComparison.Ordinal));
        Assert.Contains("order must be asc or desc; got 'up'", problems);
        Assert.Contains("order ranks by a metric: give metric=<name> too", problems);
        Assert.Contains(problems, p => p.StartsWith("limit must be an integer between 1 and", StringComparison.Ordinal));
        Assert.Contains("'../x' is not a valid experiment name", problems);
    }

    [Fact]
    public async Task CompareShowsParamsAndFinalMetricsSideBySideAcrossSweeps()
    {
        var handlers = new TrackingHandlers(Store());
        var (status, body) = await GetAsync(handlers.HandleCompare, "?runs=a-sweep-t001,b-sweep-t001,r1-retrain");
        Assert.Equal(200, status);
        Assert.Equal(["a-sweep", "b-sweep", "loans"], body["runs"]!.AsArray().Select(r => (string)r!["experiment"]!));
        Assert.Equal(["0.01", "0.1", "0.1"], body["parameters"]!["learningRate"]!.AsArray().Select(v => (string)v!));
        Assert.Contains("learningRate", body["differingParameters"]!.AsArray().Select(v => (string)v!));
        Assert.Equal([0.9, 0.95, 0.93], body["metrics"]!["val_accuracy"]!.AsArray().Select(v => (double)v!));

        (status, body) = await GetAsync(handlers.HandleCompare, "?runs=a-sweep-t001");
        Assert.Equal(400, status);
        Assert.Contains("at least two run ids", (string?)body["error"]);
        (status, body) = await GetAsync(handlers.HandleCompare, "?runs=a-sweep-t001,nope,gone");
        Assert.Equal(404, status);
        Assert.Equal("no run(s) 'nope', 'gone'", (string?)body["error"]);
    }

    [Fact]
    public async Task ARunAndOneMetricReadLiveStepsAndUnknownsAre404()
    {
        var handlers = new TrackingHandlers(Store());
        var (status, body) = await GetAsync(handlers.HandleRun, "", ("run", "r1-retrain"));
        Assert.Equal(200, status);
        Assert.Equal("running", (string?)body["status"]);
        Assert.Equal([1, 2], body["metrics"]!.AsArray().Select(m => (int)m!["step"]!));

        (status, body) = await GetAsync(handlers.HandleMetric, "", ("run", "r1-retrain"), ("key", "val_loss"));
        Assert.Equal(200, status);
        Assert.Equal([1, 2], body["history"]!.AsArray().Select(m => (int)m!["step"]!));

        Assert.Equal(404, (await GetAsync(handlers.HandleRun, "", ("run", "nope"))).Status);
        (status, body) = await GetAsync(handlers.HandleMetric, "", ("run", "r1-retrain"), ("key", "auc"));
        Assert.Equal(404, status);
        Assert.Equal("run 'r1-retrain' has no metric 'auc'; it has val_accuracy, val_loss", (string?)body["error"]);
        Assert.Equal(400, (await GetAsync(handlers.HandleRun, "", ("run", ".."))).Status);
    }

    private static InMemoryTrackingStore Store()
    {
        var store = new InMemoryTrackingStore();
        store.Add(Run("a-sweep-t001", "a-sweep", RunRole.Trial, 0.01, 0.90));
        store.Add(Run("a-sweep-t002", "a-sweep", RunRole.Trial, 0.05, null));
        store.Add(Run("b-sweep-t001", "b-sweep", RunRole.Trial, 0.1, 0.95));
        store.Add(Run("r1-retrain", "loans", RunRole.Retrain, 0.1, null) with
        {
            Status = TrialState.Running,
            Metrics = [Step(1, 0.91), Step(2, 0.93)],
        });
        store.Add(Run("other", "Default", RunRole.Train, 0.2, 0.99) with { Tags = new Dictionary<string, string>() });
        return store;
    }

    private static TrackingRun Run(string id, string experiment, RunRole role, double lr, double? accuracy) => new()
    {
        RunId = id,
        Experiment = experiment,
        Role = role,
        Status = accuracy is null ? TrialState.Failed : TrialState.Succeeded,
        Params = new ParameterSet { ["learningRate"] = lr.ToString(System.Globalization.CultureInfo.InvariantCulture), ["model"] = "mlp" },
        FinalMetrics = accuracy is { } a ? new Dictionary<string, double> { ["val_accuracy"] = a } : new Dictionary<string, double>(),
        Tags = new Dictionary<string, string> { ["pipeline"] = "loans" },
        StartTime = T0,
    };

    private static MetricStep Step(int step, double accuracy) => new(step, new Dictionary<string, double> { ["val_accuracy"] = accuracy, ["val_loss"] = 1 - accuracy });

    private static async Task<(int Status, JsonObject Body)> GetAsync(Func<HttpContext, Task> handler, string query, params (string Key, string Value)[] route)
    {
        var http = new DefaultHttpContext();
        http.Request.Method = "GET";
        http.Request.QueryString = new QueryString(query);
        foreach (var (k, v) in route)
            http.Request.RouteValues[k] = v;
        http.Response.Body = new MemoryStream();
        await ApiGuard.RunAsync(http, NullLogger.Instance, () => handler(http));
        http.Response.Body.Position = 0;
        return (http.Response.StatusCode, (JsonObject)JsonNode.Parse(http.Response.Body)!);
    }
}

/// <summary>An <see cref="ITrackingStore"/> in memory, with the blob store's merge and step semantics.</summary>
internal sealed class InMemoryTrackingStore : ITrackingStore
{
    private readonly Dictionary<string, TrackingRun> runs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SweepRecord> sweeps = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SortedDictionary<int, MetricStep>> steps = new(StringComparer.Ordinal);

    public void Add(TrackingRun run) => runs[run.RunId] = run;

    public Task SaveSweepAsync(SweepRecord sweep, CancellationToken ct = default)
    {
        sweeps[sweep.SweepId] = sweep;
        return Task.CompletedTask;
    }

    public Task SaveRunAsync(TrackingRun run, CancellationToken ct = default)
    {
        var (merged, fresh) = TrackingRunMerge.Merge(runs.GetValueOrDefault(run.RunId), run);
        if (fresh)
            steps.Remove(run.RunId);
        runs[run.RunId] = merged;
        return Task.CompletedTask;
    }

    public Task SaveStepAsync(string runId, MetricStep step, CancellationToken ct = default)
    {
        if (!steps.TryGetValue(runId, out var s))
            steps[runId] = s = [];
        s[step.Step] = step;
        return Task.CompletedTask;
    }

    public Task<SweepRecord?> GetSweepAsync(string sweepId, CancellationToken ct = default) => Task.FromResult(sweeps.GetValueOrDefault(sweepId));

    public Task<TrackingRun?> GetRunAsync(string runId, CancellationToken ct = default) =>
        Task.FromResult(runs.TryGetValue(runId, out var r) ? With(r) : null);

    public Task<IReadOnlyList<SweepRecord>> ListSweepsAsync(CancellationToken ct = default) => Task.FromResult<IReadOnlyList<SweepRecord>>(sweeps.Values.ToList());

    public Task<IReadOnlyList<TrackingRun>> ListRunsAsync(string? experiment, CancellationToken ct = default) =>
        Task.FromResult<IReadOnlyList<TrackingRun>>(runs.Values.Where(r => experiment is null || r.Experiment == experiment).Select(With).ToList());

    public Task<IReadOnlyList<string>> ListExperimentsAsync(CancellationToken ct = default) =>
        Task.FromResult<IReadOnlyList<string>>(runs.Values.Select(r => r.Experiment).Distinct().Order(StringComparer.Ordinal).ToList());

    private TrackingRun With(TrackingRun r) =>
        steps.TryGetValue(r.RunId, out var s) ? r with { Metrics = TrackingRunMerge.History(r.Metrics, s.Values) } : r;
}
