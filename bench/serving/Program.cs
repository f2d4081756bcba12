using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.OnnxRuntime;
using MlFunctions.Activities.Registry;
using MlFunctions.Bench.Serving;
using MlFunctions.Core.Registry;
using MlFunctions.Local;
using MlFunctions.Local.Cli;
using MlFunctions.Serving;
using MlFunctions.Serving.Protocol;

// Serving benchmark (issue #4, section 4). Variants, per model:
//   (a) our KServe V2 endpoint on the real local host (Kestrel, function key), JSON, 1 instance per request
//   (b) the same endpoint with binary tensor data (Inference-Header-Content-Length), 64 instances per request
//   (c) a hand-written minimal ASP.NET Core endpoint in this process: JSON in, one ORT call per request
//   (d) raw in-process ONNX Runtime at batch 64, no HTTP: the limit
// Closed-loop load (LoadGenerator.cs); (a) vs (c) at concurrency 1, 16, 64 and (b) vs (d) at 16.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

// Usage: [seconds per point] [warm-up seconds] [--models mnist-mlp,mnist-cnn,heavy-cnn] [--Section:Key value ...]
// Any other --Key value pair goes to the local host's configuration after the defaults below, so it overrides
// them (e.g. --Serving:DefaultBatching:MaxLatency 00:00:00.010).
var positional = new List<string>();
var hostOverrides = new List<string>();
string[]? modelFilter = null;
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--models" && i + 1 < args.Length)
        modelFilter = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    else if (args[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < args.Length)
        hostOverrides.AddRange([args[i], args[++i]]);
    else
        positional.Add(args[i]);
}
double durationS = positional.Count > 0 ? double.Parse(positional[0], CultureInfo.InvariantCulture) : 20;
double warmupS = positional.Count > 1 ? double.Parse(positional[1], CultureInfo.InvariantCulture) : Math.Clamp(durationS / 5, 1, 3);
var duration = TimeSpan.FromSeconds(durationS);
var warmup = TimeSpan.FromSeconds(warmupS);
const int BinaryBatch = 64;
int[] jsonConcurrency = [1, 16, 64];
const int BinaryConcurrency = 16;

// The host's dynamic batching for this benchmark (ServingOptions binds section "Serving"): Triton-style dispatch
// when idle (no wait at low load), batches of up to 64 instances, a 5 ms window for the next batch to fill while
// one runs. On a CPU host that also runs the HTTP stack (and here the load generator), single-threaded ORT calls
// with one batch in flight per core beat one multi-threaded call at a time: ORT's intra-op workers spin between
// parallel sections and take cores from the request threads, and one batch at a time leaves a core idle while a
// batch is formed, copied and answered. Measured on 2 cores: heavy CNN (b)/(d) 56% → ~100%, (a)/(c) at 64
// clients 0.68x → 0.9-1.1x. Two batches per core did no better and had worse p99 (smaller batches, more
// switching between threads with large working sets).
int batchSlots = Environment.ProcessorCount;
string[] batching =
[
    "--Serving:DefaultBatching:Enabled", "true",
    "--Serving:DefaultBatching:MaxBatchSize", "64",
    "--Serving:DefaultBatching:MaxLatency", "00:00:00.005",
    "--Serving:DefaultBatching:DispatchWhenIdle", "true",
    "--Serving:DefaultBatching:MaxConcurrentBatches", batchSlots.ToString(CultureInfo.InvariantCulture),
    "--Serving:IntraOpNumThreads", "1",
];
const string Key = "serving-bench-key";

Console.WriteLine($"serving benchmark: {durationS:0.#} s per point after {warmupS:0.#} s warm-up; {Environment.ProcessorCount} cores; " +
    $"ONNX Runtime {OrtEnv.Instance().GetVersionString()}; server GC {System.Runtime.GCSettings.IsServerGC}");
// All three parties share this process's thread pool: the load generator, the host, and the baseline, whose
// handlers block a pool thread for each ORT call. Enough threads up front keep the baseline from starving the
// load generator (and itself) while the pool's hill climbing catches up: a choice in the baseline's favour.
ThreadPool.GetMinThreads(out int minWorkers, out int minIo);
ThreadPool.SetMinThreads(Math.Max(minWorkers, 160), minIo);

var models = BenchModels.All().Where(m => modelFilter is null || modelFilter.Contains(m.Name)).ToList();
if (models.Count == 0)
    throw new ArgumentException($"--models matches none of: {string.Join(", ", BenchModels.All().Select(m => m.Name))}");
