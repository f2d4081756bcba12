using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Client;
using MlFunctions.Api.Durable;
using MlFunctions.Core;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Tracking;

namespace MlFunctions.Api.Sweeps;

/// <summary>
/// The sweep and tracking API, over the blob tracking store: start a sweep from its spec, list sweeps,
/// a sweep's trials best first, one trial's metric history, and a side-by-side comparison of trials.
/// </summary>
public sealed class SweepHandlers(ITrackingStore store)
{
    /// <summary>POST api/sweeps: the body is a <see cref="SweepSpec"/>; an invalid one is a 400 listing every problem.</summary>
    public async Task HandleStart(HttpContext http, DurableTaskClient client, ManagementLinkFactory links)
    {
        var body = await HttpJson.ReadBodyAsync(http.Request);
        var spec = OrchestrationInputs.Read<SweepSpec>(body, "sweep spec") ?? throw new BadRequestException("the body must be a sweep spec: {\"name\", \"parameters\", \"objective\", \"trial\", ...}");
        var problems = spec.Validate();
        if (problems.Count > 0)
        {
            await HttpJson.ProblemsAsync(http, "sweep spec", problems);
            return;
        }

        // The instance id is the sweep id (trial ids and tracking blobs derive from it): default to a readable one.
        var id = OrchestrationStarter.ReadInstanceId(http.Request) ?? $"{Slug(spec.Name)}-{Guid.NewGuid().ToString("N")[..12]}";
        await OrchestrationStarter.StartAsync(http, client, OrchestrationNames.HyperparameterSweep, new SweepInput(spec), id, links);
    }

