using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace MlFunctions.Api;

/// <summary>
/// Runs a handler so that bad input becomes a 4xx with a message and anything else a logged 500 with
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
        catch (BadRequestException e) when (!http.Response.HasStarted)
        {
            await HttpJson.ErrorAsync(http, e.Status, e.Message);
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