var data = Directory.CreateTempSubdirectory("mlf-serving-bench-").FullName;
var clock = Stopwatch.StartNew();
try
{
    // ---- the real local host: Azurite (unless AzureWebJobsStorage is set), engine, keys, V2 routes ----
    await using var host = LocalHost.Build(
    [
        "--urls", "http://127.0.0.1:0", "--Local:ApiKey", Key, "--Local:DataPath", data,
        "--Local:TaskHub", "servingbench" + Guid.NewGuid().ToString("N")[..8],
        "--Logging:LogLevel:Default", "Warning", "--Logging:LogLevel:MlFunctions.Serving", "Error",

        // No training workers: they would only take CPU from the measurement.
        "--Local:Workers", "0",
        .. batching,
        .. hostOverrides,
    ]);
    await host.StartAsync();
    var hostUrl = Commands.BaseUrl(host);
    var serving = host.Services.GetRequiredService<ServingOptions>();
    Console.WriteLine($"host batching (as bound from --Serving:DefaultBatching:*): {serving.DefaultBatching}; " +
        $"ORT intra-op threads {serving.IntraOpNumThreads?.ToString(CultureInfo.InvariantCulture) ?? "default"}, provider preference {serving.ExecutionProvider}");

    // Register each model as the registry would hold it after training: ONNX uploaded to blob storage (the
    // artifact store reads 'container/path' URIs on the host's account), a version, and the champion alias.
    var blobs = host.Services.GetRequiredService<BlobServiceClient>();
    var registry = host.Services.GetRequiredService<IModelRegistry>();
    var artifacts = blobs.GetBlobContainerClient(BlobModelRegistry.DefaultContainerName);
    await artifacts.CreateIfNotExistsAsync();
    foreach (var m in models)
    {
        string sha = Convert.ToHexStringLower(SHA256.HashData(m.Onnx));
        string blob = $"{m.Name}/artifacts/{sha[..16]}.onnx";
        await artifacts.GetBlobClient(blob).UploadAsync(BinaryData.FromBytes(m.Onnx), overwrite: true);
        var version = await registry.RegisterVersionAsync(m.Name, new ModelVersionDraft
        {
            ArtifactUri = $"{BlobModelRegistry.DefaultContainerName}/{blob}",
            Sha256 = sha,
            Signature = new ModelSignature(
                [new TensorSignature(BenchModel.Input, "FP32", m.BatchShape(-1))],
                [new TensorSignature(BenchModel.Output, "FP32", [-1, m.OutputSize])]),
            Lineage = new ModelLineage { PipelineRunId = "serving-bench" },
        });
        await registry.SetAliasAsync(m.Name, RegistryNames.Champion, version.Version);
    }

    using var http = LoadGenerator.NewClient();
    http.DefaultRequestHeaders.Add(MlFunctions.Local.Http.ApiKeys.HeaderName, Key);
    foreach (var m in models)
    {
        // /ready starts the load; poll until the session is live.
        var ready = Stopwatch.StartNew();
        while (true)
        {
            using var r = await http.GetAsync($"{hostUrl}/v2/models/{m.Name}/ready");
            if (r.IsSuccessStatusCode)
                break;
            if (ready.Elapsed > TimeSpan.FromSeconds(120))
                throw new InvalidOperationException($"{m.Name} is not ready after 120 s: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
            await Task.Delay(100);
        }
        using var meta = JsonDocument.Parse(await http.GetStringAsync($"{hostUrl}/v2/models/{m.Name}"));
        var p = meta.RootElement.GetProperty("parameters");
        Console.WriteLine($"{m.Name}: {m.Description}, {m.Onnx.Length / 1024.0:F0} KiB ONNX; host serves v{p.GetProperty("version").GetString()} " +
            $"on {p.GetProperty("execution_provider").GetString()}, batching {p.GetProperty("batching").GetString()}");
    }

    await using var baseline = await BaselineServer.StartAsync(models);
    using var batchSizes = new BatchSizeListener();
    var perModel = new List<(BenchModel Model, Dictionary<string, Point> Points, Dictionary<string, double> MeanBatch)>();

    foreach (var m in models)
    {
        // ---- requests, pre-serialized: 8 distinct single instances (JSON) and 2 distinct batches of 64 (binary) ----
        var rng = new Random(m.Name.Sum(ch => ch));
        float[][] singles = Enumerable.Range(0, 8).Select(_ => Pixels(rng, m.InstanceElements)).ToArray();
        float[][] batches = Enumerable.Range(0, 2).Select(_ => Pixels(rng, m.InstanceElements * BinaryBatch)).ToArray();
        var jsonBodies = singles.Select(x => JsonBody(x, m.BatchShape(1))).ToArray();
        var v2Uri = new Uri($"{hostUrl}/v2/models/{m.Name}/infer");
        var v2Json = jsonBodies.Select(b => new PreparedRequest(v2Uri, b, "application/json", [])).ToList();
        var baseJson = jsonBodies.Select(b => new PreparedRequest(baseline.PredictUri(m), b, "application/json", [])).ToList();
        var v2Binary = batches.Select(x => BinaryRequest(v2Uri, x, m.BatchShape(BinaryBatch))).ToList();

        using var raw = new InferenceSession(m.Onnx, new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL });

        // ---- the endpoints must answer what ONNX Runtime computes ----
        await CheckAsync(m, raw, http, v2Json[0], baseJson[0], v2Binary[0], singles[0], batches[0]);

        var points = new Dictionary<string, Point>();
        var meanBatch = new Dictionary<string, double>();
        async Task Measure(string key, Func<Task<Point>> run)
        {
            batchSizes.Reset();
            var point = await run();
            points[key] = point;
            meanBatch[key] = batchSizes.Mean(m.Name);
            Console.WriteLine($"  {m.Name,-10} {Row(key, point, meanBatch[key])}");
        }

        Console.WriteLine($"== {m.Name} ==");
        foreach (int c in jsonConcurrency)
        {
            // (a) and (c) back to back at each concurrency, so drift in machine load hits both alike.
            await Measure($"a{c}", () => LoadGenerator.RunHttpAsync("(a) V2 JSON, 1/req", http, v2Json, c, 1, warmup, duration));
            await Measure($"c{c}", () => LoadGenerator.RunHttpAsync("(c) baseline JSON, 1/req", http, baseJson, c, 1, warmup, duration));
        }
        await Measure($"b{BinaryConcurrency}", () => LoadGenerator.RunHttpAsync($"(b) V2 binary, {BinaryBatch}/req", http, v2Binary, BinaryConcurrency, BinaryBatch, warmup, duration));
        await Measure($"d{BinaryConcurrency}", () => RawAsync(raw, m, batches, BinaryConcurrency, warmup, duration));
        // For reference only (not in RESULT): one caller, back-to-back batches, ORT's threads to itself.
        await Measure("d1", () => RawAsync(raw, m, batches, 1, warmup, duration));
        perModel.Add((m, points, meanBatch));
    }

    // ---- tables and ratios ----
    Console.WriteLine();
    Console.WriteLine($"samples/s = instances per second; latency per request; batch = mean instances per ORT call in the host ({durationS:0.#} s per point)");
    var result = new Dictionary<string, double>();
    foreach (var (m, points, meanBatch) in perModel)
    {
        Console.WriteLine();
        Console.WriteLine($"{m.Name} ({m.Description})");
        Console.WriteLine($"  {"variant",-28} {"conc",4} {"samples/s",10} {"p50 ms",8} {"p99 ms",8} {"requests",9} {"errors",6} {"batch",6}");
        foreach (var key in points.Keys) // measurement order: a1 c1 a16 c16 a64 c64 b16 d16 d1
            Console.WriteLine($"  {Row(key, points[key], meanBatch[key])}");
        string ratios = string.Join("  ", jsonConcurrency.Select(c => $"c={c} {points[$"a{c}"].SamplesPerSec / points[$"c{c}"].SamplesPerSec:F2}x"));
        double binary = points[$"b{BinaryConcurrency}"].SamplesPerSec / points[$"d{BinaryConcurrency}"].SamplesPerSec;
        Console.WriteLine($"  (a)/(c) throughput: {ratios};  p99 at c=64: (a) {points["a64"].P99Ms:F1} ms vs (c) {points["c64"].P99Ms:F1} ms");
        Console.WriteLine($"  (b)/(d) throughput at c={BinaryConcurrency}: {binary:P0}  (vs raw ORT with one caller: {points[$"b{BinaryConcurrency}"].SamplesPerSec / points["d1"].SamplesPerSec:P0})");
        string tag = m.Name switch { "mnist-mlp" => "mlp", "mnist-cnn" => "cnn", _ => "heavy" };
        result[$"{tag}_json_vs_baseline"] = points["a64"].SamplesPerSec / points["c64"].SamplesPerSec;
        result[$"{tag}_binary_vs_raw"] = binary;
        if (tag == "heavy")
        {
            result["heavy_p99_ms_json"] = points["a64"].P99Ms;
            result["heavy_p99_ms_baseline"] = points["c64"].P99Ms;
        }
    }
    long failed = perModel.Sum(x => x.Points.Values.Sum(p => p.Errors));
    if (failed > 0)
        Console.WriteLine($"WARNING: {failed} requests failed; see the errors column.");

    Console.WriteLine($"total {clock.Elapsed.TotalSeconds:F0} s");
    string[] order = ["mlp_json_vs_baseline", "cnn_json_vs_baseline", "heavy_json_vs_baseline", "mlp_binary_vs_raw", "cnn_binary_vs_raw",
        "heavy_binary_vs_raw", "heavy_p99_ms_json", "heavy_p99_ms_baseline"];
    Console.WriteLine("RESULT serving " + string.Join(' ', order.Select(k => $"{k}={result.GetValueOrDefault(k, double.NaN).ToString(k.Contains("p99", StringComparison.Ordinal) ? "F1" : "F3", CultureInfo.InvariantCulture)}")));
    await host.StopAsync();
    return failed > 0 ? 1 : 0;
}
finally
{
    try { Directory.Delete(data, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
}

static string Row(string key, Point p, double meanBatch) =>
    $"{p.Variant,-28} {p.Concurrency,4} {p.SamplesPerSec,10:F0} {p.P50Ms,8:F2} {p.P99Ms,8:F2} {p.Requests,9} {p.Errors,6} " +
    (key[0] is 'a' or 'b' && !double.IsNaN(meanBatch) ? $"{meanBatch,6:F1}" : $"{"-",6}") +
    (p.FirstError is { } e ? $"  first error: {e}" : "");

// MNIST-like pixels already scaled to [0, 1]: mostly background, a few strokes.
static float[] Pixels(Random rng, int n)
{
    var x = new float[n];
    for (int i = 0; i < n; i++)
        x[i] = rng.NextDouble() < 0.8 ? 0f : MathF.Round((float)rng.NextDouble(), 3);
    return x;
}

// {"inputs":[{"name":"input","shape":[...],"datatype":"FP32","data":[...]}]}: the same bytes go to (a) and (c).
static byte[] JsonBody(float[] x, long[] shape)
{
    var buffer = new ArrayBufferWriter<byte>();
    using (var w = new Utf8JsonWriter(buffer))
    {
        w.WriteStartObject();
        w.WriteStartArray("inputs");
        w.WriteStartObject();
        w.WriteString("name", BenchModel.Input);
        w.WriteStartArray("shape");
        foreach (var d in shape)
            w.WriteNumberValue(d);
        w.WriteEndArray();
        w.WriteString("datatype", "FP32");
        w.WriteStartArray("data");
        foreach (var v in x)
            w.WriteNumberValue(v);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }
    return buffer.WrittenSpan.ToArray();
}

// Binary tensor data extension: JSON header (Inference-Header-Content-Length bytes), then the raw FP32 input;
// binary_data_output asks for the outputs in binary too.
static PreparedRequest BinaryRequest(Uri uri, float[] x, long[] shape)
{
    var raw = MemoryMarshal.AsBytes(x.AsSpan()).ToArray();
    var header = Encoding.UTF8.GetBytes(
        $"{{\"inputs\":[{{\"name\":\"{BenchModel.Input}\",\"shape\":[{string.Join(',', shape)}],\"datatype\":\"FP32\",\"parameters\":{{\"binary_data_size\":{raw.Length}}}}}]," +
        "\"parameters\":{\"binary_data_output\":true}}");
    return new PreparedRequest(uri, [.. header, .. raw], "application/octet-stream",
        [new(V2Codec.HeaderLengthHeader, header.Length.ToString(CultureInfo.InvariantCulture))]);
}

// (d): each of C threads calls Run on the one shared session, batch 64 per call, no HTTP.
static async Task<Point> RawAsync(InferenceSession session, BenchModel m, float[][] batches, int concurrency, TimeSpan warmup, TimeSpan duration)
{
    var owned = new System.Collections.Concurrent.ConcurrentBag<IDisposable>();
    try
    {
        return await LoadGenerator.RunAsync($"(d) raw ORT, {BinaryBatch}/call", concurrency, BinaryBatch, warmup, duration, worker =>
    {
        var input = OrtValue.CreateTensorValueFromMemory(batches[worker % batches.Length], m.BatchShape(BinaryBatch));
        var options = new RunOptions();
        owned.Add(input);
        owned.Add(options);
        string[] inputs = [BenchModel.Input], outputs = [BenchModel.Output];
        OrtValue[] values = [input];
        return () =>
        {
            using var r = session.Run(options, inputs, values, outputs);
            if (r[0].GetTensorDataAsSpan<float>().Length != BinaryBatch * m.OutputSize)
                throw new InvalidOperationException("raw ORT returned a wrong output size");
            return ValueTask.CompletedTask;
        };
    }, dedicatedThreads: true);
    }
    finally
    {
        foreach (var d in owned)
            d.Dispose();
    }
}

static float[] RunRaw(InferenceSession session, float[] x, long[] shape)
{
    using var value = OrtValue.CreateTensorValueFromMemory(x, shape);
    using var options = new RunOptions();
    using var r = session.Run(options, [BenchModel.Input], [value], [BenchModel.Output]);
    return r[0].GetTensorDataAsSpan<float>().ToArray();
}

static async Task CheckAsync(BenchModel m, InferenceSession raw, HttpClient http, PreparedRequest v2Json, PreparedRequest baseJson, PreparedRequest v2Binary, float[] single, float[] batch)
{
    var expected1 = RunRaw(raw, single, m.BatchShape(1));
    var expected64 = RunRaw(raw, batch, m.BatchShape(BinaryBatch));

    using (var doc = JsonDocument.Parse(await LoadGenerator.SendAsync(http, v2Json)))
        Compare("(a)", expected1, doc.RootElement.GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray());
    using (var doc = JsonDocument.Parse(await LoadGenerator.SendAsync(http, baseJson)))
        Compare("(c)", expected1, doc.RootElement.GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray());

    using var message = new HttpRequestMessage(HttpMethod.Post, v2Binary.Uri) { Content = new ByteArrayContent(v2Binary.Body) };
    message.Content.Headers.ContentType = new("application/octet-stream");
    message.Headers.Add(V2Codec.HeaderLengthHeader, v2Binary.Headers[0].Value);
    using var response = await http.SendAsync(message);
    var body = await response.Content.ReadAsByteArrayAsync();
    if (!response.IsSuccessStatusCode || !response.Headers.TryGetValues(V2Codec.HeaderLengthHeader, out var lengths))
        throw new InvalidOperationException($"(b) for {m.Name} answered {(int)response.StatusCode} without {V2Codec.HeaderLengthHeader}: {Encoding.UTF8.GetString(body)}");
    int headerLength = int.Parse(lengths.First(), CultureInfo.InvariantCulture);
    Compare("(b)", expected64, MemoryMarshal.Cast<byte, float>(body.AsSpan(headerLength)).ToArray());

    void Compare(string variant, float[] expected, float[] actual)
    {
        if (actual.Length != expected.Length)
            throw new InvalidOperationException($"{variant} for {m.Name} returned {actual.Length} values, ORT {expected.Length}.");
        for (int i = 0; i < expected.Length; i++)
            if (MathF.Abs(actual[i] - expected[i]) > 1e-4f * (1 + MathF.Abs(expected[i])))
                throw new InvalidOperationException($"{variant} for {m.Name} differs from ORT at {i}: {actual[i]} vs {expected[i]}.");
    }
}

/// <summary>Mean instances per ORT call of the host's batcher, per model, from its mlf.inference.batch_size histogram.</summary>
internal sealed class BatchSizeListener : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, (long Sum, long Count)> _stats = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public BatchSizeListener()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ServingMetrics.MeterName && instrument.Name == "mlf.inference.batch_size")
                listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string model = "";
            foreach (var t in tags)
                if (t.Key == "model")
                    model = t.Value as string ?? "";
            lock (_lock)
            {
                var s = _stats.GetValueOrDefault(model);
                _stats[model] = (s.Sum + value, s.Count + 1);
            }
        });
        _listener.Start();
    }

    public void Reset()
    {
        lock (_lock)
            _stats.Clear();
    }

    public double Mean(string model)
    {
        lock (_lock)
            return _stats.TryGetValue(model, out var s) && s.Count > 0 ? (double)s.Sum / s.Count : double.NaN;
    }

    public void Dispose() => _listener.Dispose();
}
