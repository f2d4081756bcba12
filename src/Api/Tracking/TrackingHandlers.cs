using System.Globalization;
using Microsoft.AspNetCore.Http;
using MlFunctions.Core;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;

namespace MlFunctions.Api.Tracking;

/// <summary>
/// The tracking API over every training run (sweep trials, their folds, pipeline retrains, bare TrainModel
/// runs), in MLflow's nouns: search runs across experiments, read one run live (its steps arrive as the
/// epochs end), one metric's history, and compare runs side by side, from any sweeps.
/// </summary>
public sealed class TrackingHandlers(ITrackingStore store)
{
    public const int MaxCompared = 100;
    public const int MaxLimit = 1000;

    private static readonly string[] Known = ["experiment", "pipeline", "pipelineRun", "sweep", "role", "status", "model", "metric", "order", "limit"];

    /// <summary>GET api/tracking/experiments: the names of the experiments that have runs.</summary>
    public async Task HandleExperiments(HttpContext http)
    {
        var names = await store.ListExperimentsAsync(http.RequestAborted);
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new { experiments = names });
    }

    /// <summary>
    /// GET api/tracking/runs?experiment=&amp;pipeline=&amp;pipelineRun=&amp;sweep=&amp;role=&amp;status=&amp;model=&amp;metric=&amp;order=asc|desc&amp;limit=:
    /// runs matching every filter given. With <c>metric</c>, ranked by its final value (the latest step's while
    /// running; <c>order</c> defaults to desc), runs without it last; otherwise newest first. Every problem
    /// of the query comes back in one 400.
    /// </summary>
    public async Task HandleSearch(HttpContext http)
    {
        var query = RunQuery.Parse(http.Request.Query, out var problems);
        if (problems.Count > 0)
        {
            await HttpJson.ProblemsAsync(http, "run query", problems);
            return;
        }

        var runs = (await store.ListRunSummariesAsync(query.Experiment, http.RequestAborted)).Where(query.Matches);
        var ordered = query.Metric is { } metric
            ? Rank(runs, metric, query.Descending)
            : runs.OrderByDescending(r => r.StartTime).ThenBy(r => r.RunId, StringComparer.Ordinal).ToList();
        var page = ordered.Take(query.Limit).ToList();
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new
        {
            count = page.Count,
            total = ordered.Count,
            metric = query.Metric,
            order = query.Metric is null ? null : query.Descending ? "desc" : "asc",
            runs = page.Select(r => Row(r, query.Metric)),
        });
    }

    /// <summary>GET api/tracking/runs/{run}: the whole run, with every step written so far (live while it trains).</summary>
    public async Task HandleRun(HttpContext http)
    {
        var run = await RunAsync(http, Route(http, "run"));
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, run with { FinalMetrics = TrackingRunMerge.Latest(run) });
    }

    /// <summary>
    /// GET api/tracking/runs/{run}/metrics/{key}: one metric step by step. An unknown key is a 404 naming the
    /// keys the run has; a running run that has reported no step yet answers an empty history.
    /// </summary>
    public async Task HandleMetric(HttpContext http)
    {
        var run = await RunAsync(http, Route(http, "run"));
        var key = Route(http, "key");
        var names = run.Metrics.SelectMany(m => m.Metrics.Keys).Concat(run.FinalMetrics.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (!names.Contains(key) && !(run.Status == TrialState.Running && names.Count == 0))
        {
            throw new BadRequestException(
                $"run '{run.RunId}' has no metric '{key}'; it has {(names.Count == 0 ? "none" : string.Join(", ", names))}",
                StatusCodes.Status404NotFound);
        }

        var history = run.Metrics.Where(m => m.Metrics.ContainsKey(key)).Select(m => new { step = m.Step, value = m.Metrics[key] }).ToList();
        double? final = run.FinalMetrics.TryGetValue(key, out var f) ? f : history.Count > 0 ? history[^1].value : null;
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new { runId = run.RunId, key, status = run.Status, final, history });
    }

    /// <summary>
    /// GET api/tracking/compare?runs=a,b[,...]: runs from any experiments side by side: each param and final
    /// metric per run (null where a run has none), which params differ, and status, role and experiment.
    /// </summary>
    public async Task HandleCompare(HttpContext http)
    {
        var problems = new List<string>();
        foreach (var key in http.Request.Query.Keys.Where(k => k is not ("runs" or ApiRoutes.KeyQuery)))
            problems.Add($"unknown query parameter '{key}'; compare takes runs=<id>,<id>[,...]");
        var ids = ((string?)http.Request.Query["runs"] ?? string.Empty)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Distinct(StringComparer.Ordinal)
            .ToList();
        if (ids.Count < 2)
            problems.Add("compare needs at least two run ids: ?runs=<id>,<id>[,...]");
        if (ids.Count > MaxCompared)
            problems.Add($"compare takes at most {MaxCompared} runs, got {ids.Count}");
        problems.AddRange(ids.Where(id => !SafeNames.IsId(id)).Select(id => $"'{id}' is not a valid run id"));
        if (problems.Count > 0)
        {
            await HttpJson.ProblemsAsync(http, "compare query", problems);
            return;
        }

        var found = await Task.WhenAll(ids.Select(id => store.GetRunAsync(id, http.RequestAborted)));
        var missing = ids.Where((_, i) => found[i] is null).ToList();
        if (missing.Count > 0)
        {
            throw new BadRequestException($"no run(s) {string.Join(", ", missing.Select(m => $"'{m}'"))}", StatusCodes.Status404NotFound);
        }

        var runs = found.Select(r => r!).ToList();
        var comparison = RunComparison.Of(runs);
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new
        {
            runs = runs.Select(r => new { r.RunId, r.Experiment, r.Role, r.Status, sweep = r.Tags.GetValueOrDefault("sweep"), pipelineRun = r.Tags.GetValueOrDefault("pipelineRun") }),
            comparison.Parameters,
            comparison.DifferingParameters,
            comparison.Metrics,
        });
    }

    private static List<RunSummary> Rank(IEnumerable<RunSummary> runs, string metric, bool descending)
    {
        var withValue = runs.Select(r => (Run: r, Value: r.FinalMetrics.TryGetValue(metric, out var v) && double.IsFinite(v) ? v : (double?)null)).ToList();
        var ranked = withValue.Where(x => x.Value is not null);
        var sorted = descending ? ranked.OrderByDescending(x => x.Value) : ranked.OrderBy(x => x.Value);
        return sorted.ThenBy(x => x.Run.RunId, StringComparer.Ordinal).Select(x => x.Run)
            .Concat(withValue.Where(x => x.Value is null).Select(x => x.Run).OrderBy(r => r.RunId, StringComparer.Ordinal))
            .ToList();
    }

    private static object Row(RunSummary r, string? metric)
    {
        var latest = r.FinalMetrics;
        return new
        {
            r.RunId,
            r.Experiment,
            r.Role,
            r.Status,
            value = metric is not null && latest.TryGetValue(metric, out var v) ? v : (double?)null,
            r.Params,
            metrics = latest,
            epochs = r.LastStep,
            r.Tags,
            r.Artifacts,
            r.Objective,
            r.Error,
            r.StartTime,
            r.EndTime,
        };
    }

    private async Task<TrackingRun> RunAsync(HttpContext http, string runId)
    {
        if (!SafeNames.IsId(runId))
        {
            throw new BadRequestException($"'{runId}' is not a valid run id");
        }

        return await store.GetRunAsync(runId, http.RequestAborted)
            ?? throw new BadRequestException($"no run '{runId}'", StatusCodes.Status404NotFound);
    }

    private static string Route(HttpContext http, string name) => (string)http.Request.RouteValues[name]!;

    /// <summary>A parsed, validated run search.</summary>
    internal sealed record RunQuery(
        string? Experiment, string? Pipeline, string? PipelineRun, string? Sweep, RunRole? Role, TrialState? Status, string? Model, string? Metric, bool Descending, int Limit)
    {
        public bool Matches(RunSummary r) =>
            (Pipeline is null || r.Tags.GetValueOrDefault("pipeline") == Pipeline)
            && (PipelineRun is null || r.Tags.GetValueOrDefault("pipelineRun") == PipelineRun)
            && (Sweep is null || r.Tags.GetValueOrDefault("sweep") == Sweep)
            && (Role is null || r.Role == Role)
            && (Status is null || r.Status == Status)
            && (Model is null || r.Params.GetValueOrDefault("model") == Model);

        public static RunQuery Parse(IQueryCollection query, out List<string> problems)
        {
            var found = new List<string>();
            foreach (var key in query.Keys.Where(k => k != ApiRoutes.KeyQuery && !Known.Contains(k, StringComparer.Ordinal)))
                found.Add($"unknown query parameter '{key}'; known: {string.Join(", ", Known)}");

            string? One(string key)
            {
                var values = query[key];
                if (values.Count > 1)
                    found.Add($"give {key} once, got {values.Count} values");
                var value = values.Count == 0 ? null : values[0];
                if (value is not null && string.IsNullOrWhiteSpace(value))
                    found.Add($"{key} is empty");
                return string.IsNullOrWhiteSpace(value) ? null : value.Trim();
            }

            TEnum? Enum<TEnum>(string key)
                where TEnum : struct, Enum
            {
                var text = One(key);
                if (text is null)
                    return null;
                if (System.Enum.TryParse<TEnum>(text, ignoreCase: true, out var value) && System.Enum.IsDefined(value) && !int.TryParse(text, out _))
                    return value;
                found.Add($"{key} must be one of {string.Join(", ", System.Enum.GetNames<TEnum>().Select(n => char.ToLowerInvariant(n[0]) + n[1..]))}; got '{text}'");
                return null;
            }

            var experiment = One("experiment");
            if (experiment is not null && !SafeNames.IsId(experiment))
                found.Add($"'{experiment}' is not a valid experiment name");
            var role = Enum<RunRole>("role");
            var status = Enum<TrialState>("status");
            var metric = One("metric");
            var order = One("order");
            var descending = true;
            if (order is not null)
            {
                if (order.Equals("desc", StringComparison.OrdinalIgnoreCase))
                    descending = true;
                else if (order.Equals("asc", StringComparison.OrdinalIgnoreCase))
                    descending = false;
                else
                    found.Add($"order must be asc or desc; got '{order}'");
                if (metric is null)
                    found.Add("order ranks by a metric: give metric=<name> too");
            }

            var limit = MaxLimit;
            if (One("limit") is { } limitText && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit))
                found.Add($"limit must be an integer between 1 and {MaxLimit}; got '{limitText}'");

            problems = found;
            return new RunQuery(experiment, One("pipeline"), One("pipelineRun"), One("sweep"), role, status, One("model"), metric, descending, limit);
        }
    }
}

/// <summary>Runs side by side (MLflow's "compare runs"); the sweep's compare and the tracking compare share it.</summary>
public sealed record RunComparison(
    IReadOnlyDictionary<string, List<string?>> Parameters,
    IReadOnlyList<string> DifferingParameters,
    IReadOnlyDictionary<string, List<double?>> Metrics)
{
    public static RunComparison Of(IReadOnlyList<TrackingRun> runs)
    {
        var latest = runs.Select(TrackingRunMerge.Latest).ToList();
        var paramNames = runs.SelectMany(r => r.Params.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var metricNames = latest.SelectMany(m => m.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        return new RunComparison(
            paramNames.ToDictionary(n => n, n => runs.Select(r => r.Params.GetValueOrDefault(n)).ToList(), StringComparer.Ordinal),
            paramNames.Where(n => runs.Select(r => r.Params.GetValueOrDefault(n)).Distinct().Count() > 1).ToList(),
            metricNames.ToDictionary(n => n, n => latest.Select(m => m.TryGetValue(n, out var v) ? v : (double?)null).ToList(), StringComparer.Ordinal));
    }
}
