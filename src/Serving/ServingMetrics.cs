using System.Diagnostics.Metrics;

namespace MlFunctions.Serving;

/// <summary>
/// The serving meter. Hosts subscribe with OpenTelemetry (<c>AddMeter(ServingMetrics.MeterName)</c>) and export
/// to Prometheus, where the dots become underscores (mlf_inference_requests_total, ...).
/// </summary>
public sealed class ServingMetrics : IDisposable
{
    public const string MeterName = "MlFunctions.Serving";

    private readonly Meter _meter;

    public ServingMetrics(IMeterFactory? factory = null)
    {
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName, "1.0.0");
        Requests = _meter.CreateCounter<long>("mlf.inference.requests", "{request}", "Inference requests, by model, version, protocol and HTTP-equivalent status.");
        Duration = _meter.CreateHistogram<double>("mlf.inference.duration", "s", "Inference latency inside the dataplane, queueing included.");
        BatchSize = _meter.CreateHistogram<long>("mlf.inference.batch_size", "{instance}", "Instances per ONNX Runtime call made by the dynamic batcher.");
        CacheHits = _meter.CreateCounter<long>("mlf.prediction_cache.hits", "{request}", "Requests answered from the prediction cache, by model and version.");
        CacheMisses = _meter.CreateCounter<long>("mlf.prediction_cache.misses", "{request}", "Cacheable requests that ran the model, by model and version.");
        PayloadsLogged = _meter.CreateCounter<long>("mlf.payload_log.records", "{record}", "Request/response pairs written to the payload log.");
        PayloadsDropped = _meter.CreateCounter<long>("mlf.payload_log.dropped", "{record}", "Sampled pairs dropped: buffer full (reason=buffer_full) or write failed (reason=write_failed).");
        ModelLoads = _meter.CreateCounter<long>("mlf.model.loads", "{load}", "Model loads, by outcome and execution provider.");
    }

    public Counter<long> Requests { get; }
    public Histogram<double> Duration { get; }
    public Histogram<long> BatchSize { get; }
    public Counter<long> ModelLoads { get; }
    public Counter<long> CacheHits { get; }
    public Counter<long> CacheMisses { get; }
    public Counter<long> PayloadsLogged { get; }
    public Counter<long> PayloadsDropped { get; }

    public void Dispose() => _meter.Dispose();
}
