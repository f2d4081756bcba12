using System.Text.Json;
using Microsoft.DurableTask;
using MlFunctions.Core;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Orchestrations.Pipelines;

/// <summary>
/// One run of a pipeline written as a plain orchestration: conditions are <c>if</c>, loops are
/// <c>foreach</c>, parallelism is <c>Task.WhenAll</c> over <see cref="StepAsync{TIn, TOut}"/> calls. Each
/// step is content-cached, retried, bounded by a deadline and recorded in lineage (one blob per step,
/// written as the step ends, so a crash keeps the lineage of every finished step).
/// </summary>
/// <remarks>
/// Everything here runs in orchestration code and is replay-safe: keys are pure functions of the input,
/// times come from <see cref="TaskOrchestrationContext.CurrentUtcDateTime"/>, sequence numbers are taken
/// in call order, and all I/O goes through the <c>LookupStepCache</c>, <c>StoreStepCache</c> and
/// <c>RecordLineage</c> activities.
/// </remarks>
public sealed class PipelineRun
{
    // The bookkeeping activities are small idempotent blob writes; retry them like other storage calls.
    private static readonly TaskOptions Bookkeeping =
        TaskOptions.FromRetryPolicy(new RetryPolicy(5, TimeSpan.FromSeconds(2), backoffCoefficient: 2));

    private readonly TaskOrchestrationContext context;
    private readonly List<StepRecord> lineage = [];
    private int sequence;

    private PipelineRun(TaskOrchestrationContext context, PipelineRunOptions options)
    {
        this.context = context;
        Options = options;
        RunId = options.RunId ?? context.InstanceId;
        if (string.IsNullOrWhiteSpace(RunId) || RunId.IndexOfAny(['/', '\\', '#', '?']) >= 0)
        {
            // The run id is a blob-name segment of the lineage.
            throw new ArgumentException($"Run id '{RunId}' must be non-empty without '/', '\\', '#' or '?'.");
        }

        options.StepDefaults.Validate("(defaults)");
    }

    public string RunId { get; }

    public PipelineRunOptions Options { get; }

    /// <summary>The records of the steps that have ended, by sequence.</summary>
    public IReadOnlyList<StepRecord> Lineage => lineage.OrderBy(r => r.Sequence).ToList();

    public static PipelineRun Start(TaskOrchestrationContext context, PipelineRunOptions? options = null) =>
        new(context, options ?? new PipelineRunOptions());

    /// <summary>The run so far, for a run report (the same summary the lineage reader builds from storage).</summary>
    public PipelineRunRecord Summary() => PipelineRunRecord.From(RunId, lineage);

    /// <summary>
    /// Runs <paramref name="step"/> on <paramref name="input"/>, or returns the cached output of an earlier
    /// execution with the same cache key. Throws <see cref="PipelineStepFailedException"/> (or
    /// <see cref="PipelineStepTimeoutException"/>) after recording the failure.
    /// </summary>
    public async Task<TOut> StepAsync<TIn, TOut>(PipelineStep<TIn, TOut> step, TIn input, StepOptions? options = null)
    {
        options ??= Options.StepDefaults;
        options.Validate(step.Name);
        var seq = ++sequence;
        var started = context.CurrentUtcDateTime;
        var fingerprint = StepFingerprint.Compute(step.Name, step.CodeVersion, step.CacheContent(input));
        var caching = Options.Caching && options.Cache != false;
        var record = new StepRecord
        {
            RunId = RunId,
            Sequence = seq,
            Step = step.Name,
            CodeVersion = step.CodeVersion,
            Target = step.Target,
            CacheKey = fingerprint.CacheKey,
            Inputs = fingerprint.Inputs,
            StartedAt = started,
            EndedAt = started,
            Status = StepStatus.Succeeded,
        };

        if (caching)
        {
            var lookup = await context.CallActivityAsync<LookupStepCacheResult>(
                ActivityNames.LookupStepCache,
                new LookupStepCacheInput(fingerprint.CacheKey, started, options.MaxStaleness ?? Options.MaxStaleness),
                Bookkeeping);
            if (lookup.Entry is { } hit)
            {
                var cached = hit.Output.Deserialize<TOut>(MlJson.Options)!;
                await RecordAsync(record with
                {
                    OutputDigest = hit.OutputDigest,
                    EndedAt = context.CurrentUtcDateTime,
                    Cached = true,
                    CachedFromRunId = hit.RunId,
                });
                return cached;
            }
        }

        var deadline = options.Timeout is { } timeout ? started + timeout : (DateTime?)null;
        var attempt = 0;
        TOut output;
        while (true)
        {
            attempt++;
            try
            {
                output = await CallAsync(step, input, deadline, options, attempt);
                break;
            }
            catch (TaskFailedException e) when (attempt < options.MaxAttempts && StepOptions.IsRetryable(e.FailureDetails.ErrorType))
            {
                var retryAt = context.CurrentUtcDateTime + options.RetryDelay(attempt);
                if (deadline is { } d && retryAt >= d)
                {
                    // No attempt could start before the deadline: wait it out so the step fails at its time, not earlier.
                    await context.WaitUntilAsync(d);
                    throw await FailAsync(record, attempt, new PipelineStepTimeoutException(step.Name, attempt, options.Timeout!.Value));
                }

                await context.WaitUntilAsync(retryAt);
            }
            catch (TaskFailedException e)
            {
                var reason = $"{e.FailureDetails.ErrorType}: {e.FailureDetails.ErrorMessage}";
                throw await FailAsync(record, attempt, new PipelineStepFailedException(step.Name, attempt, reason, e.FailureDetails, e));
            }
            catch (PipelineStepTimeoutException e)
            {
                throw await FailAsync(record, attempt, e);
            }
        }

        var element = JsonSerializer.SerializeToElement(output, MlJson.Options);
        var digest = ContentDigest.Of(element);
        if (caching)
        {
            await context.CallActivityAsync<bool>(
                ActivityNames.StoreStepCache,
                new StepCacheEntry
                {
                    Key = fingerprint.CacheKey,
                    Step = step.Name,
                    CodeVersion = step.CodeVersion,
                    RunId = RunId,
                    CreatedAt = context.CurrentUtcDateTime,
                    Output = element,
                    OutputDigest = digest,
                },
                Bookkeeping);
        }

        await RecordAsync(record with { OutputDigest = digest, EndedAt = context.CurrentUtcDateTime, Attempts = attempt });
        return output;
    }

