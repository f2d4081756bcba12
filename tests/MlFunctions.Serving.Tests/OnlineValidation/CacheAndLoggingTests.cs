using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text.Json;
using System.Text.RegularExpressions;
using MlFunctions.Core.Registry;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving.Tests.OnlineValidation;

/// <summary>Counts one serving counter for one model (model names are unique per test, so parallel tests do not mix).</summary>
internal sealed class CounterProbe : IDisposable
{
    private readonly MeterListener _listener = new();
    public ConcurrentDictionary<string, long> Totals { get; } = new();

    public CounterProbe(string model)
    {
        _listener.InstrumentPublished = (i, l) =>
        {
            if (i.Meter.Name == ServingMetrics.MeterName)
                l.EnableMeasurementEvents(i);
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) =>
        {
            foreach (var t in tags)
                if (t.Key == "model" && (string?)t.Value == model)
                    Totals.AddOrUpdate(i.Name, v, (_, old) => old + v);
        });
        _listener.Start();
    }

    public long this[string name] => Totals.GetValueOrDefault(name);
    public void Dispose() => _listener.Dispose();
}

/// <summary>Holds every write until released: a storage account that has stopped answering.</summary>
internal sealed class StalledSink : IPayloadSink
{
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public ConcurrentQueue<string> Paths { get; } = new();

    public async Task WriteAsync(string path, BinaryData lines, CancellationToken cancellationToken)
    {
        await Release.Task;
        Paths.Enqueue(path);
    }
}

public sealed class PredictionCacheTests
{
    private static InferRequest Request(float seed) => new()
    {
        Inputs = [new InferTensor("input", Datatype.FP32, [1, 4], new[] { seed, 1f, 2f, 3f })],
    };

    [Fact]
    public async Task Repeated_inputs_are_answered_from_the_cache_and_never_across_versions()
    {
        string model = "cache-" + Guid.NewGuid().ToString("N")[..8];
        using var probe = new CounterProbe(model);
        await using var h = new Harness();
        var v1 = await h.RegisterAsync(model, OnnxModels.Mlp(seed: 1));
        var first = await h.Dataplane.InferAsync(model, null, Request(0.5f));
        var again = await h.Dataplane.InferAsync(model, null, Request(0.5f));
        Assert.Equal((float[])first.Outputs[0].Data, (float[])again.Outputs[0].Data);
        Assert.Equal(1, probe["mlf.prediction_cache.hits"]);
        Assert.Equal(1, probe["mlf.prediction_cache.misses"]);
        await h.Dataplane.InferAsync(model, null, Request(0.6f)); // one different input value: a miss
        Assert.Equal(2, probe["mlf.prediction_cache.misses"]);

        // Move champion to a different model: the same input must be computed by v2, not served from v1's entry.
        var v2onnx = OnnxModels.Mlp(seed: 2);
        var v2 = await h.RegisterAsync(model, v2onnx);
        h.Repository.InvalidateAliases();
        var moved = await h.Dataplane.InferAsync(model, null, Request(0.5f));
        Assert.Equal(v2.Version.ToString(), moved.ModelVersion);
        Assert.Equal(OnnxModels.RunDirect(v2onnx, "input", [0.5f, 1f, 2f, 3f], [1, 4], "output"), (float[])moved.Outputs[0].Data);
        Assert.NotEqual((float[])first.Outputs[0].Data, (float[])moved.Outputs[0].Data);
        Assert.Equal(3, probe["mlf.prediction_cache.misses"]);
        Assert.Equal(v1.Version.ToString(), (await h.Dataplane.InferAsync(model, v1.Version.ToString(), Request(0.5f))).ModelVersion);
        Assert.Equal(2, probe["mlf.prediction_cache.hits"]);
    }

