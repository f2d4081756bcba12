using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Transforms;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving.Tests;

public sealed class DataplaneTests
{
    private static float[] Row(int i, int width = 4) => Enumerable.Range(0, width).Select(j => (float)Math.Sin(i * 0.37 + j * 1.3) * 3).ToArray();

    private static InferRequest MlpRequest(float[] data, int rows = 1, IReadOnlyDictionary<string, JsonElement>? parameters = null) => new()
    {
        Inputs = [new InferTensor("input", Datatype.FP32, [rows, data.Length / rows], data)],
        Parameters = parameters,
    };

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f * Math.Max(1f, Math.Abs(expected[i])), $"element {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public async Task Endpoint_outputs_equal_direct_onnxruntime_outputs_json_binary_and_v1()
    {
        await using var h = new Harness();
        var onnx = OnnxModels.Mlp(seed: 7);
        await h.RegisterAsync("mlp", onnx);
        var data = Enumerable.Range(0, 5).SelectMany(i => Row(i)).ToArray();
        var expected = OnnxModels.RunDirect(onnx, "input", data, [5, 4], "output");

        // JSON
        var json = JsonSerializer.Serialize(new { inputs = new[] { new { name = "input", shape = new[] { 5, 4 }, datatype = "FP32", data } } });
        var r = await h.SendAsync("POST", "v2/models/mlp/infer", json);
        Assert.Equal(200, r.Status);
        using (var doc = r.Json())
        {
            var output = doc.RootElement.GetProperty("outputs")[0];
            Assert.Equal([5L, 3L], output.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
            AssertClose(expected, output.GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray());
        }

        // Binary tensor data extension, both ways
        var header = Encoding.UTF8.GetBytes("""{"inputs":[{"name":"input","shape":[5,4],"datatype":"FP32","parameters":{"binary_data_size":80}}],"parameters":{"binary_data_output":true}}""");
        var body = header.Concat(V2Codec.EncodeBinary(data)).ToArray();
        var rb = await h.SendAsync("POST", "v2/models/mlp/infer", headers: new Dictionary<string, string> { [V2Codec.HeaderLengthHeader] = header.Length.ToString() }, rawBody: body);
        Assert.Equal(200, rb.Status);
        int jsonLength = int.Parse(rb.Headers[V2Codec.HeaderLengthHeader]);
        using (var doc = JsonDocument.Parse(rb.Body.AsMemory(0, jsonLength)))
        {
            var output = doc.RootElement.GetProperty("outputs")[0];
            Assert.Equal(60, output.GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
            Assert.False(output.TryGetProperty("data", out _));
        }
        var binaryOut = (float[])V2Codec.DecodeBinary(rb.Body.AsSpan(jsonLength), Datatype.FP32, 15, "output");
        AssertClose(expected, binaryOut);

        // V1
        var v1 = await h.SendAsync("POST", "v1/models/mlp:predict", JsonSerializer.Serialize(new { instances = Enumerable.Range(0, 5).Select(i => Row(i)) }));
        Assert.Equal(200, v1.Status);
        using (var doc = v1.Json())
        {
            var predictions = doc.RootElement.GetProperty("predictions").EnumerateArray().SelectMany(p => p.EnumerateArray().Select(e => e.GetSingle())).ToArray();
            AssertClose(expected, predictions);
        }
    }

    [Fact]
    public async Task Stored_transform_is_applied_unless_the_request_says_transformed()
    {
        await using var h = new Harness();
        var onnx = OnnxModels.Mlp(seed: 3);
        var transform = new TransformSpec { Scale = 1f / 255f, Mean = [0.5f], Std = [0.25f] };
        await h.RegisterAsync("t", onnx, transform: transform);
        float[] raw = [0, 51, 128, 255];
        var transformed = (float[])raw.Clone();
        transform.Apply(transformed);

        var served = await h.Dataplane.InferAsync("t", null, MlpRequest((float[])raw.Clone()));
        AssertClose(OnnxModels.RunDirect(onnx, "input", transformed, [1, 4], "output"), (float[])served.Outputs[0].Data);

        using var flag = JsonDocument.Parse("true");
        var skip = await h.Dataplane.InferAsync("t", null, MlpRequest((float[])raw.Clone(), parameters: new Dictionary<string, JsonElement> { [InferenceDataplane.TransformedParameter] = flag.RootElement.Clone() }));
        AssertClose(OnnxModels.RunDirect(onnx, "input", raw, [1, 4], "output"), (float[])skip.Outputs[0].Data);
    }

    [Fact]
    public async Task Two_hundred_concurrent_requests_each_get_their_own_answer_from_real_batches()
    {
        await using var h = new Harness(o => o.DefaultBatching = new BatchingOptions { MaxBatchSize = 32, MaxLatency = TimeSpan.FromMilliseconds(30) });
        var onnx = OnnxModels.Mlp(seed: 11);
        string model = "batched-" + Guid.NewGuid().ToString("N")[..8];
        await h.RegisterAsync(model, onnx);
        var sizes = new ConcurrentBag<long>();
        using var listener = BatchSizeListener(model, sizes);
        await h.Dataplane.GetModelMetadataAsync(model, null); // load first, so the burst meets a ready model

        // Requests of 1..3 rows, all distinct, fired together.
        var inputs = Enumerable.Range(0, 200).Select(i => Enumerable.Range(0, 1 + i % 3).SelectMany(k => Row(i * 10 + k)).ToArray()).ToArray();
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = inputs.Select(data => Task.Run(async () =>
        {
            await start.Task; // not a blocking wait: 200 blocked pool threads would starve the batcher itself
            return await h.Dataplane.InferAsync(model, null, MlpRequest(data, data.Length / 4));
        })).ToArray();
        start.SetResult();
        var responses = await Task.WhenAll(tasks);

        for (int i = 0; i < inputs.Length; i++)
        {
            int rows = inputs[i].Length / 4;
            Assert.Equal([rows, 3L], responses[i].Outputs[0].Shape);
            AssertClose(OnnxModels.RunDirect(onnx, "input", inputs[i], [rows, 4], "output"), (float[])responses[i].Outputs[0].Data);
        }
        Assert.Equal(inputs.Sum(d => d.Length / 4), sizes.Sum());
        Assert.True(sizes.Max() > 1, $"no batch formed: sizes {string.Join(",", sizes)}");
        Assert.True(sizes.Count < 200, $"every request ran alone: {sizes.Count} calls");
        Assert.All(sizes, s => Assert.True(s <= 32 + 2, $"batch of {s} exceeds maxBatchSize")); // a single request of up to 3 rows may open a batch
    }

    [Fact]
    public async Task Dispatch_when_idle_sends_a_lone_request_without_waiting_for_max_latency()
    {
        await using var h = new Harness(o => o.DefaultBatching = new BatchingOptions { MaxBatchSize = 32, MaxLatency = TimeSpan.FromSeconds(5), DispatchWhenIdle = true });
        await h.RegisterAsync("idle", OnnxModels.Mlp());
        await h.Dataplane.GetModelMetadataAsync("idle", null);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await h.Dataplane.InferAsync("idle", null, MlpRequest(Row(1)));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"took {sw.Elapsed}");
    }

    [Fact]
    public async Task Invalid_requests_fail_alone_and_never_reach_the_batch()
    {
        await using var h = new Harness(o => o.DefaultBatching = new BatchingOptions { MaxBatchSize = 64, MaxLatency = TimeSpan.FromMilliseconds(50) });
        var onnx = OnnxModels.Mlp(seed: 4);
        await h.RegisterAsync("mixed", onnx);
        await h.Dataplane.GetModelMetadataAsync("mixed", null);
        var tasks = Enumerable.Range(0, 40).Select(i => Task.Run(async () =>
        {
            var request = i % 5 == 0
                ? new InferRequest { Inputs = [new InferTensor("input", Datatype.FP32, [1, 5], new float[5])] } // wrong width
                : MlpRequest(Row(i));
            try { return (i, await h.Dataplane.InferAsync("mixed", null, request), (InferenceError?)null); }
            catch (InferenceError e) { return (i, (InferResponse?)null, e); }
        })).ToArray();
        foreach (var (i, response, error) in await Task.WhenAll(tasks))
        {
            if (i % 5 == 0)
            {
                Assert.Equal(InferenceErrorKind.InvalidInput, error!.Kind);
            }
            else
            {
                Assert.Null(error);
                AssertClose(OnnxModels.RunDirect(onnx, "input", Row(i), [1, 4], "output"), (float[])response!.Outputs[0].Data);
            }
        }
    }

    [Fact]
    public async Task A_request_that_breaks_the_model_fails_only_itself()
    {
        await using var h = new Harness(o => o.DefaultBatching = new BatchingOptions { MaxBatchSize = 64, MaxLatency = TimeSpan.FromMilliseconds(200) });
        await h.RegisterAsync("lookup", OnnxModels.Lookup());
        await h.Dataplane.GetModelMetadataAsync("lookup", null);
        var sizes = new ConcurrentBag<long>();
        using var listener = BatchSizeListener("lookup", sizes);
        long[] indices = [0, 1, 2, 3, 99, 4, 5, 6, 7, 8, 9]; // 99 is out of range: Gather fails at run time
        var tasks = indices.Select(idx => Task.Run(async () =>
        {
            var request = new InferRequest { Inputs = [new InferTensor("idx", Datatype.INT64, [1, 1], new[] { idx })] };
            try { return (idx, await h.Dataplane.InferAsync("lookup", null, request), (InferenceError?)null); }
            catch (InferenceError e) { return (idx, (InferResponse?)null, e); }
        })).ToArray();
        foreach (var (idx, response, error) in await Task.WhenAll(tasks))
        {
            if (idx == 99)
            {
                Assert.Equal(InferenceErrorKind.Internal, error!.Kind);
                Assert.Equal(500, error.StatusCode);
            }
            else
            {
                Assert.Null(error);
                Assert.Equal(new[] { idx * 2f, idx * 2f + 1 }, (float[])response!.Outputs[0].Data);
            }
        }
        Assert.Contains(h.RepositoryLog.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("re-running them one by one"));
    }

    [Fact]
    public async Task A_fixed_batch_model_is_served_without_batching()
    {
        await using var h = new Harness();
        await h.RegisterAsync("fixed", OnnxModels.FixedBatchMlp());
        var meta = await h.Dataplane.GetModelMetadataAsync("fixed", null);
        Assert.Equal("none", meta.Parameters["batching"]);
        var r = await h.Dataplane.InferAsync("fixed", null, new InferRequest { Inputs = [new InferTensor("input", Datatype.FP32, [1, 2], new[] { -1f, 2f })] });
        Assert.Equal(new[] { 0f, 2f }, (float[])r.Outputs[0].Data);
    }

    [Fact]
    public async Task Sha256_mismatch_is_refused_logged_and_never_reaches_onnxruntime()
    {
        await using var h = new Harness();
        var onnx = OnnxModels.Mlp();
        await h.RegisterAsync("tampered", onnx, sha256: OnnxModels.Sha256(OnnxModels.Mlp(seed: 42)));
        var e = await Assert.ThrowsAsync<InferenceError>(() => h.Dataplane.InferAsync("tampered", null, MlpRequest(Row(0))));
        Assert.Equal(InferenceErrorKind.NotReady, e.Kind);
        Assert.Equal(503, e.StatusCode);
        Assert.Contains("sha256 mismatch", e.Message);
        Assert.Equal(0, h.Sessions.Created);
        Assert.Contains(h.RepositoryLog.Entries, x => x.Level == LogLevel.Error && x.Message.Contains("Refusing tampered v1") && x.Message.Contains(OnnxModels.Sha256(onnx)));
        Assert.False(await h.Dataplane.IsModelReadyAsync("tampered", null));
    }

    /// <summary>Stands in for CUDA: appending a provider ONNX Runtime does not know throws the same OnnxRuntimeException.</summary>
    private sealed class BrokenCudaProvider : IExecutionProvider
    {
        public string Name => "CUDAExecutionProvider";
        public void Append(SessionOptions options) => options.AppendExecutionProvider("NoSuchExecutionProvider");
    }

    [Fact]
    public async Task Falls_back_to_cpu_when_the_cuda_provider_throws_through_the_seam()
    {
        var log = new ListLogger<OrtSessionFactory>();
        var factory = new OrtSessionFactory([new BrokenCudaProvider(), new CpuExecutionProvider()], 1, log);
        await using var h = new Harness(sessions: factory);
        var onnx = OnnxModels.Mlp();
        await h.RegisterAsync("gpu", onnx);
        var meta = await h.Dataplane.GetModelMetadataAsync("gpu", null);
        Assert.Equal("CPUExecutionProvider", meta.Parameters["execution_provider"]);
        Assert.Contains(log.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("CUDAExecutionProvider is unavailable"));
        var r = await h.Dataplane.InferAsync("gpu", null, MlpRequest(Row(2)));
        AssertClose(OnnxModels.RunDirect(onnx, "input", Row(2), [1, 4], "output"), (float[])r.Outputs[0].Data);
    }

    [Fact]
    public async Task Auto_uses_the_real_cuda_provider_when_it_loads_and_cpu_otherwise()
    {
        bool cudaLoads;
        try
        {
            using var probe = new SessionOptions();
            probe.AppendExecutionProvider_CUDA(0);
            cudaLoads = true;
        }
        catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            // The GPU package without CUDA libraries throws OnnxRuntimeException ("Failed to load shared
            // library"); the CPU package lacks the entry point altogether. Either way: no CUDA here.
            cudaLoads = false;
        }
        var log = new ListLogger<OrtSessionFactory>();
        var factory = new OrtSessionFactory(OrtSessionFactory.ProvidersFor(new ServingOptions { ExecutionProvider = ExecutionProviderPreference.Auto }), 1, log);
        await using var h = new Harness(sessions: factory);
        await h.RegisterAsync("auto", OnnxModels.Mlp());
        var meta = await h.Dataplane.GetModelMetadataAsync("auto", null);
        Assert.Equal(cudaLoads ? "CUDAExecutionProvider" : "CPUExecutionProvider", meta.Parameters["execution_provider"]);
        if (!cudaLoads)
            Assert.Contains(log.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("falling back to CPUExecutionProvider"));
    }

