using Microsoft.AspNetCore.Http;

namespace MlFunctions.Api;

/// <summary><c>GET /api/health</c>: liveness for probes and load balancers, without a key.</summary>
public static class HealthHandler
{
    public static Task HandleAsync(HttpContext http, string host) =>
        HttpJson.WriteAsync(http, StatusCodes.Status200OK, new { status = "healthy", host });
}
