using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace MlFunctions.Api.Inference;

/// <summary>One HTTP route of the inference and registry surface.</summary>
/// <param name="Name">Stable name, usable as an endpoint or Azure Function name.</param>
/// <param name="HttpMethod">GET, POST, PUT or DELETE.</param>
/// <param name="Template">Route template without a leading slash (the hosts use an empty route prefix).</param>
/// <param name="Handler">Calls the matching <see cref="InferenceHandlers"/> method.</param>
public sealed record InferenceRoute(string Name, string HttpMethod, string Template, Func<InferenceHandlers, HttpContext, Task> Handler)
{
    /// <summary>A request delegate that takes <see cref="InferenceHandlers"/> from the request's services.</summary>
    public RequestDelegate ToRequestDelegate() => ctx => Handler(ctx.RequestServices.GetRequiredService<InferenceHandlers>(), ctx);
}

/// <summary>
/// The inference and registry routes, in one table both hosts map: Local with <see cref="MapInferenceRoutes"/>,
/// Functions with one HttpTrigger per row (same method, same template, body
/// <c>row.Handler(handlers, req.HttpContext)</c>). Handlers read <c>model</c>, <c>version</c> and <c>alias</c>
/// from <c>HttpContext.Request.RouteValues</c>.
/// </summary>
public static class InferenceRoutes
{
    public static readonly IReadOnlyList<InferenceRoute> All =
    [
        new("V2ServerMetadata", "GET", "v2", static (h, c) => h.HandleServerMetadata(c)),
        new("V2HealthLive", "GET", ServingRoutes.V2HealthLive, static (h, c) => h.HandleLive(c)),
        new("V2HealthReady", "GET", ServingRoutes.V2HealthReady, static (h, c) => h.HandleReady(c)),
        new("V2ModelMetadata", "GET", "v2/models/{model}", static (h, c) => h.HandleModelMetadata(c)),
        new("V2ModelVersionMetadata", "GET", "v2/models/{model}/versions/{version}", static (h, c) => h.HandleModelMetadata(c)),
        new("V2ModelReady", "GET", "v2/models/{model}/ready", static (h, c) => h.HandleModelReady(c)),
        new("V2ModelVersionReady", "GET", "v2/models/{model}/versions/{version}/ready", static (h, c) => h.HandleModelReady(c)),
        new("V2ModelInfer", "POST", "v2/models/{model}/infer", static (h, c) => h.HandleInfer(c)),
        new("V2ModelVersionInfer", "POST", "v2/models/{model}/versions/{version}/infer", static (h, c) => h.HandleInfer(c)),
        new("V2ModelFeedback", "POST", ServingRoutes.Feedback, static (h, c) => h.HandleFeedback(c)),
        new("V1ModelReady", "GET", ServingRoutes.V1ModelReady, static (h, c) => h.HandleV1ModelReady(c)),
        new("ServingGetPolicy", "GET", ServingRoutes.Policy, static (h, c) => h.HandleGetPolicy(c)),
        new("ServingPutPolicy", "PUT", ServingRoutes.Policy, static (h, c) => h.HandlePutPolicy(c)),
        new("ServingDeletePolicy", "DELETE", ServingRoutes.Policy, static (h, c) => h.HandleDeletePolicy(c)),
        new("V1ModelPredict", "POST", "v1/models/{model}:predict", static (h, c) => h.HandleV1Predict(c)),
        new("RegistryListModels", "GET", "api/registry/models", static (h, c) => h.HandleListModels(c)),
        new("RegistryListVersions", "GET", "api/registry/models/{model}/versions", static (h, c) => h.HandleListVersions(c)),
        new("RegistryGetVersion", "GET", "api/registry/models/{model}/versions/{version}", static (h, c) => h.HandleGetVersion(c)),
        new("RegistryGetAlias", "GET", "api/registry/models/{model}/aliases/{alias}", static (h, c) => h.HandleGetAlias(c)),
        new("RegistrySetAlias", "PUT", "api/registry/models/{model}/aliases/{alias}", static (h, c) => h.HandleSetAlias(c)),
        new("RegistryDeleteAlias", "DELETE", "api/registry/models/{model}/aliases/{alias}", static (h, c) => h.HandleDeleteAlias(c)),
    ];

    /// <summary>Maps every route on an ASP.NET Core host; returns the builders so the host can add auth etc.</summary>
    public static IReadOnlyList<IEndpointConventionBuilder> MapInferenceRoutes(this IEndpointRouteBuilder endpoints) =>
        All.Select(r => endpoints.MapMethods(r.Template, [r.HttpMethod], r.ToRequestDelegate()).WithName(r.Name)).ToList();
}
