using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using MlFunctions.Api;
using MlFunctions.Api.Pipelines;
using MlFunctions.Api.Sweeps;
using MlFunctions.Api.Tracking;

namespace MlFunctions.Functions;

/// <summary>
/// The sweep, tracking and pipeline-run routes as HTTP triggers over the shared <see cref="SweepHandlers"/>
/// and <see cref="PipelineRunHandlers"/>. Attribute
/// routes must be constants: they are the <see cref="ApiRoutes"/> ones, which the local host maps too.
/// </summary>
public sealed class TrackingFunctions(SweepHandlers handlers, TrackingHandlers tracking, PipelineRunHandlers pipelineRuns, PipelineHandlers pipelines, ILogger<TrackingFunctions> logger)
{
    [Function("PutPipelineSpec")]
    public Task PutPipelineSpec([HttpTrigger(AuthorizationLevel.Function, "put", Route = ApiRoutes.Pipeline)] HttpRequest request, string name) =>
        Run(request, pipelines.HandlePut, ("name", name));

    [Function("GetPipelineSpec")]
    public Task GetPipelineSpec([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.Pipeline)] HttpRequest request, string name) =>
        Run(request, pipelines.HandleGet, ("name", name));

    [Function("StartPipelineRun")]
    public Task StartPipelineRun(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = ApiRoutes.PipelineRuns)] HttpRequest request,
        string name,
        [DurableClient] DurableTaskClient client,
        FunctionContext context)
    {
        request.RouteValues["name"] = name;
        return ApiGuard.RunAsync(request.HttpContext, logger, () => pipelines.HandleStart(request.HttpContext, client, ManagementPayloads.Factory(client, context)));
    }

    [Function("ListPipelineRuns")]
    public Task ListPipelineRuns([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.AllPipelineRuns)] HttpRequest request, [DurableClient] DurableTaskClient client) =>
        ApiGuard.RunAsync(request.HttpContext, logger, () => PipelineHandlers.HandleList(request.HttpContext, client));

    [Function("GetPipelineRun")]
    public Task GetPipelineRun([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.PipelineRun)] HttpRequest request, string run) =>
        Run(request, pipelineRuns.HandleRun, ("run", run));

    [Function("GetPipelineRunReport")]
    public Task GetPipelineRunReport([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.PipelineRunReport)] HttpRequest request, string run) =>
        Run(request, pipelineRuns.HandleReport, ("run", run));

    [Function("StartSweep")]
    public Task StartSweep(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = ApiRoutes.Sweeps)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        FunctionContext context) =>
        ApiGuard.RunAsync(request.HttpContext, logger, () => handlers.HandleStart(request.HttpContext, client, ManagementPayloads.Factory(client, context)));

    [Function("ListSweeps")]
    public Task ListSweeps([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.Sweeps)] HttpRequest request) =>
        Run(request, handlers.HandleList);

    [Function("GetSweep")]
    public Task GetSweep([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.Sweep)] HttpRequest request, string sweep) =>
        Run(request, handlers.HandleGet, ("sweep", sweep));

    [Function("ListSweepTrials")]
    public Task ListSweepTrials([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.SweepTrials)] HttpRequest request, string sweep) =>
        Run(request, handlers.HandleTrials, ("sweep", sweep));

    [Function("GetSweepTrial")]
    public Task GetSweepTrial([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.SweepTrial)] HttpRequest request, string sweep, string trial) =>
        Run(request, handlers.HandleTrial, ("sweep", sweep), ("trial", trial));

    [Function("GetSweepTrialMetrics")]
    public Task GetSweepTrialMetrics([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.SweepTrialMetrics)] HttpRequest request, string sweep, string trial) =>
        Run(request, handlers.HandleMetrics, ("sweep", sweep), ("trial", trial));

    [Function("CompareSweepTrials")]
    public Task CompareSweepTrials([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.SweepCompare)] HttpRequest request, string sweep) =>
        Run(request, handlers.HandleCompare, ("sweep", sweep));

    [Function("ListTrackingExperiments")]
    public Task ListTrackingExperiments([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.TrackingExperiments)] HttpRequest request) =>
        Run(request, tracking.HandleExperiments);

    [Function("SearchTrackingRuns")]
    public Task SearchTrackingRuns([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.TrackingRuns)] HttpRequest request) =>
        Run(request, tracking.HandleSearch);

    [Function("GetTrackingRun")]
    public Task GetTrackingRun([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.TrackingRun)] HttpRequest request, string run) =>
        Run(request, tracking.HandleRun, ("run", run));

    [Function("GetTrackingRunMetric")]
    public Task GetTrackingRunMetric([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.TrackingRunMetric)] HttpRequest request, string run, string key) =>
        Run(request, tracking.HandleMetric, ("run", run), ("key", key));

    [Function("CompareTrackingRuns")]
    public Task CompareTrackingRuns([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.TrackingCompare)] HttpRequest request) =>
        Run(request, tracking.HandleCompare);

    /// <summary>Route parameters are bound to arguments here; the shared handlers read RouteValues, so copy them.</summary>
    private Task Run(HttpRequest request, Func<HttpContext, Task> handler, params (string Key, string Value)[] routeValues)
    {
        foreach (var (key, value) in routeValues)
        {
            request.RouteValues[key] = value;
        }

        return ApiGuard.RunAsync(request.HttpContext, logger, () => handler(request.HttpContext));
    }
}
