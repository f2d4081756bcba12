namespace MlFunctions.Api;

/// <summary>
/// Route templates of the product's own HTTP surface, served identically by the Functions app and
/// the local host. Templates carry no leading slash and include their "api/" segment themselves:
/// host.json sets Functions' routePrefix to "" so that KServe's /v2 routes can sit beside /api.
/// </summary>
public static class ApiRoutes
{
    /// <summary>The query parameter a function key may come in (Functions' own convention, also taken by the local host); handlers that reject unknown parameters let it through.</summary>
    public const string KeyQuery = "code";

    public const string Health = "api/health";
    public const string StartOrchestration = "api/orchestrators/{name}";

    /// <summary>GET lists the sweeps; POST starts one from its spec.</summary>
    public const string Sweeps = "api/sweeps";
    public const string Sweep = "api/sweeps/{sweep}";
    public const string SweepTrials = "api/sweeps/{sweep}/trials";
    public const string SweepTrial = "api/sweeps/{sweep}/trials/{trial}";
    public const string SweepTrialMetrics = "api/sweeps/{sweep}/trials/{trial}/metrics";
    public const string SweepCompare = "api/sweeps/{sweep}/compare";

    /// <summary>GET: experiments that have tracking runs.</summary>
    public const string TrackingExperiments = "api/tracking/experiments";

    /// <summary>GET: search every training run (?experiment=, ?pipeline=, ?role=, ?status=, ?metric=, ?order=, ...).</summary>
    public const string TrackingRuns = "api/tracking/runs";

    /// <summary>GET: one run, live while it trains.</summary>
    public const string TrackingRun = "api/tracking/runs/{run}";

    /// <summary>GET: one metric's history, step by step.</summary>
    public const string TrackingRunMetric = "api/tracking/runs/{run}/metrics/{key}";

    /// <summary>GET ?runs=a,b,...: runs from any sweeps side by side.</summary>
    public const string TrackingCompare = "api/tracking/compare";

    /// <summary>PUT stores a pipeline spec under its name; GET reads it.</summary>
    public const string Pipeline = "api/pipelines/{name}";

    /// <summary>POST starts a run of the pipeline, from the spec in the body or the stored one.</summary>
    public const string PipelineRuns = "api/pipelines/{name}/runs";

    /// <summary>GET lists runs (?pipeline=, ?state=).</summary>
    public const string AllPipelineRuns = "api/pipelines/runs";

    /// <summary>A pipeline run's lineage (every step: inputs → outputs, timing, cached or not).</summary>
    public const string PipelineRun = "api/pipelines/runs/{run}";

    /// <summary>A pipeline run's report, as Markdown.</summary>
    public const string PipelineRunReport = "api/pipelines/runs/{run}/report";

    /// <summary>GET lists a pipeline's CRON schedules.</summary>
    public const string PipelineSchedules = "api/pipelines/{name}/schedules";

    /// <summary>PUT creates or replaces a schedule ({cron, timeZone, overrides, paused}); GET reads it; DELETE removes it.</summary>
    public const string PipelineSchedule = "api/pipelines/{name}/schedules/{schedule}";

    /// <summary>POST pauses a schedule.</summary>
    public const string PipelineSchedulePause = "api/pipelines/{name}/schedules/{schedule}/pause";

    /// <summary>POST resumes a schedule from its next occurrence.</summary>
    public const string PipelineScheduleResume = "api/pipelines/{name}/schedules/{schedule}/resume";

    /// <summary>GET lists every pipeline's schedules ("schedules" is a reserved pipeline name).</summary>
    public const string AllPipelineSchedules = "api/pipelines/schedules";

    /// <summary>GET: what each upload marker of the pipeline led to (run started, duplicate, rejected and why).</summary>
    public const string PipelineTriggerRecords = "api/pipelines/{name}/triggers";

    /// <summary>GET: the registered datasets with their versions (dashboard's Datasets page).</summary>
    public const string Datasets = "api/datasets";

