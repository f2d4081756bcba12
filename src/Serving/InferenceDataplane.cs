using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving;

/// <summary>
/// The transport-free inference dataplane (kserve's <c>dataplane.py</c>): server and model metadata, health and
/// inference over <see cref="ModelRepository"/>. HTTP adapters (src/Api/Inference) only decode, call and encode.
/// </summary>
public sealed class InferenceDataplane
{
    /// <summary>Platform reported in model metadata (KServe's name for ONNX Runtime models).</summary>
    public const string Platform = "onnxruntime_onnx";

    /// <summary>
    /// Request parameter saying the inputs are already transformed (e.g. normalized by the client), so the
    /// model's stored transform is skipped: <c>"parameters": {"transformed": true}</c>.
    /// </summary>
    public const string TransformedParameter = "transformed";

    private readonly ModelRepository _repository;
    private readonly ServingMetrics _metrics;
    private readonly ILogger _logger;
    private readonly PredictionCache _cache;
    private readonly PayloadLogger? _payloads;

    public InferenceDataplane(ModelRepository repository, ServingOptions options, ServingMetrics metrics, ILogger<InferenceDataplane>? logger = null,
        PayloadLogger? payloads = null)
    {
        _repository = repository;
        Options = options;
        _metrics = metrics;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _cache = new PredictionCache(options.PredictionCache);
        _payloads = payloads is { Enabled: true } ? payloads : null;
    }

    /// <summary>Entries in the prediction cache (for tests and diagnostics).</summary>
    public int CachedPredictions => _cache.Count;

    public ServingOptions Options { get; }

    /// <summary>True when the payload log takes requests' raw JSON bodies (logging on, inputs not redacted, some sampled).</summary>
    public bool KeepsRawRequests => _payloads is { KeepsRawRequests: true };
    public ModelRepository Repository => _repository;

    public ServerMetadata GetServerMetadata() =>
        new(Options.ServerName, Options.ServerVersion, ["binary_tensor_data", "model_repository", "v1_predict"]);

    /// <summary>The process is up and able to answer.</summary>
    public bool IsLive() => true;

    /// <summary>Ready when every preloaded model is loaded; starts loading those that are not.</summary>
    public async Task<bool> IsServerReadyAsync(CancellationToken cancellationToken = default)
    {
        foreach (var model in Options.PreloadModels)
        {
            try
            {
                if (!await IsModelReadyAsync(model, null, cancellationToken).ConfigureAwait(false))
                    return false;
            }
            catch (InferenceError e)
            {
                _logger.LogWarning("Preloaded model {Model} is not available: {Message}", model, e.Message);
                return false;
            }
        }
        return true;
    }

    /// <summary>True when the resolved version has a live session; 404 (<see cref="InferenceError"/>) when unknown.</summary>
    public async Task<bool> IsModelReadyAsync(string model, string? version, CancellationToken cancellationToken = default)
    {
        var resolved = await _repository.ResolveAsync(model, version, cancellationToken).ConfigureAwait(false);
        return _repository.IsReady(resolved.Version);
    }

    public async Task<ModelMetadata> GetModelMetadataAsync(string model, string? version, CancellationToken cancellationToken = default)
    {
        var resolved = await _repository.ResolveAsync(model, version, cancellationToken).ConfigureAwait(false);
        using var lease = await _repository.AcquireAsync(resolved.Version, cancellationToken).ConfigureAwait(false);
        var m = lease.Model;
        var parameters = new Dictionary<string, string>
        {
            ["execution_provider"] = m.Provider,
            ["version"] = m.Record.Version.ToString(CultureInfo.InvariantCulture),
            ["sha256"] = m.Record.Sha256,
            ["batching"] = m.Batchable ? "dynamic" : "none",
            ["transform"] = m.Record.Transform is null ? "none" : m.Record.Transform.Kind,
        };
        if (resolved.Alias is not null)
            parameters["alias"] = resolved.Alias;
        return new ModelMetadata(m.Record.Name, [m.Record.Version.ToString(CultureInfo.InvariantCulture)], Platform, m.Inputs, m.Outputs, parameters);
    }

