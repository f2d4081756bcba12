using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving;

/// <summary>Payload logging settings (KServe's logger).</summary>
public sealed record PayloadLoggingOptions
{
    public bool Enabled { get; init; } = true;

    /// <summary>Share of successful requests logged, in [0, 1].</summary>
    public double SampleRate { get; init; } = 1.0;

    /// <summary>Log input names, datatypes and shapes but not their data (outputs are kept).</summary>
    public bool RedactInputs { get; init; }

    /// <summary>Records held in memory for the writer; beyond this new records are dropped and counted, never waited for.</summary>
    public int BufferCapacity { get; init; } = 10_000;

    /// <summary>Records per blob at most, and the longest a record waits for its batch.</summary>
    public int MaxBatch { get; init; } = 1_000;
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Container of the logs; blobs are <c>{model}/{yyyy}/{MM}/{dd}/{HH}/{guid}.jsonl</c> (UTC hour of the request).</summary>
    public string Container { get; init; } = "payload-logs";
}

/// <summary>Where batches of JSON lines go: one blob per batch and hour partition. <c>lines</c> is the writer's reused
/// buffer: valid until <see cref="WriteAsync"/> returns, so a sink copies what it keeps.</summary>
public interface IPayloadSink
{
    Task WriteAsync(string path, BinaryData lines, CancellationToken cancellationToken);
}

public sealed class BlobPayloadSink(BlobContainerClient container) : IPayloadSink
{
    private int _ready;