    /// <summary>GET api/sweeps: newest first, with outcome and best trial.</summary>
    public async Task HandleList(HttpContext http)
    {
        var sweeps = await store.ListSweepsAsync(http.RequestAborted);
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new
        {
            sweeps = sweeps.Select(s => new
            {
                s.SweepId,
                s.Spec.Name,
                s.Spec.Algorithm,
                objective = s.Spec.Objective,
                s.Status,
                s.Outcome,
                s.Reason,
                s.TrialCount,
                s.Best,
                s.CreatedAt,
                s.UpdatedAt,
            }),
        });
    }

    /// <summary>GET api/sweeps/{sweep}: the record (spec, status, best, Pareto front).</summary>
    public async Task HandleGet(HttpContext http) =>
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, await SweepAsync(http));

    /// <summary>The most trials one page of <c>api/sweeps/{sweep}/trials</c> answers.</summary>
    public const int MaxTrialsPage = 1000;

    /// <summary>
    /// GET api/sweeps/{sweep}/trials[?top=&amp;skip=]: best first by the sweep's objective; failed trials last.
    /// Rows are run summaries (params, final metrics, state, tags; no per-epoch history: that is
    /// .../trials/{trial}/metrics). <c>top</c> (1..1000, default 1000) and <c>skip</c> (default 0) page the
    /// ranking; <c>total</c> counts every trial. Bad paging is one 400 listing every problem.
    /// </summary>
    public async Task HandleTrials(HttpContext http)
    {
        var problems = new List<string>();
        foreach (var key in http.Request.Query.Keys.Where(k => k is not ("top" or "skip" or ApiRoutes.KeyQuery)))
            problems.Add($"unknown query parameter '{key}'; trials takes top=<1..{MaxTrialsPage}> and skip=<0..>");
        var top = QueryInt(http, "top", 1, MaxTrialsPage, MaxTrialsPage, problems);
        var skip = QueryInt(http, "skip", 0, int.MaxValue, 0, problems);
        if (problems.Count > 0)
        {
            await HttpJson.ProblemsAsync(http, "trials query", problems);
            return;
        }

        var sweep = await SweepAsync(http);
        // The experiment also holds the folds of cross-validated trials (their own runs); a trial is one row.
        var runs = (await store.ListRunSummariesAsync(sweep.SweepId, http.RequestAborted)).Where(r => r.Role == RunRole.Trial).ToList();
        var ordered = TrialRanking.BestFirst(runs, r => r.Objective, sweep.Spec.Objective.Direction)
            .ThenBy(r => r.RunId, StringComparer.Ordinal)
            .Select((r, rank) => new
            {
                rank = r.Objective is null ? (int?)null : rank + 1,
                r.RunId,
                r.Status,
                r.Objective,
                r.Secondary,
                r.Params,
                r.FinalMetrics,
                epochs = r.LastStep,
                r.Tags,
                r.Error,
                r.StartTime,
                r.EndTime,
            })
            .Skip(skip)
            .Take(top)
            .ToList();
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new
        {
            sweep = sweep.SweepId,
            objective = sweep.Spec.Objective,
            total = runs.Count,
            skip,
            count = ordered.Count,
            trials = ordered,
        });
    }

    private static int QueryInt(HttpContext http, string key, int min, int max, int fallback, List<string> problems)
    {
        var values = http.Request.Query[key];
        if (values.Count == 0)
            return fallback;
        if (values.Count > 1)
        {
            problems.Add($"give {key} once, got {values.Count} values");
            return fallback;
        }

        if (int.TryParse(values[0], NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
            return value;
        problems.Add($"{key} must be an integer between {min} and {max}; got '{values[0]}'");
        return fallback;
    }

    /// <summary>GET api/sweeps/{sweep}/trials/{trial}: the whole run (params, per-epoch metrics, tags, artifacts).</summary>
    public async Task HandleTrial(HttpContext http) =>
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, await RunAsync(http, Route(http, "trial")));

    /// <summary>GET api/sweeps/{sweep}/trials/{trial}/metrics[?metric=name]: the metric history, step by step.</summary>
    public async Task HandleMetrics(HttpContext http)
    {
        var run = await RunAsync(http, Route(http, "trial"));
        string? metric = http.Request.Query["metric"];
        var names = run.Metrics.SelectMany(m => m.Metrics.Keys).Distinct(StringComparer.Ordinal).ToList();
        if (metric is not null && !names.Contains(metric))
        {
            throw new BadRequestException($"trial {run.RunId} has no metric '{metric}'; it has {string.Join(", ", names)}");
        }

        var history = (metric is null ? names : [metric]).ToDictionary(
            n => n,
            n => run.Metrics.Where(m => m.Metrics.ContainsKey(n)).Select(m => new { step = m.Step, value = m.Metrics[n] }).ToList());
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new { trial = run.RunId, run.Status, metrics = history });
    }

    /// <summary>
    /// GET api/sweeps/{sweep}/compare?trials=a,b,c: the chosen trials side by side — each parameter and
    /// final metric per trial, and which parameters differ (MLflow's "compare runs").
    /// </summary>
    public async Task HandleCompare(HttpContext http)
    {
        var sweep = await SweepAsync(http);
        var ids = ((string?)http.Request.Query["trials"] ?? string.Empty)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Distinct(StringComparer.Ordinal)
            .ToList();
        if (ids.Count < 2)
        {
            throw new BadRequestException("compare needs at least two trial ids: ?trials=<id>,<id>[,...]");
        }

        var runs = new List<TrackingRun>();
        foreach (var id in ids)
        {
            runs.Add(await RunAsync(http, id, sweep.SweepId));
        }

        var comparison = Tracking.RunComparison.Of(runs);
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new
        {
            sweep = sweep.SweepId,
            trials = ids,
            comparison.Parameters,
            comparison.DifferingParameters,
            comparison.Metrics,
            objective = runs.Select(r => r.Objective).ToList(),
            status = runs.Select(r => r.Status).ToList(),
        });
    }

    private async Task<SweepRecord> SweepAsync(HttpContext http)
    {
        var id = Route(http, "sweep");
        return await Guard(() => store.GetSweepAsync(id, http.RequestAborted))
            ?? throw new BadRequestException($"no sweep '{id}'", StatusCodes.Status404NotFound);
    }

    private async Task<TrackingRun> RunAsync(HttpContext http, string trialId, string? sweepId = null)
    {
        // The sweep and the run are independent reads: side by side, a curve of the sweep page waits for one round trip, not two.
        var reading = Guard(() => store.GetRunAsync(trialId, http.RequestAborted));
        sweepId ??= (await SweepAsync(http)).SweepId;
        var run = await reading;
        return run is not null && run.Experiment == sweepId
            ? run
            : throw new BadRequestException($"sweep '{sweepId}' has no trial '{trialId}'", StatusCodes.Status404NotFound);
    }

    /// <summary>The store refuses ids that would leave the sweep's folder; that is the caller's mistake.</summary>
    private static async Task<T?> Guard<T>(Func<Task<T?>> read)
    {
        try
        {
            return await read();
        }
        catch (ArgumentException e)
        {
            throw new BadRequestException(e.Message);
        }
    }

    private static string Route(HttpContext http, string name) => (string)http.Request.RouteValues[name]!;

    private static string Slug(string name)
    {
        var slug = new string(name.ToLower(CultureInfo.InvariantCulture).Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray()).Trim('-');
        return slug.Length == 0 ? "sweep" : slug[..Math.Min(slug.Length, 24)];
    }

}
