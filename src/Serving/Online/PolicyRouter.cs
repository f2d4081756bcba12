using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using MlFunctions.Core.OnlineValidation;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving.Online;

/// <summary>
/// Applies a model's routing policy to a request (which alias serves it), remembers what served it, and turns
/// feedback into learned state, over <see cref="BlobServingStore"/> so every host routes and learns alike.
/// Policies are cached for <see cref="ServingOptions.PolicyRefreshInterval"/> and bandit state for
/// <see cref="ServingOptions.PolicyStateRefreshInterval"/>: routing reads no blob on most requests.
/// </summary>
/// <remarks>
/// Every routed request also counts toward its policy generation's <see cref="ServingStats"/> (requests, server errors,
/// latency histogram): in memory per (model, generation, alias), added to <c>stats/{generation}.json</c> by one
/// background flush every <see cref="ServingOptions.ServingStatsFlushInterval"/>, so the request path takes one
/// uncontended lock and no I/O. A crash loses at most one interval of this host's counts; a failed flush keeps the
/// deltas for the next one.
/// </remarks>
public sealed class PolicyRouter(BlobServingStore store, ServingOptions options, TimeProvider? time = null) : IAsyncDisposable
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ConcurrentDictionary<(string Model, string Generation, string Alias), StatsAccumulator> _pending = new();
    private readonly SemaphoreSlim _flushGate = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _flushStart = new();
    private Task? _flushLoop;
    private readonly ConcurrentDictionary<string, (Task<PolicyDocument?> Doc, long At)> _policies = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string, string), (Task<PolicyState> State, long At)> _states = new();

    public BlobServingStore Store => store;

    public Task<PolicyDocument?> GetPolicyAsync(string model, CancellationToken ct = default) =>
        Cached(_policies, model, options.PolicyRefreshInterval, () => store.GetPolicyAsync(model, CancellationToken.None), ct);

    private Task<PolicyState> GetStateAsync(string model, string generation, CancellationToken ct) =>
        Cached(_states, (model, generation), options.PolicyStateRefreshInterval, () => store.GetStateAsync(model, generation, CancellationToken.None), ct);

    // Concurrent callers may each refresh once when an entry expires; cheaper than a lock on the hot path.
    private static async Task<T> Cached<TKey, T>(ConcurrentDictionary<TKey, (Task<T>, long)> cache, TKey key, TimeSpan ttl, Func<Task<T>> fetch, CancellationToken ct)
        where TKey : notnull
    {
        long now = Stopwatch.GetTimestamp();
        if (cache.TryGetValue(key, out var entry) && !entry.Item1.IsFaulted && !entry.Item1.IsCanceled && Stopwatch.GetElapsedTime(entry.Item2, now) < ttl)
            return await entry.Item1.WaitAsync(ct).ConfigureAwait(false);
        var task = fetch();
        cache[key] = (task, now);
        return await task.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Forgets cached policy and state of a model (after a write on this host).</summary>
    public void Invalidate(string model)
    {
        _policies.TryRemove(model, out _);
        foreach (var key in _states.Keys.Where(k => k.Item1 == model).ToList())
            _states.TryRemove(key, out _);
    }

    /// <summary>The policy and its decision for a request, or null when the model has no policy.</summary>
    public async Task<(PolicyDocument Policy, RoutingDecision Decision)?> DecideAsync(string model, string requestKey, CancellationToken ct = default)
    {
        var doc = await GetPolicyAsync(model, ct).ConfigureAwait(false);
        if (doc is null)
            return null;
        var state = doc.Policy.Kind == RoutingPolicy.Bandit
            ? await GetStateAsync(model, doc.Generation, ct).ConfigureAwait(false)
            : PolicyState.Fresh(doc.Generation); // canary and A/B routing do not depend on the feedback
        return (doc, PolicyEngine.Decide(doc.Policy, state, requestKey));
    }

    public Task RememberAsync(string model, PolicyDocument policy, RoutingDecision decision, string requestId, InferResponse response, CancellationToken ct = default)
    {
        var now = _time.GetUtcNow();
        int version = int.TryParse(response.ModelVersion, out int v) ? v : 0;
        return store.RememberAsync(model, new ServedRequest(requestId, decision.Alias, version, decision.Probability, policy.Generation,
            now, now + policy.Policy.FeedbackWindow, PredictedClasses(response)), ct);
    }

    /// <summary>Counts one routed request (its latency, and whether it failed on the server side) for the generation's statistics.</summary>
    public void RecordServed(string model, string generation, string alias, double latencyMs, bool error)
    {
        while (!_pending.GetOrAdd((model, generation, alias), static _ => new StatsAccumulator()).Add(latencyMs, error))
        {
            // Retired by a flush that found it idle: take a fresh one.
        }
        if (Volatile.Read(ref _flushLoop) is null)
            lock (_flushStart)
                _flushLoop ??= Task.Run(FlushLoopAsync);
    }

    private async Task FlushLoopAsync()
    {
        using var timer = new PeriodicTimer(options.ServingStatsFlushInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
                await FlushStatsAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Adds this host's pending counts to the statistics blobs now; deltas that fail to write are kept for the next flush.</summary>
    public async Task FlushStatsAsync(CancellationToken ct = default)
    {
        // One flush at a time: without this, a caller's flush could find the deltas already taken by the timer's flush
        // and return before that one had written them (CI saw 0 of 40 requests read back right after a flush).
        await _flushGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await FlushPendingAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _flushGate.Release();
        }
    }

    private async Task FlushPendingAsync(CancellationToken ct)
    {
        var batches = new Dictionary<(string Model, string Generation), Dictionary<string, ServingStats>>();
        foreach (var (key, accumulator) in _pending)
        {
            var delta = accumulator.Take();
            if (delta is null)
            {
                if (accumulator.TryRetire())
                    _pending.TryRemove(new KeyValuePair<(string, string, string), StatsAccumulator>(key, accumulator));
                continue;
            }
            if (!batches.TryGetValue((key.Model, key.Generation), out var deltas))
                batches[(key.Model, key.Generation)] = deltas = new Dictionary<string, ServingStats>(StringComparer.Ordinal);
            deltas[key.Alias] = delta;
        }
        foreach (var ((model, generation), deltas) in batches)
        {
            try
            {
                await store.MergeStatsAsync(model, generation, deltas, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                foreach (var (alias, delta) in deltas)
                    while (!_pending.GetOrAdd((model, generation, alias), static _ => new StatsAccumulator()).Add(delta))
                    {
                    }
            }
        }
    }

    /// <summary>Stops the flush loop and writes what is pending (host shutdown), within a few seconds.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_flushLoop is { } loop)
            await loop.ConfigureAwait(false);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await FlushStatsAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Storage may already be gone at shutdown: at most one interval of counts is lost, as after a crash.
        }
        _stop.Dispose();
        _flushGate.Dispose();
    }

    /// <summary>
    /// Records feedback for a served request: a reward in [0, 1], or the true label(s), scored against the
    /// remembered prediction (reward = the share of rows predicted right). 404 unknown id, 409 duplicate,
    /// 410 late or for a replaced policy, 400 bad values.
    /// </summary>
    public async Task<FeedbackResult> FeedbackAsync(string model, string id, double? reward, JsonElement? label, CancellationToken ct = default)
    {
        if (reward is { } r && !(r >= 0 && r <= 1))
            throw InferenceError.Invalid($"reward is {r}; it must be in [0, 1].");
        var doc = await store.GetPolicyAsync(model, ct).ConfigureAwait(false)
            ?? throw InferenceError.NotFound($"Model '{model}' has no routing policy, so no request of it awaits feedback.");
        var (outcome, served) = await store.ClaimAsync(model, id, doc.Generation, ct).ConfigureAwait(false);
        switch (outcome)
        {
            case FeedbackClaim.Unknown:
                throw InferenceError.NotFound($"No request '{id}' of model '{model}' was served under a routing policy.");
            case FeedbackClaim.Duplicate:
                throw InferenceError.Conflict($"Request '{id}' already has feedback (given {served!.FeedbackAt:O}); only the first counts.");
            case FeedbackClaim.Expired:
                throw InferenceError.Gone(served!.Generation != doc.Generation
                    ? $"Request '{id}' was served under a policy that has since been replaced; its feedback no longer counts."
                    : $"Request '{id}' was served at {served.ServedAt:O}; its feedback window closed at {served.ExpiresAt:O}.");
        }
        double value = reward ?? Score(served!, label);
        var state = await store.UpdateStateAsync(model, doc.Generation,
            s => PolicyEngine.Apply(doc.Policy, s, served!.Alias, value, served.Probability), ct).ConfigureAwait(false);
        _states[(model, doc.Generation)] = (Task.FromResult(state), Stopwatch.GetTimestamp());
        return new FeedbackResult(id, served!.Alias, served.Version, value, state.Arm(served.Alias), PolicyEngine.Verdict(doc.Policy, state));
    }

    // Claimed before scoring, so a malformed label uses up the slot; validated first instead where it can be.
    private static double Score(ServedRequest served, JsonElement? label)
    {
        if (label is not { } l)
            throw InferenceError.Invalid("Feedback needs 'reward' (a number in [0, 1]) or 'label' (the true class, or one per row).");
        if (served.Predicted is not { Length: > 0 } predicted)
            throw InferenceError.Invalid("The model's output is not a class-score tensor, so a label cannot be scored; send 'reward'.");
        var labels = l.ValueKind == JsonValueKind.Array ? l.EnumerateArray().ToList() : [l];
        if (labels.Count != predicted.Length || labels.Any(x => x.ValueKind != JsonValueKind.Number || !x.TryGetInt32(out _)))
            throw InferenceError.Invalid($"'label' must be {(predicted.Length == 1 ? "an integer class" : $"an array of {predicted.Length} integer classes")}.");
        return labels.Select((x, i) => x.GetInt32() == predicted[i] ? 1.0 : 0.0).Average();
    }

    /// <summary>Checks a label's shape before the feedback slot is claimed.</summary>
    public static void ValidateFeedback(double? reward, JsonElement? label)
    {
        if (reward is null && label is null)
            throw InferenceError.Invalid("Feedback needs 'reward' (a number in [0, 1]) or 'label' (the true class, or one per row).");
        if (label is { } l && l.ValueKind is not (JsonValueKind.Number or JsonValueKind.Array))
            throw InferenceError.Invalid("'label' must be an integer class or an array of them.");
    }

    /// <summary>The arg-max class per row of the first output when it is an FP32/FP64 score matrix [rows, classes] or vector.</summary>
    public static int[]? PredictedClasses(InferResponse response)
    {
        if (response.Outputs.Count == 0)
            return null;
        var o = response.Outputs[0];
        double[]? scores = o.Data switch { float[] f => Array.ConvertAll(f, x => (double)x), double[] d => d, _ => null };
        if (scores is null || o.Shape.Length is < 1 or > 2)
            return null;
        int rows = o.Shape.Length == 2 ? (int)o.Shape[0] : 1, classes = (int)o.Shape[^1];
        if (rows * classes != scores.Length || classes < 2 || rows > 1024)
            return null;
        var result = new int[rows];
        for (int r = 0; r < rows; r++)
        {
            int best = 0;
            for (int c = 1; c < classes; c++)
                if (scores[(r * classes) + c] > scores[(r * classes) + best])
                    best = c;
            result[r] = best;
        }
        return result;
    }
}

