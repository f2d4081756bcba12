using System.Text;
using System.Text.Json;
using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;
using MlFunctions.GpuWorker.Models;
using MlFunctions.GpuWorker.Storage;
using MlFunctions.GpuWorker.Training;

namespace MlFunctions.GpuWorker.Queue;

/// <summary>What lands on the poison queue: the reason first, then the original message text.</summary>
public sealed record PoisonMessage(string Reason, string? JobId, long DequeueCount, string? MessageId, string Worker, DateTimeOffset At, string Message);

/// <summary>
/// Consumes <c>training-jobs</c> with <see cref="WorkerOptions.JobsPerWorker"/> slots. A received job stays invisible
/// while it trains (visibility renewed every third of the timeout); a finished job is deleted; a failed one becomes
/// visible again after a delay until its dequeue count reaches <see cref="WorkerOptions.MaxDequeueCount"/>, then it
/// moves to the poison queue and <see cref="TrainingEvents.Failed"/> goes to its callback. Malformed messages and
/// invalid jobs go straight to poison. Nothing a message contains can crash the worker.
/// </summary>
public sealed class TrainingQueueConsumer(
    QueueServiceClient queues,
    TrainingJobRunner runner,
    CallbackClient callbacks,
    WorkerOptions options,
    ILogger logger)
{
    // Messages are read raw and decoded here (Base64 as the dispatch activity and Functions write them, or plain
    // JSON), so an undecodable message is poisoned with a reason instead of throwing inside the SDK.
    private readonly QueueClient jobs = queues.GetQueueClient(options.JobsQueue);

    // Poison messages are written Base64-encoded, the encoding the Functions host and the dispatch activity use.
    private readonly QueueClient poison = new(options.StorageConnection, options.PoisonQueue, new QueueClientOptions { MessageEncoding = QueueMessageEncoding.Base64 });

    public async Task RunAsync(CancellationToken cancellation)
    {
        await EnsureQueuesAsync(cancellation);
        logger.LogInformation("Training worker {Worker} consuming {Queue} with {Slots} slot(s)", TrainingJobRunner.WorkerId, options.JobsQueue, options.JobsPerWorker);
        await Task.WhenAll(Enumerable.Range(0, options.JobsPerWorker).Select(slot => SlotLoopAsync(slot, cancellation)));
    }

    private async Task EnsureQueuesAsync(CancellationToken cancellation)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await jobs.CreateIfNotExistsAsync(cancellationToken: cancellation);
                await poison.CreateIfNotExistsAsync(cancellationToken: cancellation);
                return;
            }
            catch (Exception e) when (e is RequestFailedException or HttpRequestException or AggregateException && !cancellation.IsCancellationRequested)
            {
                // Storage not up yet (Azurite starting): keep trying rather than exiting.
                logger.LogWarning("Cannot reach the queue service ({Error}); retry {Attempt}", e.Message, attempt);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(attempt, 10)), cancellation);
            }
        }
    }

    private async Task SlotLoopAsync(int slot, CancellationToken cancellation)
    {
        while (!cancellation.IsCancellationRequested)
        {
            QueueMessage? message;
            try
            {
                message = (await jobs.ReceiveMessageAsync(TimeSpan.FromSeconds(options.VisibilityTimeoutSeconds), cancellation)).Value;
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                logger.LogWarning("Slot {Slot}: receive failed ({Error}); retrying", slot, e.Message);
                await DelayAsync(TimeSpan.FromSeconds(2), cancellation);
                continue;
            }

            if (message is null)
            {
                await DelayAsync(TimeSpan.FromMilliseconds(options.PollIntervalMilliseconds), cancellation);
                continue;
            }

            try
            {
                await ProcessAsync(message, cancellation);
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                // Last line of defence: a bug handling one message must not take the worker down.
                logger.LogError(e, "Slot {Slot}: unexpected error handling message {MessageId}", slot, message.MessageId);
            }
        }
    }

    private async Task ProcessAsync(QueueMessage message, CancellationToken cancellation)
    {
        var text = DecodeMessage(message.Body.ToString());
        if (!TryParseJob(text, out var job, out var problem, out var jobId, out var callbackUri))
        {
            await PoisonAsync(message, message.PopReceipt, text, $"malformed training job message: {problem}", jobId, callbackUri, null);
            return;
        }

        if (message.DequeueCount > options.MaxDequeueCount)
        {
            await PoisonAsync(
                message,
                message.PopReceipt,
                text,
                $"job was received {message.DequeueCount} times without finishing (the worker training it stopped each time: crash, kill or node loss); giving up after Worker:MaxDequeueCount={options.MaxDequeueCount}",
                job.JobId,
                job.CallbackUri,
                job);
            return;
        }

        logger.LogInformation("Job {JobId} (attempt {Attempt}, dequeue {Dequeue}): {Model}, {Epochs} epochs", job.JobId, job.Attempt, message.DequeueCount, job.Model, job.Hyperparameters?.Epochs);
        var lease = new MessageLease(jobs, message, TimeSpan.FromSeconds(options.VisibilityTimeoutSeconds), logger);
        try
        {
            await runner.RunAsync(job, cancellation);
            var receipt = await lease.StopAsync();
            await DeleteAsync(message.MessageId, receipt);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Shutting down: hand the job back now; the next worker resumes from the newest checkpoint.
            var receipt = await lease.StopAsync();
            await ReleaseAsync(message.MessageId, receipt, TimeSpan.Zero);
            throw;
        }
        catch (Exception e)
        {
            var receipt = await lease.StopAsync();
            var reason = Describe(e);
            if (e is JobValidationException)
            {
                await PoisonAsync(message, receipt, text, reason, job.JobId, job.CallbackUri, job);
            }
            else if (message.DequeueCount >= options.MaxDequeueCount)
            {
                await PoisonAsync(message, receipt, text, $"{reason} (failed on dequeue {message.DequeueCount} of {options.MaxDequeueCount})", job.JobId, job.CallbackUri, job);
            }
            else
            {
                logger.LogWarning("Job {JobId} failed on dequeue {Dequeue} of {Max}, will retry: {Reason}", job.JobId, message.DequeueCount, options.MaxDequeueCount, reason);
                await runner.RecordFailureAsync(job, TrainingJobStates.Retrying, reason);
                await ReleaseAsync(message.MessageId, receipt, TimeSpan.FromSeconds(options.RetryDelaySeconds));
            }
        }
    }

    /// <summary>A reason a person can act on: the exception's message, with its type when that adds information.</summary>
    public static string Describe(Exception e) => e switch
    {
        JobValidationException or InvalidDataException or Onnx.OnnxExportException => e.Message,
        RequestFailedException r => $"storage request failed ({r.Status} {r.ErrorCode}): {r.Message.Split('\n')[0]}",
        _ => $"{e.GetType().Name}: {e.Message}",
    };

    /// <summary>The message text: Base64 (as the dispatch activity and Functions write it) decoded, plain JSON as is.</summary>
    public static string DecodeMessage(string raw)
    {
        var trimmed = raw.Trim();
        if (trimmed.StartsWith('{'))
            return raw;
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Convert.FromBase64String(trimmed));
        }
        catch (Exception e) when (e is FormatException or DecoderFallbackException)
        {
            return raw;
        }
    }

    /// <summary>Parses a job's JSON. On failure salvages jobId/callbackUri when the text is a JSON object.</summary>
    public static bool TryParseJob(string json, out TrainingJob job, out string problem, out string? jobId, out string? callbackUri)
    {
        job = null!;
        jobId = null;
        callbackUri = null;
        try
        {
            using (var doc = JsonDocument.Parse(json))
            {
                if (doc.RootElement.ValueKind == JsonValueKind.Object)
                {
                    foreach (var p in doc.RootElement.EnumerateObject())
                    {
                        if (p.Value.ValueKind != JsonValueKind.String) continue;
                        if (p.Name.Equals("jobId", StringComparison.OrdinalIgnoreCase)) jobId = p.Value.GetString();
                        if (p.Name.Equals("callbackUri", StringComparison.OrdinalIgnoreCase)) callbackUri = p.Value.GetString();
                    }
                }
            }

            job = JsonSerializer.Deserialize<TrainingJob>(json, MlJson.Options) ?? throw new JsonException("the message is JSON null");
            problem = "";
            return true;
        }
        catch (JsonException e)
        {
            problem = $"not a TrainingJob: {e.Message}";
            return false;
        }
    }

    private async Task PoisonAsync(QueueMessage message, string popReceipt, string text, string reason, string? jobId, string? callbackUri, TrainingJob? job)
    {
        logger.LogError("Moving message {MessageId} (job {JobId}) to {Poison}: {Reason}", message.MessageId, jobId ?? "?", options.PoisonQueue, reason);
        var envelope = new PoisonMessage(reason, jobId, message.DequeueCount, message.MessageId, TrainingJobRunner.WorkerId, DateTimeOffset.UtcNow, text);
        try
        {
            await poison.SendMessageAsync(JsonSerializer.Serialize(envelope, MlJson.Options));
        }
        catch (Exception e)
        {
            // Keep the original: it reappears after its visibility timeout and is poisoned then.
            logger.LogError("Could not write to {Poison} ({Error}); message {MessageId} left on the queue", options.PoisonQueue, e.Message, message.MessageId);
            return;
        }

        await DeleteAsync(message.MessageId, popReceipt);
        if (job is not null)
            await runner.RecordFailureAsync(job, TrainingJobStates.Failed, reason);
        if (jobId is not null)
        {
            await callbacks.SendAsync(callbackUri, new TrainingEvent { JobId = jobId, Kind = TrainingEvents.Failed, Attempt = job?.Attempt ?? 1, Error = reason });
        }
    }

    private async Task DeleteAsync(string messageId, string popReceipt)
    {
        try
        {
            await jobs.DeleteMessageAsync(messageId, popReceipt);
        }
        catch (RequestFailedException e)
        {
            // The message was handed to another worker (visibility lapsed); its status blob says the job is done.
            logger.LogWarning("Could not delete message {MessageId}: {Error}", messageId, e.Message);
        }
    }

    private async Task ReleaseAsync(string messageId, string popReceipt, TimeSpan delay)
    {
        try
        {
            await jobs.UpdateMessageAsync(messageId, popReceipt, visibilityTimeout: delay);
        }
        catch (RequestFailedException e)
        {
            logger.LogWarning("Could not release message {MessageId}: {Error}", messageId, e.Message);
        }
    }

    private static async Task DelayAsync(TimeSpan delay, CancellationToken cancellation)
    {
        try
        {
            await Task.Delay(delay, cancellation);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Keeps a received message invisible while its job runs, tracking the pop receipt each renewal returns.</summary>
    private sealed class MessageLease
    {
        private readonly CancellationTokenSource stop = new();
        private readonly Task loop;
        private string popReceipt;

        public MessageLease(QueueClient queue, QueueMessage message, TimeSpan visibility, ILogger logger)
        {
            popReceipt = message.PopReceipt;
            loop = Task.Run(async () =>
            {
                var period = TimeSpan.FromTicks(visibility.Ticks / 3);
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        await Task.Delay(period, stop.Token);
                        var receipt = await queue.UpdateMessageAsync(message.MessageId, popReceipt, visibilityTimeout: visibility, cancellationToken: stop.Token);
                        popReceipt = receipt.Value.PopReceipt;
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                    catch (Exception e)
                    {
                        logger.LogWarning("Could not renew visibility of message {MessageId}: {Error}", message.MessageId, e.Message);
                    }
                }
            });
        }

        /// <summary>Stops renewing and returns the current pop receipt (needed to delete or release the message).</summary>
        public async Task<string> StopAsync()
        {
            if (!stop.IsCancellationRequested)
                await stop.CancelAsync();
            await loop;
            return popReceipt;
        }
    }
}
