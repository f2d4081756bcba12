using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving;

/// <summary>
/// Dynamic batching for one model version (KServe batcher / Triton dynamic batcher). Requests queue; a batch is
/// sent when it holds <see cref="BatchingOptions.MaxBatchSize"/> instances or its first request has waited
/// <see cref="BatchingOptions.MaxLatency"/> (or, with <see cref="BatchingOptions.DispatchWhenIdle"/>, as soon as
/// one of the <see cref="BatchingOptions.MaxConcurrentBatches"/> slots is free; a request that finds nothing
/// pending and a slot free then runs on its caller's thread). A batch runs as one ONNX Runtime call over inputs concatenated along dimension 0, and
/// each caller gets its own rows back. If the batched call fails, its requests are re-run one by one so a
/// request that breaks the model only fails itself.
/// </summary>
internal sealed class DynamicBatcher : IAsyncDisposable
{
    private sealed record Item(PreparedRequest Request, TaskCompletionSource<IReadOnlyList<InferTensor>> Result, long EnqueuedAt, CancellationToken Cancellation);

    private readonly LoadedModel _model;
    private readonly BatchingOptions _options;
    private readonly ServingMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Channel<Item> _queue = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim _slots;
    private readonly KeyValuePair<string, object?>[] _tags;
    private readonly Task _loop;
    private readonly int _slotCount;
    private int _running;
    private volatile bool _closing;
    private int _pending; // enqueued, not yet dispatched (queued or in the batch the loop is forming)
    private TaskCompletionSource _slotFreed = NewSignal();