    [Fact]
    public async Task Cuda_only_preference_does_not_fall_back_and_reports_not_ready()
    {
        var factory = new OrtSessionFactory([new BrokenCudaProvider()], 1);
        await using var h = new Harness(sessions: factory);
        await h.RegisterAsync("gpu-only", OnnxModels.Mlp());
        var e = await Assert.ThrowsAsync<InferenceError>(() => h.Dataplane.InferAsync("gpu-only", null, MlpRequest(Row(0))));
        Assert.Equal(InferenceErrorKind.NotReady, e.Kind);
    }

    [Fact]
    public async Task Alias_moves_are_picked_up_without_restart()
    {
        await using var h = new Harness(o => o.AliasRefreshInterval = TimeSpan.FromMilliseconds(100));
        var v1 = OnnxModels.Mlp(seed: 1);
        var v2 = OnnxModels.Mlp(seed: 2);
        await h.RegisterAsync("moving", v1);
        await h.RegisterAsync("moving", v2, alias: null);
        var before = await h.Dataplane.InferAsync("moving", null, MlpRequest(Row(3)));
        Assert.Equal("1", before.ModelVersion);
        AssertClose(OnnxModels.RunDirect(v1, "input", Row(3), [1, 4], "output"), (float[])before.Outputs[0].Data);

        // Another process moves the alias in the registry: this server must follow within the refresh interval.
        await h.Registry.SetAliasAsync("moving", RegistryNames.Champion, 2);
        InferResponse after;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        do
        {
            await Task.Delay(50);
            after = await h.Dataplane.InferAsync("moving", null, MlpRequest(Row(3)));
        }
        while (after.ModelVersion != "2" && DateTime.UtcNow < deadline);
        Assert.Equal("2", after.ModelVersion);
        AssertClose(OnnxModels.RunDirect(v2, "input", Row(3), [1, 4], "output"), (float[])after.Outputs[0].Data);

        // A move through this server's own registry route is served at once.
        var put = await h.SendAsync("PUT", "api/registry/models/moving/aliases/champion", "{\"version\":1}");
        Assert.Equal(200, put.Status);
        Assert.Equal("1", (await h.Dataplane.InferAsync("moving", null, MlpRequest(Row(3)))).ModelVersion);
    }

