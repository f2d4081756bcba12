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
