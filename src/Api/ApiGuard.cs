using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace MlFunctions.Api;

/// <summary>
/// Runs a handler so that bad input becomes a 4xx with a message (<see cref="ApiErrors"/>) and anything else a logged 500 with
/// a JSON body: a request can fail, the host never does. Both hosts call every handler through it.
/// </summary>
public static class ApiGuard
{
    public static async Task RunAsync(HttpContext http, ILogger logger, Func<Task> handler)
    {
        try
        {
            await handler();
        }
        catch (Exception e) when (!http.Response.HasStarted && ApiErrors.Classify(e, http) is { } error)
        {
            if (error.Status >= 500)
                logger.LogWarning(e, "{Method} {Path} failed: {Message}", http.Request.Method, http.Request.Path, e.Message);
            await HttpJson.ErrorAsync(http, error.Status, error.Message);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The caller went away; nobody is left to answer.
        }
        catch (Exception e) when (!http.Response.HasStarted)
        {
            logger.LogError(e, "{Method} {Path} failed", http.Request.Method, http.Request.Path);
            await HttpJson.ErrorAsync(http, StatusCodes.Status500InternalServerError, $"internal error: {e.GetType().Name}: {e.Message}");
        }
    }
}