    /// <summary>
    /// Runs inference: resolve (404), lease the session (503 while not ready), validate and transform (400),
    /// then run through the model's batcher. <paramref name="protocol"/> only labels metrics.
    /// </summary>
    public async Task<InferResponse> InferAsync(string model, string? version, InferRequest request, string protocol = "v2", CancellationToken cancellationToken = default)
    {
        long started = Stopwatch.GetTimestamp();
        string modelTag = model, versionTag = version ?? "";
        int status = 200;
        try
        {
            var resolved = await _repository.ResolveAsync(model, version, cancellationToken).ConfigureAwait(false);
            modelTag = resolved.Version.Name;
            versionTag = resolved.Version.Version.ToString(CultureInfo.InvariantCulture);
            bool transformed = request.Flag(TransformedParameter);
            var outputs = await CachedInferAsync(resolved.Version, request, transformed, cancellationToken).ConfigureAwait(false);
            var response = new InferResponse
            {
                ModelName = resolved.Version.Name,
                ModelVersion = versionTag,
                Id = request.Id,
                Outputs = outputs,
            };
            _payloads?.Offer(modelTag, versionTag, Stopwatch.GetElapsedTime(started).TotalMilliseconds, request, response);
            return response;
        }
        catch (InferenceError e)
        {
            status = e.StatusCode;
            throw;
        }
        catch (OperationCanceledException)
        {
            status = 499; // client went away: nginx's convention, so it is not counted as a server error
            throw;
        }
        catch
        {
            status = 500;
            throw;
        }
        finally
        {
            var tags = new TagList { { "model", modelTag }, { "version", versionTag }, { "protocol", protocol }, { "status", status } };
            _metrics.Requests.Add(1, tags);
            _metrics.Duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
        }
    }

    /// <summary>
    /// Answers from the prediction cache when the same inputs were run on this version before; otherwise leases the
    /// session, validates and transforms (400), runs through the batcher, and caches the outputs. A hit needs no
    /// lease: only requests that ran successfully are cached, so an equal request is valid too.
    /// </summary>
    private async Task<IReadOnlyList<InferTensor>> CachedInferAsync(Core.Registry.ModelVersion version, InferRequest request, bool transformed, CancellationToken ct)
    {
        PredictionCache.Key? key = null;
        if (Options.CacheEnabledFor(version.Name))
        {
            key = PredictionCache.KeyFor(version, request, transformed);
            var tags = new TagList { { "model", version.Name }, { "version", version.Version.ToString(CultureInfo.InvariantCulture) } };
            if (_cache.TryGet(key.Value, out var hit))
            {
                _metrics.CacheHits.Add(1, tags);
                return hit;
            }
            _metrics.CacheMisses.Add(1, tags);
        }
        using var lease = await _repository.AcquireAsync(version, ct).ConfigureAwait(false);
        var prepared = lease.Model.Prepare(request, transformed);
        var outputs = await lease.Model.InferAsync(prepared, ct).ConfigureAwait(false);
        if (key is { } k)
            _cache.Add(k, outputs);
        return outputs;
    }

    /// <summary>Loads <see cref="ServingOptions.PreloadModels"/> so the first requests do not pay for it.</summary>
    public async Task PreloadAsync(CancellationToken cancellationToken = default)
    {
        foreach (var model in Options.PreloadModels)
        {
            try
            {
                var resolved = await _repository.ResolveAsync(model, null, cancellationToken).ConfigureAwait(false);
                using var _ = await _repository.AcquireAsync(resolved.Version, cancellationToken).ConfigureAwait(false);
            }
            catch (InferenceError e)
            {
                _logger.LogWarning("Could not preload {Model}: {Message}", model, e.Message);
            }
        }
    }
}