/// <summary>One (model, generation, alias)'s counts since the last flush, under a lock held for a few increments.</summary>
internal sealed class StatsAccumulator
{
    private readonly Lock _gate = new();
    private long _requests, _errors;
    private long[] _buckets = new long[ServingStats.BucketCount];
    private bool _any, _retired;

    public bool Add(double latencyMs, bool error)
    {
        int bucket = ServingStats.BucketOf(latencyMs);
        lock (_gate)
        {
            if (_retired)
                return false;
            _requests++;
            if (error)
                _errors++;
            _buckets[bucket]++;
            _any = true;
            return true;
        }
    }

    public bool Add(ServingStats delta)
    {
        lock (_gate)
        {
            if (_retired)
                return false;
            _requests += delta.Requests;
            _errors += delta.Errors;
            for (int i = 0; i < delta.LatencyBuckets.Length && i < _buckets.Length; i++)
                _buckets[i] += delta.LatencyBuckets[i];
            _any = true;
            return true;
        }
    }

    /// <summary>The counts since the last take (trailing empty buckets trimmed), or null when there were none.</summary>
    public ServingStats? Take()
    {
        long requests, errors;
        long[] buckets;
        lock (_gate)
        {
            if (!_any)
                return null;
            (requests, errors, buckets) = (_requests, _errors, _buckets);
            (_requests, _errors, _buckets, _any) = (0, 0, new long[ServingStats.BucketCount], false);
        }
        int length = Array.FindLastIndex(buckets, b => b != 0) + 1;
        return new ServingStats { Requests = requests, Errors = errors, LatencyBuckets = buckets[..length] };
    }

    /// <summary>Marks an idle accumulator as retired (later adds go to a new one); false when something arrived meanwhile.</summary>
    public bool TryRetire()
    {
        lock (_gate)
        {
            if (_any)
                return false;
            _retired = true;
            return true;
        }
    }
}

/// <summary>The answer to a feedback: what it counted for and where the arm and the A/B test now stand.</summary>
public sealed record FeedbackResult(string Id, string Alias, int Version, double Reward, ArmStats Arm, SequentialTestResult? Test);