    public async Task WriteAsync(string path, BinaryData lines, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _ready) == 0)
        {
            await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _ready, 1);
        }
        await container.GetBlobClient(path).UploadAsync(lines, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>One sampled request/response pair; serialized by the writer, off the request path.</summary>
internal sealed record PayloadRecord(DateTimeOffset Timestamp, string Model, string Version, double LatencyMs, InferRequest Request, InferResponse Response);

/// <summary>
/// KServe's payload logger: sampled request/response pairs with version and latency, as JSON lines in
/// time-partitioned blobs. The request path only counts and enqueues: an <see cref="Interlocked"/> increment against
/// <see cref="PayloadLoggingOptions.BufferCapacity"/> (a full buffer drops the record and counts it: the hot path never
/// waits on storage) and a lock-free <see cref="ConcurrentQueue{T}"/> enqueue. One writer wakes once per flush
/// interval, or when a full batch of <see cref="PayloadLoggingOptions.MaxBatch"/> is waiting, and writes one blob per
/// (model, hour) in the batch.
/// </summary>
/// <remarks>
/// Why not a bounded <c>Channel</c> (the first version): every TryWrite took the channel's lock and, with
/// the writer waiting, woke it for that one record, which then armed a fresh timeout (a timer allocation) to wait
/// for the next: one thread-pool wake-up and timer per request, competing for the CPUs the model runs on. Now the
/// writer wakes about once a second. Serialization stays on the writer: one reused <see cref="Utf8JsonWriter"/> per
/// blob into a growing buffer that is uploaded without a copy, with numeric tensors written element by element
/// (non-finite floats as "NaN"/"Infinity" strings, as before) rather than through the reflection-based serializer.
/// </remarks>
public sealed class PayloadLogger : IAsyncDisposable
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonSerializerOptions DataJson = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
    private readonly PayloadLoggingOptions _options;
    private readonly IPayloadSink _sink;
    private readonly ServingMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ConcurrentQueue<PayloadRecord> _queue = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly int _capacity, _maxBatch;
    private readonly Task _writer;

    // The writer's line buffers, reused from one flush to the next (only the writer touches them). A fresh
    // ArrayBufferWriter per flush grew 4 KB → 4 MB by doubling: about 8 MB of large-object-heap arrays per 1,000-record
    // batch of MNIST bodies (3 MB of JSON), 2-3 batches a second in bench/online, and every LOH allocation counts
    // toward a gen-2 collection of the whole serving process.
    private readonly Stack<ArrayBufferWriter<byte>> _spare = new();
    private int _count;
    private volatile bool _completed;

    public PayloadLogger(PayloadLoggingOptions options, IPayloadSink sink, ServingMetrics metrics, ILogger<PayloadLogger>? logger = null)
    {
        _options = options;
        _sink = sink;
        _metrics = metrics;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _capacity = Math.Max(1, options.BufferCapacity);
        _maxBatch = Math.Max(1, options.MaxBatch);
        _writer = options.Enabled ? Task.Run(WriteLoopAsync) : Task.CompletedTask;
    }

    public bool Enabled => _options.Enabled;

    /// <summary>True when the handlers should keep each request's JSON body for the log (see <see cref="InferRequest.RawJson"/>).</summary>
    public bool KeepsRawRequests => _options is { Enabled: true, RedactInputs: false, SampleRate: > 0 };

    /// <summary>Offers a finished request to the log: sampled, never blocking; false when it was dropped or not sampled.</summary>
    internal bool Offer(string model, string version, double latencyMs, InferRequest request, InferResponse response)
    {
        if (!_options.Enabled || (_options.SampleRate < 1 && Random.Shared.NextDouble() >= _options.SampleRate))
            return false;
        int queued = Interlocked.Increment(ref _count);
        if (queued > _capacity || _completed)
        {
            Interlocked.Decrement(ref _count);
            _metrics.PayloadsDropped.Add(1, new("model", model), new("reason", "buffer_full"));
            return false;
        }
        _queue.Enqueue(new PayloadRecord(DateTimeOffset.UtcNow, model, version, latencyMs, request, response));
        if (queued == _maxBatch)
            _wake.Release(); // a full batch is waiting: do not let it sit for the rest of the interval
        return true;
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<PayloadRecord>(Math.Min(_maxBatch, 4096));
        while (true)
        {
            if (Volatile.Read(ref _count) < _maxBatch && !_completed)
                await _wake.WaitAsync(_options.FlushInterval).ConfigureAwait(false);
            bool completed = _completed; // read before draining: records offered before completion are all written
            while (batch.Count < _maxBatch && _queue.TryDequeue(out var record))
            {
                batch.Add(record);
                Interlocked.Decrement(ref _count);
            }
            if (batch.Count > 0)
            {
                await FlushAsync(batch).ConfigureAwait(false);
                batch.Clear();
            }
            if (completed && _queue.IsEmpty)
                return;
        }
    }

    private async Task FlushAsync(List<PayloadRecord> batch)
    {
        // Partitions in first-seen order: (model, UTC hour) → the records' JSON lines.
        var groups = new Dictionary<(string Model, long Hour), (ArrayBufferWriter<byte> Lines, int Count, DateTime Start)>();
        Utf8JsonWriter? writer = null;
        try
        {
            foreach (var record in batch)
            {
                var utc = record.Timestamp.UtcDateTime;
                var key = (record.Model, utc.Ticks / TimeSpan.TicksPerHour);
                if (!groups.TryGetValue(key, out var group))
                    group = (_spare.TryPop(out var spare) ? spare : new ArrayBufferWriter<byte>(64 * 1024), 0, utc);
                if (writer is null)
                    writer = new Utf8JsonWriter(group.Lines, WriterOptions);
                else
                    writer.Reset(group.Lines);
                Write(writer, record);
                writer.Flush();
                group.Lines.Write("\n"u8);
                groups[key] = group with { Count = group.Count + 1 };
            }
        }
        finally
        {
            writer?.Dispose();
        }
        foreach (var ((model, _), (lines, count, start)) in groups)
        {
            var path = $"{model}/{start.ToString("yyyy/MM/dd/HH", CultureInfo.InvariantCulture)}/{Guid.NewGuid():N}.jsonl";
            try
            {
                await _sink.WriteAsync(path, new BinaryData(lines.WrittenMemory), CancellationToken.None).ConfigureAwait(false);
                _metrics.PayloadsLogged.Add(count, new KeyValuePair<string, object?>("model", model));
            }
            catch (Exception e)
            {
                _metrics.PayloadsDropped.Add(count, new("model", model), new("reason", "write_failed"));
                _logger.LogWarning(e, "Could not write {Count} payload records to {Path}.", count, path);
            }
            // The upload has read the bytes (it returned); keep a few buffers, with their capacity, for the next flush.
            lines.ResetWrittenCount();
            if (_spare.Count < 4)
                _spare.Push(lines);
        }
    }

    private void Write(Utf8JsonWriter w, PayloadRecord r)
    {
        w.WriteStartObject();
        w.WriteString("timestamp", r.Timestamp);
        w.WriteString("id", r.Request.Id);
        w.WriteString("model", r.Model);
        w.WriteString("version", r.Version);
        w.WriteNumber("latency_ms", Math.Round(r.LatencyMs, 3));
        w.WritePropertyName("request");
        if (!_options.RedactInputs && RawObject(r.Request.RawJson.Span) is { IsEmpty: false } raw)
        {
            // The client's own V2 body, byte for byte ({"id", "inputs": [{"name", "shape", "datatype", "data"}], ...}):
            // no number is re-encoded. RawObject checked it is one complete JSON object on one line.
            w.WriteRawValue(raw, skipInputValidation: true);
        }
        else
        {
            w.WriteStartObject();
            if (_options.RedactInputs)
                w.WriteBoolean("redacted", true);
            Tensors(w, "inputs", r.Request.Inputs, withData: !_options.RedactInputs);
            w.WriteEndObject();
        }
        w.WriteStartObject("response");
        Tensors(w, "outputs", r.Response.Outputs, withData: true);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>The raw body trimmed, when it is one JSON object on one line (JSON lines); else empty (the structured form is written).</summary>
    /// <remarks>
    /// No second parse: <see cref="InferRequest.RawJson"/> is only set by the V2 handler after <c>V2Codec.ParseRequest</c>
    /// accepted the same bytes as exactly one JSON object (default reader options: no comments, no trailing commas,
    /// trailing content rejected), so the bracket and newline checks are all that JSON lines need. The earlier
    /// <c>Utf8JsonReader.Skip</c> here tokenized every logged body a second time: 15.3 µs for a 784-float MNIST body
    /// (2.9 KB, 80 % zeros; measured in a loop of 200,000), which at the bench's ~2,400 requests/s is ~3.7 % of one of
    /// this machine's two cores.
    /// </remarks>
    private static ReadOnlySpan<byte> RawObject(ReadOnlySpan<byte> raw)
    {
        raw = raw.Trim(" \t\r\n"u8);
        return raw.Length < 2 || raw[0] != (byte)'{' || raw[^1] != (byte)'}' || raw.IndexOfAny((byte)'\n', (byte)'\r') >= 0 ? default : raw;
    }

    private static void Tensors(Utf8JsonWriter w, string name, IReadOnlyList<InferTensor> tensors, bool withData)
    {
        w.WriteStartArray(name);
        foreach (var t in tensors)
        {
            w.WriteStartObject();
            w.WriteString("name", t.Name);
            w.WriteString("datatype", t.Datatype);
            w.WriteStartArray("shape");
            foreach (var d in t.Shape)
                w.WriteNumberValue(d);
            w.WriteEndArray();
            if (withData)
            {
                w.WritePropertyName("data");
                Data(w, t.Data);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>The common numeric tensors element by element; anything else (strings, bytes, booleans) through the serializer.</summary>
    private static void Data(Utf8JsonWriter w, Array data)
    {
        switch (data)
        {
            case float[] f:
                w.WriteStartArray();
                foreach (float x in f)
                {
                    if (float.IsFinite(x))
                        w.WriteNumberValue(x);
                    else
                        w.WriteStringValue(float.IsNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity"); // one odd output must not lose a batch
                }
                w.WriteEndArray();
                break;
            case double[] d:
                w.WriteStartArray();
                foreach (double x in d)
                {
                    if (double.IsFinite(x))
                        w.WriteNumberValue(x);
                    else
                        w.WriteStringValue(double.IsNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity");
                }
                w.WriteEndArray();
                break;
            case int[] i:
                w.WriteStartArray();
                foreach (int x in i)
                    w.WriteNumberValue(x);
                w.WriteEndArray();
                break;
            case long[] l:
                w.WriteStartArray();
                foreach (long x in l)
                    w.WriteNumberValue(x);
                w.WriteEndArray();
                break;
            default:
                JsonSerializer.Serialize(w, data, data.GetType(), DataJson);
                break;
        }
    }

    /// <summary>Stops taking records and writes what is buffered (host shutdown).</summary>
    public async ValueTask DisposeAsync()
    {
        _completed = true;
        _wake.Release();
        await _writer.ConfigureAwait(false);
    }
}
