using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using MlFunctions.Api;
using MlFunctions.Api.Inference;

namespace MlFunctions.Functions;

/// <summary>
/// KServe V2/V1 and model-registry routes as HTTP triggers over the shared <see cref="InferenceHandlers"/>.
/// Attribute routes must be constants, so the templates are written out here; the route-parity test
/// fails if they drift from <see cref="InferenceRoutes.All"/>, which the local host maps.
/// </summary>
public sealed class InferenceFunctions(InferenceHandlers handlers)
{
    [Function("V2ServerMetadata")]
    public Task V2ServerMetadata([HttpTrigger(AuthorizationLevel.Function, "get", Route = "v2")] HttpRequest request) =>
        Run("V2ServerMetadata", request);

    // Anonymous, as /api/health: Kubernetes probes send no function key (ApiRoutes.Anonymous).
    [Function("V2HealthLive")]
    public Task V2HealthLive([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ServingRoutes.V2HealthLive)] HttpRequest request) =>
        Run("V2HealthLive", request);

    [Function("V2HealthReady")]
    public Task V2HealthReady([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ServingRoutes.V2HealthReady)] HttpRequest request) =>
        Run("V2HealthReady", request);

    [Function("V2ModelMetadata")]
    public Task V2ModelMetadata([HttpTrigger(AuthorizationLevel.Function, "get", Route = "v2/models/{model}")] HttpRequest request, string model) =>
        Run("V2ModelMetadata", request, ("model", model));

    [Function("V2ModelVersionMetadata")]
    public Task V2ModelVersionMetadata(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "v2/models/{model}/versions/{version}")] HttpRequest request, string model, string version) =>
        Run("V2ModelVersionMetadata", request, ("model", model), ("version", version));

    [Function("V2ModelReady")]
    public Task V2ModelReady([HttpTrigger(AuthorizationLevel.Function, "get", Route = "v2/models/{model}/ready")] HttpRequest request, string model) =>
        Run("V2ModelReady", request, ("model", model));

    [Function("V2ModelVersionReady")]
    public Task V2ModelVersionReady(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "v2/models/{model}/versions/{version}/ready")] HttpRequest request, string model, string version) =>
        Run("V2ModelVersionReady", request, ("model", model), ("version", version));

    [Function("V2ModelInfer")]
    public Task V2ModelInfer([HttpTrigger(AuthorizationLevel.Function, "post", Route = "v2/models/{model}/infer")] HttpRequest request, string model) =>
        Run("V2ModelInfer", request, ("model", model));

    [Function("V2ModelVersionInfer")]
    public Task V2ModelVersionInfer(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "v2/models/{model}/versions/{version}/infer")] HttpRequest request, string model, string version) =>
        Run("V2ModelVersionInfer", request, ("model", model), ("version", version));

    [Function("V2ModelFeedback")]
    public Task V2ModelFeedback([HttpTrigger(AuthorizationLevel.Function, "post", Route = ServingRoutes.Feedback)] HttpRequest request, string model) =>
        Run("V2ModelFeedback", request, ("model", model));

    [Function("V1ModelReady")]
    public Task V1ModelReady([HttpTrigger(AuthorizationLevel.Function, "get", Route = ServingRoutes.V1ModelReady)] HttpRequest request, string model) =>
        Run("V1ModelReady", request, ("model", model));

    [Function("ServingGetPolicy")]
    public Task ServingGetPolicy([HttpTrigger(AuthorizationLevel.Function, "get", Route = ServingRoutes.Policy)] HttpRequest request, string model) =>
        Run("ServingGetPolicy", request, ("model", model));

    [Function("ServingPutPolicy")]
    public Task ServingPutPolicy([HttpTrigger(AuthorizationLevel.Function, "put", Route = ServingRoutes.Policy)] HttpRequest request, string model) =>
        Run("ServingPutPolicy", request, ("model", model));

    [Function("ServingDeletePolicy")]
    public Task ServingDeletePolicy([HttpTrigger(AuthorizationLevel.Function, "delete", Route = ServingRoutes.Policy)] HttpRequest request, string model) =>
        Run("ServingDeletePolicy", request, ("model", model));

    [Function("V1ModelPredict")]
    public Task V1ModelPredict([HttpTrigger(AuthorizationLevel.Function, "post", Route = "v1/models/{model}:predict")] HttpRequest request, string model) =>
        Run("V1ModelPredict", request, ("model", model));

    [Function("RegistryListModels")]
    public Task RegistryListModels([HttpTrigger(AuthorizationLevel.Function, "get", Route = "api/registry/models")] HttpRequest request) =>
        Run("RegistryListModels", request);

    [Function("RegistryListVersions")]
    public Task RegistryListVersions(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "api/registry/models/{model}/versions")] HttpRequest request, string model) =>
        Run("RegistryListVersions", request, ("model", model));

    [Function("RegistryGetVersion")]
    public Task RegistryGetVersion(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "api/registry/models/{model}/versions/{version}")] HttpRequest request, string model, string version) =>
        Run("RegistryGetVersion", request, ("model", model), ("version", version));

    [Function("RegistryGetAlias")]
    public Task RegistryGetAlias(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "api/registry/models/{model}/aliases/{alias}")] HttpRequest request, string model, string alias) =>
        Run("RegistryGetAlias", request, ("model", model), ("alias", alias));

    [Function("RegistrySetAlias")]
    public Task RegistrySetAlias(
        [HttpTrigger(AuthorizationLevel.Function, "put", Route = "api/registry/models/{model}/aliases/{alias}")] HttpRequest request, string model, string alias) =>
        Run("RegistrySetAlias", request, ("model", model), ("alias", alias));

    [Function("RegistryDeleteAlias")]
    public Task RegistryDeleteAlias(
        [HttpTrigger(AuthorizationLevel.Function, "delete", Route = "api/registry/models/{model}/aliases/{alias}")] HttpRequest request, string model, string alias) =>
        Run("RegistryDeleteAlias", request, ("model", model), ("alias", alias));

    /// <summary>
    /// The Functions host binds route parameters to arguments; the shared handlers read them from
    /// RouteValues, as ASP.NET Core routing fills them in the local host, so they are copied there.
    /// </summary>
    private Task Run(string name, HttpRequest request, params (string Key, string Value)[] routeValues)
    {
        foreach (var (key, value) in routeValues)
        {
            request.RouteValues[key] = value;
        }

        return InferenceRoutes.All.Single(r => r.Name == name).Handler(handlers, request.HttpContext);
    }
}