    [Fact]
    public async Task A_model_with_the_cache_off_always_runs()
    {
        string model = "nocache-" + Guid.NewGuid().ToString("N")[..8];
        using var probe = new CounterProbe(model);
        await using var h = new Harness(o => o.ModelPredictionCache[model] = new PredictionCacheOptions { Enabled = false });
        await h.RegisterAsync(model, OnnxModels.Mlp(seed: 1));
        for (int i = 0; i < 3; i++)
            await h.Dataplane.InferAsync(model, null, Request(0.5f));
        Assert.Equal(0, probe["mlf.prediction_cache.hits"] + probe["mlf.prediction_cache.misses"]);
        Assert.Equal(0, h.Dataplane.CachedPredictions);
    }

    [Fact]
    public void The_cache_is_a_bounded_lru()
    {
        var cache = new PredictionCache(new PredictionCacheOptions { MaxEntries = 2 });
        var version = new ModelVersion { Name = "m", Version = 1, ArtifactUri = "x", Sha256 = new string('0', 64), Signature = new ModelSignature([], []), CreatedAt = DateTimeOffset.UnixEpoch };
        PredictionCache.Key Key(float x) => PredictionCache.KeyFor(version, Request(x), transformed: false);
        IReadOnlyList<InferTensor> Out(float x) => [new InferTensor("o", Datatype.FP32, [1], new[] { x })];
        cache.Add(Key(1), Out(1));
        cache.Add(Key(2), Out(2));
        Assert.True(cache.TryGet(Key(1), out _)); // 1 is now the most recent
        cache.Add(Key(3), Out(3));                // evicts 2
        Assert.False(cache.TryGet(Key(2), out _));
        Assert.True(cache.TryGet(Key(1), out _));
        Assert.True(cache.TryGet(Key(3), out _));
        Assert.Equal(2, cache.Count);
        Assert.NotEqual(Key(1), PredictionCache.KeyFor(version, Request(1), transformed: true));
        Assert.NotEqual(Key(1), PredictionCache.KeyFor(version with { Version = 2 }, Request(1), transformed: false));
    }
}

[Collection(AzuriteCollection.Name)]
public sealed class PayloadLoggingTests(AzuriteFixture azurite)
{
    private static readonly Regex PathShape = new(@"^(?<model>[^/]+)/\d{4}/\d{2}/\d{2}/\d{2}/[0-9a-f]{32}\.jsonl$");

    private static InferRequest Request(int i) => new()
    {
        Id = $"req-{i}",
        Inputs = [new InferTensor("input", Datatype.FP32, [1, 4], new[] { i, 1f, 2f, 3f })],
    };