    public DynamicBatcher(LoadedModel model, BatchingOptions options, ServingMetrics metrics, ILogger logger)
    {
        _model = model;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        _slotCount = Math.Max(1, options.MaxConcurrentBatches);
        _slots = new SemaphoreSlim(_slotCount);
        _tags = [new("model", model.Record.Name), new("version", model.Record.Version.ToString(System.Globalization.CultureInfo.InvariantCulture))];
        _loop = Task.Run(LoopAsync);
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<IReadOnlyList<InferTensor>> EnqueueAsync(PreparedRequest request, CancellationToken cancellationToken)
    {
        var item = new Item(request, new(TaskCreationOptions.RunContinuationsAsynchronously), Stopwatch.GetTimestamp(), cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        // Idle (nothing queued, a batch slot free): dispatch-when-idle would send this request alone at once
        // anyway, so run it on the caller's thread. That skips the queue and two thread-pool hops, which are
        // most of a small model's latency at low load. The caller holds a lease, so readiness is already settled.
        // Pending, not the channel's count: under load the loop holds a forming batch the channel no longer shows,
        // and a request that jumped ahead of it alone would shrink batches just when they matter.
        if (_options.DispatchWhenIdle && Volatile.Read(ref _pending) == 0 && TryTakeSlotNow())
        {
            try
            {
                RunGroup([item]);
            }
            finally
            {
                ReleaseSlot();
            }
            return item.Result.Task;
        }
        Interlocked.Increment(ref _pending);
        if (!_queue.Writer.TryWrite(item))
        {
            Interlocked.Decrement(ref _pending);
            throw InferenceError.NotReady($"Model {_model.Record.Name} v{_model.Record.Version} is unloading.");
        }
        return item.Result.Task.WaitAsync(cancellationToken);
    }

    private bool TryTakeSlotNow()
    {
        if (_closing)
            return false;
        try
        {
            if (!_slots.Wait(0))
                return false;
        }
        catch (ObjectDisposedException)
        {
            return false; // disposed under us: the queue path answers "unloading"
        }
        Interlocked.Increment(ref _running);
        return true;
    }

    private void ReleaseSlot()
    {
        _slots.Release();
        Interlocked.Decrement(ref _running);
        Interlocked.Exchange(ref _slotFreed, NewSignal()).TrySetResult();
    }

    private async Task LoopAsync()
    {
        var reader = _queue.Reader;
        Item? carry = null;
        long maxLatencyTicks = (long)(_options.MaxLatency.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            Item first;
            if (carry is not null)
            {
                first = carry;
                carry = null;
            }
            else
            {
                if (!await reader.WaitToReadAsync().ConfigureAwait(false))
                    break;
                if (!reader.TryRead(out first!))
                    continue;
            }

            var batch = new List<Item> { first };
            int rows = first.Request.Rows;
            long deadline = first.EnqueuedAt + maxLatencyTicks;
            bool closed = false;
            while (rows < _options.MaxBatchSize)
            {
                if (reader.TryRead(out var next))
                {
                    if (rows + next.Request.Rows > _options.MaxBatchSize)
                    {
                        carry = next; // keeps its place: it opens the next batch
                        break;
                    }
                    batch.Add(next);
                    rows += next.Request.Rows;
                    continue;
                }
                // Read the signal before the count: a slot freed after the check still completes this signal.
                var slotFreed = Volatile.Read(ref _slotFreed);
                if (_options.DispatchWhenIdle && Volatile.Read(ref _running) < _slotCount)
                    break;
                long remaining = deadline - Stopwatch.GetTimestamp();
                if (remaining <= 0)
                    break;
                // Wait for more requests, the deadline, or (when dispatching on idle) a running batch to finish.
                using var timer = new CancellationTokenSource(TimeSpan.FromSeconds((double)remaining / Stopwatch.Frequency));
                var more = reader.WaitToReadAsync(timer.Token).AsTask();
                if (_options.DispatchWhenIdle)
                    await Task.WhenAny(more, slotFreed.Task).ConfigureAwait(false);
                else
                    await Task.WhenAny(more).ConfigureAwait(false); // WhenAny: a deadline cancellation must not throw
                if (more.IsCompletedSuccessfully && !more.Result)
                {
                    closed = true;
                    break;
                }
            }

            // While every batch slot is busy, keep filling this batch (up to MaxBatchSize) instead of closing
            // it at the deadline: the model cannot start it sooner anyway, and a fuller batch amortizes the
            // call (Triton's dynamic batcher does the same). Under load this is what makes batches grow.
            var slot = _slots.WaitAsync();
            while (!slot.IsCompleted && carry is null && !closed && rows < _options.MaxBatchSize)
            {
                if (reader.TryRead(out var next))
                {
                    if (rows + next.Request.Rows > _options.MaxBatchSize)
                    {
                        carry = next;
                        break;
                    }

                    batch.Add(next);
                    rows += next.Request.Rows;
                    continue;
                }

                var more = reader.WaitToReadAsync().AsTask();
                await Task.WhenAny(slot, more).ConfigureAwait(false);
                if (more.IsCompletedSuccessfully && !more.Result)
                    closed = true;
            }

            await slot.ConfigureAwait(false);
            Interlocked.Increment(ref _running);
            Interlocked.Add(ref _pending, -batch.Count);
            _ = Task.Run(() => Execute(batch));
            if (closed && carry is null)
                break;
        }
    }

    private void Execute(List<Item> batch)
    {
        try
        {
            var live = new List<Item>(batch.Count);
            foreach (var item in batch)
            {
                if (item.Cancellation.IsCancellationRequested)
                    item.Result.TrySetCanceled(item.Cancellation);
                else
                    live.Add(item);
            }
            foreach (var group in live.GroupBy(i => i.Request.BatchKey))
                RunGroup(group.ToList());
        }
        finally
        {
            ReleaseSlot();
        }
    }

    private void RunGroup(List<Item> items)
    {
        if (items.Count == 1)
        {
            var item = items[0];
            try
            {
                var result = _model.Run(item.Request.Inputs, item.Request.OutputNames);
                _metrics.BatchSize.Record(item.Request.Rows, _tags);
                item.Result.TrySetResult(result);
            }
            catch (Exception e)
            {
                item.Result.TrySetException(e);
            }
            return;
        }

        IReadOnlyList<InferTensor>[] results;
        try
        {
            results = RunBatched(items);
        }
        catch (Exception e)
        {
            // Something in the batch broke the call: isolate it by running each request on its own.
            _logger.LogWarning(e, "Batch of {Count} requests for {Model} v{Version} failed; re-running them one by one.",
                items.Count, _model.Record.Name, _model.Record.Version);
            foreach (var item in items)
                RunGroup([item]);
            return;
        }
        for (int i = 0; i < items.Count; i++)
            items[i].Result.TrySetResult(results[i]);
    }

    private IReadOnlyList<InferTensor>[] RunBatched(List<Item> items)
    {
        int total = items.Sum(i => i.Request.Rows);
        var template = items[0].Request;
        var inputs = new InferTensor[template.Inputs.Count];
        for (int k = 0; k < inputs.Length; k++)
        {
            var t0 = template.Inputs[k];
            int rowSize = t0.Data.Length / template.Rows;
            var data = Array.CreateInstance(t0.Data.GetType().GetElementType()!, (long)total * rowSize);
            int offset = 0;
            foreach (var item in items)
            {
                var src = item.Request.Inputs[k].Data;
                Array.Copy(src, 0, data, offset, src.Length);
                offset += src.Length;
            }
            inputs[k] = new InferTensor(t0.Name, t0.Datatype, [total, .. t0.Shape.Skip(1)], data);
        }

        var outputs = _model.Run(inputs, template.OutputNames);
        _metrics.BatchSize.Record(total, _tags);

        var results = new IReadOnlyList<InferTensor>[items.Count];
        for (int i = 0; i < items.Count; i++)
            results[i] = new InferTensor[outputs.Count];
        for (int k = 0; k < outputs.Count; k++)
        {
            var o = outputs[k];
            if (o.Shape.Length == 0 || o.Shape[0] != total)
                throw new InvalidOperationException($"Output '{o.Name}' has shape [{string.Join(",", o.Shape)}], not a batch of {total}: it cannot be split.");
            int rowSize = total == 0 ? 0 : o.Data.Length / total;
            int offset = 0;
            for (int i = 0; i < items.Count; i++)
            {
                int n = items[i].Request.Rows;
                var slice = Array.CreateInstance(o.Data.GetType().GetElementType()!, (long)n * rowSize);
                Array.Copy(o.Data, (long)offset * rowSize, slice, 0, (long)n * rowSize);
                offset += n;
                ((InferTensor[])results[i])[k] = new InferTensor(o.Name, o.Datatype, [n, .. o.Shape.Skip(1)], slice);
            }
        }
        return results;
    }

    public async ValueTask DisposeAsync()
    {
        // Finish what was queued, then wait for running batches, so no caller is left without an answer.
        _closing = true;
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        for (int i = 0; i < _slotCount; i++)
            await _slots.WaitAsync().ConfigureAwait(false);
        _slots.Dispose();
    }
}
