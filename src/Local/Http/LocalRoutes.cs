using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MlFunctions.Api;
using MlFunctions.Api.Durable;
using MlFunctions.Api.Inference;
using MlFunctions.Api.Sweeps;
using MlFunctions.Api.Tracking;
using MlFunctions.Api.Pipelines;
using MlFunctions.Local.Engine;

namespace MlFunctions.Local.Http;

/// <summary>
/// The local host's HTTP surface: the same shared handlers the Functions app maps, plus the Durable
/// management API that the Durable extension provides in Azure Functions.
/// </summary>
public static class LocalRoutes
{
    public static void Map(WebApplication app)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("MlFunctions.Local.Http");
        var keys = app.Services.GetRequiredService<ApiKeys>();
        var engine = app.Services.GetRequiredService<EngineService>();
        var links = app.Services.GetRequiredService<ManagementLinks>();

        // Routes that need a DurableTaskClient get it per request, after the engine has started.
        RequestDelegate Run(Func<HttpContext, DurableTaskClient, Task> handler) =>
            http => ApiGuard.RunAsync(http, logger, () => handler(http, engine.Client));

        static string Route(HttpContext http, string name) => (string)http.Request.RouteValues[name]!;

        Task<HttpManagementLinks> Links(HttpContext http, string instanceId) =>
            Task.FromResult(links.For($"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}", instanceId));

        app.Use((http, next) => keys.EnforceAsync(http, () => next(http)));

        app.MapGet(ApiRoutes.Health, http => HealthHandler.HandleAsync(http, "local"));
        app.MapGet(ApiRoutes.Dashboard, http => Api.Dashboard.DashboardContent.HandleAsync(http, DashboardFiles.Folder, (string?)http.Request.RouteValues["path"]));
        app.MapPost(ApiRoutes.StartOrchestration, Run((http, client) => OrchestrationStarter.HandleAsync(http, client, Route(http, "name"), Links)));

        app.MapInferenceRoutes();

        var sweeps = app.Services.GetRequiredService<SweepHandlers>();
        RequestDelegate Guarded(Func<HttpContext, Task> handler) => http => ApiGuard.RunAsync(http, logger, () => handler(http));
        app.MapPost(ApiRoutes.Sweeps, Run((http, client) => sweeps.HandleStart(http, client, Links)));
        app.MapGet(ApiRoutes.Sweeps, Guarded(sweeps.HandleList));
        app.MapGet(ApiRoutes.Sweep, Guarded(sweeps.HandleGet));
        app.MapGet(ApiRoutes.SweepTrials, Guarded(sweeps.HandleTrials));
        app.MapGet(ApiRoutes.SweepTrial, Guarded(sweeps.HandleTrial));
        app.MapGet(ApiRoutes.SweepTrialMetrics, Guarded(sweeps.HandleMetrics));
        app.MapGet(ApiRoutes.SweepCompare, Guarded(sweeps.HandleCompare));

        var tracking = app.Services.GetRequiredService<TrackingHandlers>();
        app.MapGet(ApiRoutes.TrackingExperiments, Guarded(tracking.HandleExperiments));
        app.MapGet(ApiRoutes.TrackingRuns, Guarded(tracking.HandleSearch));
        app.MapGet(ApiRoutes.TrackingRun, Guarded(tracking.HandleRun));
        app.MapGet(ApiRoutes.TrackingRunMetric, Guarded(tracking.HandleMetric));
        app.MapGet(ApiRoutes.TrackingCompare, Guarded(tracking.HandleCompare));

        var datasets = app.Services.GetRequiredService<Api.Datasets.DatasetHandlers>();
        app.MapGet(ApiRoutes.Datasets, Guarded(datasets.HandleList));
        app.MapGet(ApiRoutes.DatasetVersion, Guarded(datasets.HandleGet));
        app.MapGet(ServingRoutes.Stats, Guarded(app.Services.GetRequiredService<ServingStats>().HandleGet));

        var rollouts = app.Services.GetRequiredService<RolloutHandlers>();
        app.MapPost(ServingRoutes.Rollouts, Run((http, client) => rollouts.HandleStart(http, client, Links)));
        app.MapGet(ServingRoutes.Rollout, Run(rollouts.HandleGet));
        app.MapPost(ServingRoutes.RolloutCancel, Run(rollouts.HandleCancel));

        var pipelineRuns = app.Services.GetRequiredService<PipelineRunHandlers>();
        var pipelines = app.Services.GetRequiredService<PipelineHandlers>();
        app.MapPut(ApiRoutes.Pipeline, Guarded(pipelines.HandlePut));
        app.MapGet(ApiRoutes.Pipeline, Guarded(pipelines.HandleGet));
        app.MapPost(ApiRoutes.PipelineRuns, Run((http, client) => pipelines.HandleStart(http, client, Links)));
        app.MapGet(ApiRoutes.AllPipelineRuns, Run(PipelineHandlers.HandleList));
        app.MapGet(ApiRoutes.PipelineRun, Guarded(pipelineRuns.HandleRun));
        app.MapGet(ApiRoutes.PipelineRunReport, Guarded(pipelineRuns.HandleReport));

        var schedules = app.Services.GetRequiredService<PipelineScheduleHandlers>();
        app.MapGet(ApiRoutes.AllPipelineSchedules, Guarded(schedules.HandleListAll));
        app.MapGet(ApiRoutes.PipelineSchedules, Guarded(schedules.HandleList));
        app.MapPut(ApiRoutes.PipelineSchedule, Guarded(schedules.HandlePut));
        app.MapGet(ApiRoutes.PipelineSchedule, Guarded(schedules.HandleGet));
        app.MapDelete(ApiRoutes.PipelineSchedule, Guarded(schedules.HandleDelete));
        app.MapPost(ApiRoutes.PipelineSchedulePause, Guarded(schedules.HandlePause));
        app.MapPost(ApiRoutes.PipelineScheduleResume, Guarded(schedules.HandleResume));
        app.MapGet(ApiRoutes.PipelineTriggerRecords, Guarded(schedules.HandleTriggers));

        // Local only: in Azure Functions, metrics go to Application Insights / OTLP instead.
        app.MapPrometheusScrapingEndpoint(LocalOnlyRoutes.Metrics).WithMetadata(new HttpMethodMetadata(["GET"]));

        app.MapGet(DurableWebhookRoutes.Instances, Run(DurableManagementApi.QueryAsync));
        app.MapDelete(DurableWebhookRoutes.Instances, Run(DurableManagementApi.PurgeManyAsync));
        app.MapGet(DurableWebhookRoutes.Instance, Run((http, client) =>
            DurableManagementApi.GetStatusAsync(http, client, Route(http, "instanceId"), engine.Engine.Client.GetHistoryJsonAsync)));
        app.MapDelete(DurableWebhookRoutes.Instance, Run((http, client) => DurableManagementApi.PurgeAsync(http, client, Route(http, "instanceId"))));
        app.MapPost(DurableWebhookRoutes.RaiseEvent, Run((http, client) =>
            DurableManagementApi.RaiseEventAsync(http, client, Route(http, "instanceId"), Route(http, "eventName"))));
        app.MapPost(DurableWebhookRoutes.Terminate, Run((http, client) => DurableManagementApi.TerminateAsync(http, client, Route(http, "instanceId"))));
        app.MapPost(DurableWebhookRoutes.Suspend, Run((http, client) => DurableManagementApi.SuspendAsync(http, client, Route(http, "instanceId"))));
        app.MapPost(DurableWebhookRoutes.Resume, Run((http, client) => DurableManagementApi.ResumeAsync(http, client, Route(http, "instanceId"))));

    }
}
