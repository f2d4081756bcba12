using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.Logging;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;

namespace MlFunctions.GpuWorker.Storage;

/// <summary>
/// Raises <see cref="TrainingEvent"/>s on the waiting orchestration: POST to the job's CallbackUri (the Durable
/// sendEventPostUri, which carries its own ?code=) with <c>{eventName}</c> = <see cref="TrainingEvents.EventName"/>.
/// Transient failures are retried with exponential backoff; nothing here ever throws into the training loop.
/// </summary>
public sealed class CallbackClient(HttpClient http, WorkerOptions options, ILogger logger)
{
    public static Uri? EventUri(string? callbackUri) =>
        string.IsNullOrWhiteSpace(callbackUri)
            ? null
            : new Uri(callbackUri.Replace("{eventName}", Uri.EscapeDataString(TrainingEvents.EventName), StringComparison.Ordinal));

    /// <summary>Returns true when the orchestration accepted the event.</summary>
    public async Task<bool> SendAsync(string? callbackUri, TrainingEvent trainingEvent, CancellationToken cancellation = default)
    {
        Uri? uri;
        try
        {
            uri = EventUri(callbackUri);
        }
        catch (UriFormatException e)
        {
            logger.LogWarning("Job {JobId}: callback URI is invalid ({Error}); {Kind} not reported", trainingEvent.JobId, e.Message, trainingEvent.Kind);
            return false;
        }

        if (uri is null)
        {
            logger.LogDebug("Job {JobId} has no callback URI; {Kind} not reported", trainingEvent.JobId, trainingEvent.Kind);
            return false;
        }

        var delay = TimeSpan.FromMilliseconds(options.CallbackBackoffMilliseconds);
        for (var attempt = 1; ; attempt++)
        {
            string problem;
            try
            {
                using var response = await http.PostAsJsonAsync(uri, trainingEvent, MlJson.Options, cancellation);
                if (response.IsSuccessStatusCode)
                    return true;

                // 404/410: the orchestration is gone or finished; retrying cannot deliver the event.
                if (response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Gone or HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                {
                    logger.LogWarning("Job {JobId}: callback refused {Kind} with {Status}; not retried", trainingEvent.JobId, trainingEvent.Kind, (int)response.StatusCode);
                    return false;
                }

                problem = $"HTTP {(int)response.StatusCode}";
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                return false;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                problem = e.Message;
            }

            if (attempt >= options.CallbackAttempts)
            {
                logger.LogWarning("Job {JobId}: {Kind} not delivered after {Attempts} attempts ({Problem})", trainingEvent.JobId, trainingEvent.Kind, attempt, problem);
                return false;
            }

            logger.LogInformation("Job {JobId}: {Kind} callback failed ({Problem}); retry {Attempt} in {Delay}", trainingEvent.JobId, trainingEvent.Kind, problem, attempt, delay);
            try
            {
                await Task.Delay(delay, cancellation);
            }
            catch (OperationCanceledException)
            {
                return false;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
        }
    }
}
