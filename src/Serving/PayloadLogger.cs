using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
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

/// <summary>Where batches of JSON lines go: one blob per batch and hour partition.</summary>
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
/// time-partitioned blobs. The request path only does <see cref="Channel{T}"/>.TryWrite on a bounded channel
/// (a full buffer drops the record and counts it: the hot path never waits on storage); one writer drains the
/// channel in batches of up to <see cref="PayloadLoggingOptions.MaxBatch"/> records or one flush interval,
/// whichever comes first, and writes one blob per (model, hour) in the batch.
/// </summary>
public sealed class PayloadLogger : IAsyncDisposable
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonSerializerOptions DataJson = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
    private readonly PayloadLoggingOptions _options;
    private readonly IPayloadSink _sink;
    private readonly ServingMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Channel<PayloadRecord> _channel;
    private readonly Task _writer;

    public PayloadLogger(PayloadLoggingOptions options, IPayloadSink sink, ServingMetrics metrics, ILogger<PayloadLogger>? logger = null)
    {
        _options = options;
        _sink = sink;
        _metrics = metrics;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _channel = Channel.CreateBounded<PayloadRecord>(new BoundedChannelOptions(Math.Max(1, options.BufferCapacity))
        {
            FullMode = BoundedChannelFullMode.Wait, // with TryWrite this means "refuse": the caller counts the drop
            SingleReader = true,
        });
        _writer = options.Enabled ? Task.Run(WriteLoopAsync) : Task.CompletedTask;
    }

    public bool Enabled => _options.Enabled;

    /// <summary>Offers a finished request to the log: sampled, never blocking; false when it was dropped or not sampled.</summary>
    internal bool Offer(string model, string version, double latencyMs, InferRequest request, InferResponse response)
    {
        if (!_options.Enabled || (_options.SampleRate < 1 && Random.Shared.NextDouble() >= _options.SampleRate))
            return false;
        if (_channel.Writer.TryWrite(new PayloadRecord(DateTimeOffset.UtcNow, model, version, latencyMs, request, response)))
            return true;
        _metrics.PayloadsDropped.Add(1, new("model", model), new("reason", "buffer_full"));
        return false;
    }

    private async Task WriteLoopAsync()
    {
        var reader = _channel.Reader;
        var batch = new List<PayloadRecord>(_options.MaxBatch);
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // Collect until the batch is full or the flush interval since its first record has passed.
            var deadline = Stopwatch.GetTimestamp() + (long)(_options.FlushInterval.TotalSeconds * Stopwatch.Frequency);
            while (batch.Count < _options.MaxBatch)
            {
                if (reader.TryRead(out var record))
                {
                    batch.Add(record);
                    continue;
                }
                var wait = TimeSpan.FromSeconds((double)(deadline - Stopwatch.GetTimestamp()) / Stopwatch.Frequency);
                if (wait <= TimeSpan.Zero)
                    break;
                using var cts = new CancellationTokenSource(wait);
                try
                {
                    if (!await reader.WaitToReadAsync(cts.Token).ConfigureAwait(false))
                        break; // completed: flush what we have
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            await FlushAsync(batch).ConfigureAwait(false);
            batch.Clear();
        }
    }

    private async Task FlushAsync(List<PayloadRecord> batch)
    {
        foreach (var group in batch.GroupBy(r => (r.Model, Hour: r.Timestamp.UtcDateTime.ToString("yyyy/MM/dd/HH", CultureInfo.InvariantCulture))))
        {
            var path = $"{group.Key.Model}/{group.Key.Hour}/{Guid.NewGuid():N}.jsonl";
            int count = group.Count();
            try
            {
                using var buffer = new MemoryStream();
                foreach (var record in group)
                {
                    Write(buffer, record);
                    buffer.WriteByte((byte)'\n');
                }
                await _sink.WriteAsync(path, new BinaryData(buffer.ToArray()), CancellationToken.None).ConfigureAwait(false);
                _metrics.PayloadsLogged.Add(count, new KeyValuePair<string, object?>("model", group.Key.Model));
            }
            catch (Exception e)
            {
                _metrics.PayloadsDropped.Add(count, new("model", group.Key.Model), new("reason", "write_failed"));
                _logger.LogWarning(e, "Could not write {Count} payload records to {Path}.", count, path);
            }
        }
    }

    private void Write(Stream stream, PayloadRecord r)
    {
        using var w = new Utf8JsonWriter(stream, WriterOptions);
        w.WriteStartObject();
        w.WriteString("timestamp", r.Timestamp);
        w.WriteString("id", r.Request.Id);
        w.WriteString("model", r.Model);
        w.WriteString("version", r.Version);
        w.WriteNumber("latency_ms", Math.Round(r.LatencyMs, 3));
        w.WriteStartObject("request");
        if (_options.RedactInputs)
            w.WriteBoolean("redacted", true);
        Tensors(w, "inputs", r.Request.Inputs, withData: !_options.RedactInputs);
        w.WriteEndObject();
        w.WriteStartObject("response");
        Tensors(w, "outputs", r.Response.Outputs, withData: true);
        w.WriteEndObject();
        w.WriteEndObject();
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
                JsonSerializer.Serialize(w, t.Data, t.Data.GetType(), DataJson); // NaN as "NaN": one odd output must not lose a batch
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>Stops taking records and writes what is buffered (host shutdown).</summary>
    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
    }
}
