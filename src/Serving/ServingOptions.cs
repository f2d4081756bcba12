namespace MlFunctions.Serving;

/// <summary>Which execution providers to try when creating a session.</summary>
public enum ExecutionProviderPreference
{
    /// <summary>CUDA when it loads, else CPU (the production default).</summary>
    Auto,
    /// <summary>CPU only.</summary>
    Cpu,
    /// <summary>CUDA or fail: for GPU deployments that must not silently run on CPU.</summary>
    Cuda,
}

/// <summary>
/// Dynamic batching for one model (KServe batcher semantics): requests queue, and a batch is sent when it holds
/// <see cref="MaxBatchSize"/> instances (rows along dimension 0) or when its first request has waited
/// <see cref="MaxLatency"/>.
/// </summary>
public sealed record BatchingOptions
{
    public bool Enabled { get; init; } = true;
    public int MaxBatchSize { get; init; } = 32;
    public TimeSpan MaxLatency { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// When true, a batch is also sent as soon as a batch slot (<see cref="MaxConcurrentBatches"/>) is free (Triton's
    /// dynamic batcher with zero queue delay): no idle wait at low load, large batches under load. False keeps
    /// strict KServe semantics (wait for size or latency).
    /// </summary>
    public bool DispatchWhenIdle { get; init; }

    /// <summary>
    /// How many batches of one model version may run in ONNX Runtime at the same time. On a CPU host serving
    /// concurrent traffic, one per core with <see cref="ServingOptions.IntraOpNumThreads"/> = 1 measured best
    /// (bench/serving): single-threaded calls leave no spinning intra-op workers to compete with request threads.
    /// </summary>
    public int MaxConcurrentBatches { get; init; } = 1;
}

/// <summary>Server-wide serving options; the hosts bind them from configuration.</summary>
public sealed class ServingOptions
{
    public string ServerName { get; set; } = "mlfunctions";
    public string ServerVersion { get; set; } = "1.0.0";

    /// <summary>Largest request body accepted; larger bodies get 413.</summary>
    public long MaxRequestBodyBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// Budget for loaded models, estimated by ONNX artifact size (weights dominate a session's footprint).
    /// Beyond it the least recently used sessions are unloaded; the most recent one always stays.
    /// </summary>
    public long MemoryBudgetBytes { get; set; } = 2L * 1024 * 1024 * 1024;

    /// <summary>How long an alias resolution is cached: the bound on how stale a moved alias can be.</summary>
    public TimeSpan AliasRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a routing policy is cached: the bound on how stale a policy written by another host can be.</summary>
    public TimeSpan PolicyRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a bandit's learned state is cached for routing. Feedback on this host refreshes it at once; other
    /// hosts' feedback is seen within this bound (1 s: at 100 requests/s a bandit decides on state ≤ 100 feedbacks old).
    /// </summary>
    public TimeSpan PolicyStateRefreshInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How often each host adds its routed requests' counts, server errors and latencies to the policy generation's
    /// statistics blob (what a rollout reads): the bound on how stale a rollout's view of this host is.
    /// </summary>
    public TimeSpan ServingStatsFlushInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a request waits for its model to load before it gets 503.</summary>
    public TimeSpan ModelLoadWait { get; set; } = TimeSpan.FromSeconds(60);

    public ExecutionProviderPreference ExecutionProvider { get; set; } = ExecutionProviderPreference.Auto;
    public int CudaDeviceId { get; set; }

    /// <summary>ONNX Runtime intra-op threads per session; null leaves ORT's default (one per core).</summary>
    public int? IntraOpNumThreads { get; set; }

    public BatchingOptions DefaultBatching { get; set; } = new();

    /// <summary>Per-model batching, keyed by registered model name; overrides <see cref="DefaultBatching"/>.</summary>
    public Dictionary<string, BatchingOptions> ModelBatching { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Model references loaded at start; server readiness waits for them.</summary>
    public List<string> PreloadModels { get; set; } = [];

    /// <summary>The prediction cache (one LRU for the process); <see cref="ModelPredictionCache"/> turns it off per model.</summary>
    public PredictionCacheOptions PredictionCache { get; set; } = new();

    /// <summary>Per-model cache switch, keyed by registered model name (e.g. <c>{"Enabled": false}</c> for a model that samples); only Enabled is read.</summary>
    public Dictionary<string, PredictionCacheOptions> ModelPredictionCache { get; set; } = new(StringComparer.Ordinal);

    public PayloadLoggingOptions PayloadLogging { get; set; } = new();

    public bool CacheEnabledFor(string model) =>
        (ModelPredictionCache.TryGetValue(model, out var c) ? c : PredictionCache).Enabled;

    public BatchingOptions BatchingFor(string model) =>
        ModelBatching.TryGetValue(model, out var b) ? b : DefaultBatching;
}
