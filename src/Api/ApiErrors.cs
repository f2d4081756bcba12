using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using MlFunctions.Core.Registry;
using MlFunctions.Serving;

namespace MlFunctions.Api;

/// <summary>
/// The one map from typed errors to HTTP statuses (kserve's <c>errors.py</c>). Every handler of both hosts runs
/// through <see cref="ApiGuard"/> (product routes, <c>{"error"}</c> and <c>{"error", "problems"}</c> bodies) or the
/// V2 inference guard (KServe's <c>{"error"}</c>), and both ask this; what it does not know is our fault: logged, 500.
/// </summary>
public static class ApiErrors
{
    /// <summary>The status and message of an error we meant to answer with (a caller's 4xx, a 503 while a model loads); null otherwise.</summary>
    public static (int Status, string Message)? Classify(Exception e, HttpContext http) => e switch
    {
        BadRequestException b => (b.Status, b.Message),
        InferenceError i => (i.StatusCode, i.Message), // worded on purpose, 5xx included (a model that failed to run)
        RegistryException r => (r.Kind switch
        {
            RegistryErrorKind.Invalid => StatusCodes.Status400BadRequest,
            RegistryErrorKind.NotFound => StatusCodes.Status404NotFound,
            // A lost write race: 412 when the caller stated a precondition (If-Match / If-None-Match), else 409.
            _ => HttpJson.Precondition(http) is not null
                ? StatusCodes.Status412PreconditionFailed
                : StatusCodes.Status409Conflict,
        }, r.Message),
        // Kestrel's own body limit (the handlers lower it per route before reading).
        BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } =>
            (StatusCodes.Status413PayloadTooLarge, http.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize is { } limit
                ? InferenceError.TooLarge(limit).Message
                : "Request body exceeds the server's limit."),
        BadHttpRequestException b when b.StatusCode is >= 400 and < 500 => (b.StatusCode, b.Message),
        _ => null,
    };
}