    private async Task<List<JsonElement>> RunAsync(string model, bool redact)
    {
        var container = await azurite.NewContainerAsync("payload");
        var options = new PayloadLoggingOptions { RedactInputs = redact, FlushInterval = TimeSpan.FromMilliseconds(100) };
        var metrics = new ServingMetrics();
        var logger = new PayloadLogger(options, new BlobPayloadSink(container), metrics);
        await using (var h = new Harness(payloads: logger))
        {
            await h.RegisterAsync(model, OnnxModels.Mlp(seed: 1));
            for (int i = 0; i < 5; i++)
                await h.Dataplane.InferAsync(model, null, Request(i));
        }
        await logger.DisposeAsync(); // flushes
        var lines = new List<JsonElement>();
        await foreach (var blob in container.GetBlobsAsync())
        {
            Assert.Matches(PathShape, blob.Name);
            Assert.Equal(model, PathShape.Match(blob.Name).Groups["model"].Value);
            var text = (await container.GetBlobClient(blob.Name).DownloadContentAsync()).Value.Content.ToString();
            lines.AddRange(text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()));
        }
        return lines;
    }

    [Fact]
    public async Task Sampled_pairs_are_written_as_json_lines_in_hour_partitions_with_version_and_latency()
    {
        var lines = await RunAsync("logged", redact: false);
        Assert.Equal(5, lines.Count);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"req-{i}").Order(), lines.Select(l => l.GetProperty("id").GetString()!).Order());
        Assert.All(lines, l =>
        {
            Assert.Equal("1", l.GetProperty("version").GetString());
            Assert.True(l.GetProperty("latency_ms").GetDouble() >= 0);
            Assert.Equal(4, l.GetProperty("request").GetProperty("inputs")[0].GetProperty("data").GetArrayLength());
            Assert.Equal(3, l.GetProperty("response").GetProperty("outputs")[0].GetProperty("data").GetArrayLength());
        });
    }

    [Fact]
    public async Task Over_http_the_request_is_logged_as_the_clients_own_json_body_unless_it_spans_lines()
    {
        var container = await azurite.NewContainerAsync("payload");
        var logger = new PayloadLogger(new PayloadLoggingOptions { FlushInterval = TimeSpan.FromMilliseconds(50) }, new BlobPayloadSink(container), new ServingMetrics());
        const string compact = """{"id":"raw-1","inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[0.1,2,3,4]}]}""";
        const string pretty = "{\n  \"id\": \"raw-2\",\n  \"inputs\": [{\"name\": \"input\", \"shape\": [1, 4], \"datatype\": \"FP32\", \"data\": [1, 2, 3, 4]}]\n}";
        await using (var h = new Harness(payloads: logger))
        {
            await h.RegisterAsync("rawlog", OnnxModels.Mlp(seed: 1));
            Assert.Equal(200, (await h.SendAsync("POST", "v2/models/rawlog/infer", compact)).Status);
            Assert.Equal(200, (await h.SendAsync("POST", "v2/models/rawlog/infer", pretty)).Status);
        }
        await logger.DisposeAsync();
        var lines = new Dictionary<string, JsonElement>();
        await foreach (var blob in container.GetBlobsAsync())
            foreach (var l in (await container.GetBlobClient(blob.Name).DownloadContentAsync()).Value.Content.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries))
                lines[JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()!] = JsonDocument.Parse(l).RootElement.Clone();
        Assert.Equal(compact, lines["raw-1"].GetProperty("request").GetRawText()); // byte for byte: 0.1 stays "0.1"
        var structured = lines["raw-2"].GetProperty("request").GetProperty("inputs")[0];
        Assert.Equal(4, structured.GetProperty("data").GetArrayLength());
        Assert.Equal(JsonValueKind.Array, lines["raw-2"].GetProperty("response").GetProperty("outputs").ValueKind);
    }

    [Fact]
    public async Task Redaction_drops_input_data_but_keeps_shapes_and_outputs()
    {
        var lines = await RunAsync("redacted", redact: true);
        Assert.Equal(5, lines.Count);
        Assert.All(lines, l =>
        {
            var input = l.GetProperty("request").GetProperty("inputs")[0];
            Assert.False(input.TryGetProperty("data", out _));
            Assert.Equal(2, input.GetProperty("shape").GetArrayLength());
            Assert.True(l.GetProperty("response").GetProperty("outputs")[0].TryGetProperty("data", out _));
        });
    }

    [Fact]
    public async Task A_stalled_store_never_blocks_requests_and_dropped_records_are_counted()
    {
        string model = "dropped-" + Guid.NewGuid().ToString("N")[..8];
        using var probe = new CounterProbe(model);
        var sink = new StalledSink();
        var metrics = new ServingMetrics();
        var logger = new PayloadLogger(new PayloadLoggingOptions { BufferCapacity = 4, MaxBatch = 1, FlushInterval = TimeSpan.FromMilliseconds(10) }, sink, metrics);
        await using (var h = new Harness(o => o.PredictionCache = new PredictionCacheOptions { Enabled = false }, payloads: logger))
        {
            await h.RegisterAsync(model, OnnxModels.Mlp(seed: 1));
            for (int i = 0; i < 50; i++)
                Assert.Single((await h.Dataplane.InferAsync(model, null, Request(i))).Outputs); // every request is answered
        }
        long dropped = probe["mlf.payload_log.dropped"];
        // At most the buffer plus the one record the writer holds can be waiting; everything else was dropped.
        Assert.InRange(dropped, 50 - 4 - 1, 50);
        sink.Release.SetResult();
        await logger.DisposeAsync();
        Assert.Equal(50 - dropped, probe["mlf.payload_log.records"]);
    }
}