    /// <summary>GET: one dataset version: manifest, validation profile, and its preparations with their fitted transforms.</summary>
    public const string DatasetVersion = "api/datasets/{name}/versions/{version}";

    /// <summary>GET: the dashboard's static files (both hosts; the local host serves them at / too). Anonymous: the files hold no data.</summary>
    public const string Dashboard = "dashboard/{*path}";

    /// <summary>
    /// Routes served without a function key: health for load balancers, and KServe's V2 health so Kubernetes
    /// liveness and readiness probes (which send no headers unless told) work. They reveal nothing but up/ready; the dashboard's files hold no data.
    /// </summary>
    public static IReadOnlyList<string> Anonymous { get; } = [Health, ServingRoutes.V2HealthLive, ServingRoutes.V2HealthReady, Dashboard];
}

/// <summary>Templates of the serving routes added for online validation and KServe conventions (also in <see cref="Inference.InferenceRoutes.All"/>).</summary>
public static class ServingRoutes
{
    public const string V2HealthLive = "v2/health/live";
    public const string V2HealthReady = "v2/health/ready";

    /// <summary>PUT, GET, DELETE: the model's routing policy (fixed, canary, abtest, bandit), with ETags.</summary>
    public const string Policy = "api/serving/{model}/policy";

    /// <summary>POST {"id", "reward" | "label"}: feedback for a request served under a policy.</summary>
    public const string Feedback = "v2/models/{model}/feedback";

    /// <summary>GET: KServe V1 model readiness, {"name", "ready"}.</summary>
    public const string V1ModelReady = "v1/models/{model}";

    /// <summary>GET: this instance's serving figures for the model per version: traffic, latency p50/p99 and histogram, error and cache-hit rates.</summary>
    public const string Stats = "api/serving/{model}/stats";

    /// <summary>POST a rollout spec: starts the staged canary rollout of an alias (202 with the management links).</summary>
    public const string Rollouts = "api/serving/{model}/rollouts";

    /// <summary>GET: a rollout's status, stages, last verdict and outcome.</summary>
    public const string Rollout = "api/serving/{model}/rollouts/{rollout}";

    /// <summary>POST (optional {"reason"}): cancels a rollout; it puts the policy back to champion only.</summary>
    public const string RolloutCancel = "api/serving/{model}/rollouts/{rollout}/cancel";
}

/// <summary>
/// Durable Functions' HTTP management API. In Azure Functions the Durable extension serves these
/// itself; the local host implements them with the same shapes and status codes.
/// </summary>
public static class DurableWebhookRoutes
{
    public const string Base = "runtime/webhooks/durabletask";
    public const string Instances = Base + "/instances";
    public const string Instance = Base + "/instances/{instanceId}";
    public const string RaiseEvent = Base + "/instances/{instanceId}/raiseEvent/{eventName}";
    public const string Terminate = Base + "/instances/{instanceId}/terminate";
    public const string Suspend = Base + "/instances/{instanceId}/suspend";
    public const string Resume = Base + "/instances/{instanceId}/resume";

    /// <summary>(method, template) pairs; the route-parity test allows exactly these beyond Functions' own.</summary>
    public static IReadOnlyList<(string Method, string Template)> All { get; } =
    [
        ("GET", Instances),
        ("DELETE", Instances),
        ("GET", Instance),
        ("DELETE", Instance),
        ("POST", RaiseEvent),
        ("POST", Terminate),
        ("POST", Suspend),
        ("POST", Resume),
    ];
}

/// <summary>Routes only the local host serves (Azure Functions has its own equivalents).</summary>
public static class LocalOnlyRoutes
{
    /// <summary>Prometheus scraping endpoint for the OpenTelemetry meters (inference requests, latency, batch size).</summary>
    public const string Metrics = "metrics";

    public static IReadOnlyList<(string Method, string Template)> All { get; } = [("GET", Metrics)];
}
