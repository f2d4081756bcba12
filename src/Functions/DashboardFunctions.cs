using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using MlFunctions.Api;
using MlFunctions.Api.Dashboard;

namespace MlFunctions.Functions;

/// <summary>
/// The dashboard as static content of the Functions app, at /dashboard/ (host.json's routePrefix is ""): the files of
/// src/Dashboard/wwwroot, copied next to the app as dashboard/, through the handler the local host maps on the same route.
/// </summary>
public sealed class DashboardFunctions
{
    [Function("Dashboard")]
    public Task Dashboard([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ApiRoutes.Dashboard)] HttpRequest request, string? path) =>
        DashboardContent.HandleAsync(request.HttpContext, DashboardContent.DefaultFolder, path);
}

/// <summary>The routes the dashboard's Datasets and Serving pages read, over the handlers the local host maps.</summary>
public sealed class DashboardApiFunctions(Api.Datasets.DatasetHandlers datasets, Api.Inference.ServingStats stats, Microsoft.Extensions.Logging.ILogger<DashboardApiFunctions> logger)
{
    [Function("ListDatasets")]
    public Task ListDatasets([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.Datasets)] HttpRequest request) =>
        ApiGuard.RunAsync(request.HttpContext, logger, () => datasets.HandleList(request.HttpContext));

    [Function("GetDatasetVersion")]
    public Task GetDatasetVersion([HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.DatasetVersion)] HttpRequest request, string name, string version) =>
        ApiGuard.RunAsync(request.HttpContext, logger, () => datasets.HandleGet(request.HttpContext));

    [Function("ServingStats")]
    public Task ServingStats([HttpTrigger(AuthorizationLevel.Function, "get", Route = ServingRoutes.Stats)] HttpRequest request, string model) =>
        ApiGuard.RunAsync(request.HttpContext, logger, () => stats.HandleGet(request.HttpContext));
}