    [Fact]
    public async Task Least_recently_used_sessions_are_unloaded_beyond_the_memory_budget()
    {
        var a = OnnxModels.Mlp(seed: 1);
        await using var h = new Harness(o =>
        {
            o.MemoryBudgetBytes = a.Length + a.Length / 2; // room for one model
            o.PredictionCache = new PredictionCacheOptions { Enabled = false }; // the repeated input must reach a session
        });
        await h.RegisterAsync("a", a);
        await h.RegisterAsync("b", OnnxModels.Mlp(seed: 2));
        await h.Dataplane.InferAsync("a", null, MlpRequest(Row(0)));
        await h.Dataplane.InferAsync("b", null, MlpRequest(Row(0)));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (h.Repository.Loaded.Count > 1 && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.Equal(["b"], h.Repository.Loaded.Select(l => l.Name));

        // The unloaded model comes back on demand.
        var again = await h.Dataplane.InferAsync("a", null, MlpRequest(Row(0)));
        AssertClose(OnnxModels.RunDirect(a, "input", Row(0), [1, 4], "output"), (float[])again.Outputs[0].Data);
        Assert.Equal(3, h.Sessions.Created);
    }

    [Fact]
    public async Task Server_ready_waits_for_preloaded_models()
    {
        await using var h = new Harness(o =>
        {
            o.PreloadModels.Add("pre");
            o.ModelLoadWait = TimeSpan.FromMilliseconds(100);
        });
        var v = await h.RegisterAsync("pre", OnnxModels.Mlp());
        var gate = new TaskCompletionSource();
        ((MemoryArtifactStore)h.Artifacts).Gates[v.ArtifactUri] = gate;
        Assert.Equal(503, (await h.SendAsync("GET", "v2/health/ready")).Status);
        gate.SetResult();
        await h.Dataplane.PreloadAsync();
        Assert.Equal(200, (await h.SendAsync("GET", "v2/health/ready")).Status);
    }

    [Fact]
    public async Task Metrics_count_requests_with_status()
    {
        await using var h = new Harness();
        string model = "metered-" + Guid.NewGuid().ToString("N")[..8];
        await h.RegisterAsync(model, OnnxModels.Mlp());
        var statuses = new ConcurrentBag<int>();
        var durations = new ConcurrentBag<double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (i, l) =>
        {
            if (i.Meter.Name == ServingMetrics.MeterName && i.Name is "mlf.inference.requests" or "mlf.inference.duration")
                l.EnableMeasurementEvents(i);
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) =>
        {
            if ((string?)Tag(tags, "model") == model)
                statuses.Add((int)Tag(tags, "status")!);
        });
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) =>
        {
            if ((string?)Tag(tags, "model") == model)
                durations.Add(v);
        });
        listener.Start();
        await h.Dataplane.InferAsync(model, null, MlpRequest(Row(0)));
        await Assert.ThrowsAsync<InferenceError>(() => h.Dataplane.InferAsync(model, null, MlpRequest(new float[3])));
        Assert.Equal([200, 400], statuses.Order());
        Assert.Equal(2, durations.Count);
    }

    private static object? Tag(ReadOnlySpan<KeyValuePair<string, object?>> tags, string key)
    {
        foreach (var t in tags)
            if (t.Key == key)
                return t.Value;
        return null;
    }

    private static MeterListener BatchSizeListener(string model, ConcurrentBag<long> sizes)
    {
        var listener = new MeterListener();
        listener.InstrumentPublished = (i, l) =>
        {
            if (i.Meter.Name == ServingMetrics.MeterName && i.Name == "mlf.inference.batch_size")
                l.EnableMeasurementEvents(i);
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) =>
        {
            if ((string?)Tag(tags, "model") == model)
                sizes.Add(v);
        });
        listener.Start();
        return listener;
    }
}