    /// <summary>Records that a step was not run (a branch not taken), so the run report shows it.</summary>
    public Task SkipAsync<TIn, TOut>(PipelineStep<TIn, TOut> step, string reason) =>
        RecordAsync(new StepRecord
        {
            RunId = RunId,
            Sequence = ++sequence,
            Step = step.Name,
            CodeVersion = step.CodeVersion,
            Target = step.Target,
            StartedAt = context.CurrentUtcDateTime,
            EndedAt = context.CurrentUtcDateTime,
            Status = StepStatus.Skipped,
            Error = reason,
        });

    /// <summary>
    /// Runs <paramref name="body"/>, then always <paramref name="exitHandler"/> (Kubeflow's ExitHandler):
    /// with null after success, or with the failed step and reason after a failure. A body failure is
    /// rethrown after the handler, so the orchestration still fails with the original error; a handler
    /// failure then is only in the handler's own lineage, since it must not mask the cause.
    /// </summary>
    public async Task<T> RunWithExitHandlerAsync<T>(Func<Task<T>> body, Func<PipelineFailure?, Task> exitHandler)
    {
        T result;
        try
        {
            result = await body();
        }
        catch (Exception e)
        {
            var failure = e is PipelineStepFailedException step
                ? new PipelineFailure(step.Step, step.Reason)
                : new PipelineFailure(null, $"{e.GetType().Name}: {e.Message}");
            try
            {
                await exitHandler(failure);
            }
            catch (Exception)
            {
                // Deliberately dropped: the body's failure is the one the run must report.
            }

            throw;
        }

        await exitHandler(null);
        return result;
    }

    private async Task<TOut> CallAsync<TIn, TOut>(PipelineStep<TIn, TOut> step, TIn input, DateTime? deadline, StepOptions options, int attempt)
    {
        // A child gets a known id even when the step names none, so a deadline can terminate it.
        string? childId = null;
        if (step.Kind != StepTargetKind.Activity)
        {
            var id = options.InstanceId ?? $"{RunId}-{step.Name}-{context.NewGuid().ToString("N")[..8]}";
            childId = attempt > 1 ? $"{id}-a{attempt}" : id;
        }

        var call = childId is null
            ? context.CallActivityAsync<TOut>(step.Target, input)
            : context.CallSubOrchestratorAsync<TOut>(step.Target, input, new SubOrchestrationOptions { InstanceId = childId });
        if (deadline is not { } fireAt)
        {
            return await call;
        }

        using var timerCancel = new CancellationTokenSource();
        var timer = context.WaitUntilAsync(fireAt, timerCancel.Token);
        if (await Task.WhenAny(call, timer) != call)
        {
            var timeout = new PipelineStepTimeoutException(step.Name, attempt, options.Timeout!.Value);
            if (childId is not null)
            {
                // Otherwise the child would train on (holding workers) for a step the run has given up on.
                await context.CallActivityAsync<bool>(ActivityNames.TerminateInstance, new TerminateInstanceInput(childId, timeout.Message), Bookkeeping);
            }

            throw timeout;
        }

        // A timer left pending would keep the orchestration waiting for it after it returns.
        timerCancel.Cancel();
        return await call;
    }

    private async Task<PipelineStepFailedException> FailAsync(StepRecord record, int attempts, PipelineStepFailedException failure)
    {
        await RecordAsync(record with
        {
            EndedAt = context.CurrentUtcDateTime,
            Attempts = attempts,
            Status = StepStatus.Failed,
            Error = failure.Reason,
        });
        return failure;
    }

    private async Task RecordAsync(StepRecord record)
    {
        await context.CallActivityAsync<bool>(ActivityNames.RecordLineage, record, Bookkeeping);
        lineage.Add(record);
    }
}
