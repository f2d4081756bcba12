using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Core.Registry;
using MlFunctions.Serving;
using MlFunctions.Serving.Online;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Api.Inference;

/// <summary>
/// HTTP adapters over <see cref="InferenceDataplane"/> and <see cref="IModelRegistry"/> (kserve's
/// <c>v2_endpoints.py</c>): read route values and body, call the dataplane, write JSON. Errors are
/// <c>{"error": "..."}</c> with 400/404/409/413/503/500. Both hosts map <see cref="InferenceRoutes.All"/> onto these.
/// </summary>
public sealed partial class InferenceHandlers
{
    private static readonly JsonSerializerOptions V2Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private readonly InferenceDataplane _dataplane;
    private readonly IModelRegistry _registry;
    private readonly ILogger _logger;
    private readonly PolicyRouter? _router;

    /// <param name="router">Routing policies and feedback; without it <c>{m}</c> always serves <c>champion</c> and the policy and feedback routes answer 503.</param>
    public InferenceHandlers(InferenceDataplane dataplane, IModelRegistry registry, ILogger<InferenceHandlers>? logger = null, PolicyRouter? router = null)
    {
        _dataplane = dataplane;
        _registry = registry;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _router = router;
    }

    // ---- KServe V2: server ----

    /// <summary>GET v2</summary>
    public Task HandleServerMetadata(HttpContext ctx) => Run(ctx, () => WriteJson(ctx, 200, _dataplane.GetServerMetadata(), V2Json));

    /// <summary>GET v2/health/live</summary>
    public Task HandleLive(HttpContext ctx) => Run(ctx, () => WriteJson(ctx, 200, new { live = _dataplane.IsLive() }, V2Json));

    /// <summary>GET v2/health/ready: 200 when every preloaded model is loaded, else 503.</summary>
    public Task HandleReady(HttpContext ctx) => Run(ctx, async () =>
    {
        if (await _dataplane.IsServerReadyAsync(ctx.RequestAborted))
            await WriteJson(ctx, 200, new { ready = true }, V2Json);
        else
            await WriteError(ctx, 503, "The server is not ready: preloaded models are still loading.");
    });

    // ---- KServe V2: models ----

    /// <summary>GET v2/models/{model} and v2/models/{model}/versions/{version}</summary>
    public Task HandleModelMetadata(HttpContext ctx) => Run(ctx, async () =>
    {
        var metadata = await _dataplane.GetModelMetadataAsync(Route(ctx, "model"), OptionalRoute(ctx, "version"), ctx.RequestAborted);
        await WriteJson(ctx, 200, metadata, V2Json);
    });

    /// <summary>GET v2/models/{model}[/versions/{version}]/ready: 200 when loaded, 503 while loading (loading is started).</summary>
    public Task HandleModelReady(HttpContext ctx) => Run(ctx, async () =>
    {
        string model = Route(ctx, "model");
        if (await _dataplane.IsModelReadyAsync(model, OptionalRoute(ctx, "version"), ctx.RequestAborted))
            await WriteJson(ctx, 200, new { name = model, ready = true }, V2Json);
        else
            await WriteError(ctx, 503, $"Model '{model}' is not ready yet: it is loading.");
    });

    /// <summary>POST v2/models/{model}[/versions/{version}]/infer, JSON or binary tensor data.</summary>
    public Task HandleInfer(HttpContext ctx) => Run(ctx, async () =>
    {
        InferRequest request;
        using (var body = await ReadBodyAsync(ctx))
        {
            int? headerLength = null;
            if (ctx.Request.Headers.TryGetValue(V2Codec.HeaderLengthHeader, out var h) && h.Count > 0)
            {
                if (!int.TryParse(h[0], NumberStyles.None, CultureInfo.InvariantCulture, out int len))
                    throw InferenceError.Invalid($"{V2Codec.HeaderLengthHeader} must be a non-negative integer.");
                headerLength = len;
            }
            request = V2Codec.ParseRequest(body.Memory, headerLength); // copies out what it keeps: the buffer goes back now
            if (headerLength is null && _dataplane.KeepsRawRequests)
                request = new InferRequest { Id = request.Id, Parameters = request.Parameters, Inputs = request.Inputs, Outputs = request.Outputs, RawJson = body.Memory.ToArray() };
        }
        var response = await RoutedInferAsync(ctx, Route(ctx, "model"), OptionalRoute(ctx, "version"), request);
        var encoded = V2Codec.EncodeResponse(response, request);
        if (encoded.JsonHeaderLength is { } jl)
            ctx.Response.Headers[V2Codec.HeaderLengthHeader] = jl.ToString(CultureInfo.InvariantCulture);
        await WriteBytes(ctx, 200, encoded.Body, encoded.ContentType);
    });

    // ---- KServe V1 ----

    /// <summary>POST v1/models/{model}:predict with {"instances": [...]} → {"predictions": [...]}.</summary>
    public Task HandleV1Predict(HttpContext ctx) => Run(ctx, async () =>
    {
        string model = Route(ctx, "model");
        InferRequest request;
        ModelMetadata metadata;
        using (var body = await ReadBodyAsync(ctx))
        {
            metadata = await _dataplane.GetModelMetadataAsync(model, null, ctx.RequestAborted);
            request = V1Codec.ParseRequest(body.Memory, metadata.Inputs); // copies out what it keeps
        }
        // Pin the version the metadata came from, so an alias moving in between cannot mismatch the signature.
        var response = await _dataplane.InferAsync(metadata.Name, metadata.Versions[0], request, "v1", ctx.RequestAborted);
        await WriteBytes(ctx, 200, V1Codec.EncodeResponse(response), "application/json");
    });

    // ---- Registry ----

    /// <summary>GET api/registry/models</summary>
    public Task HandleListModels(HttpContext ctx) => Run(ctx, async () =>
    {
        var models = await _registry.ListModelsAsync(ctx.RequestAborted);
        await WriteJson(ctx, 200, new { models }, RegistryJson.Options);
    });

    /// <summary>GET api/registry/models/{model}/versions</summary>
    public Task HandleListVersions(HttpContext ctx) => Run(ctx, async () =>
    {
        string model = Route(ctx, "model");
        var versions = await _registry.ListVersionsAsync(model, ctx.RequestAborted);
        if (versions.Count == 0)
            throw new RegistryException(RegistryErrorKind.NotFound, $"Unknown model '{model}'.");
        await WriteJson(ctx, 200, new { model, versions }, RegistryJson.Options);
    });

    /// <summary>GET api/registry/models/{model}/versions/{version}</summary>
    public Task HandleGetVersion(HttpContext ctx) => Run(ctx, async () =>
    {
        string model = Route(ctx, "model");
        string version = Route(ctx, "version");
        ModelVersion? record = null;
        if (int.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out int v))
            record = await _registry.GetVersionAsync(model, v, ctx.RequestAborted);
        if (record is null)
            throw new RegistryException(RegistryErrorKind.NotFound, $"Model '{model}' has no version '{version}'.");
        await WriteJson(ctx, 200, record, RegistryJson.Options);
    });

    /// <summary>GET api/registry/models/{model}/aliases/{alias}</summary>
    public Task HandleGetAlias(HttpContext ctx) => Run(ctx, async () =>
    {
        string model = Route(ctx, "model"), alias = Route(ctx, "alias");
        var doc = await _registry.GetAliasAsync(model, alias, ctx.RequestAborted)
            ?? throw new RegistryException(RegistryErrorKind.NotFound, $"Model '{model}' has no alias '{alias}'.");
        ctx.Response.Headers.ETag = doc.ETag;
        await WriteJson(ctx, 200, doc, RegistryJson.Options);
    });

    /// <summary>
    /// PUT api/registry/models/{model}/aliases/{alias} with {"version": n}. Optional <c>If-Match: etag</c> moves
    /// it only if unchanged, <c>If-None-Match: *</c> only if absent; a lost race answers 412.
    /// </summary>
    public Task HandleSetAlias(HttpContext ctx) => Run(ctx, async () =>
    {
        string model = Route(ctx, "model"), alias = Route(ctx, "alias");
        using var body = await ReadBodyAsync(ctx);
        int version;
        try
        {
            using var doc = JsonDocument.Parse(body.Memory);
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("version", out var v)
                || v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out version) || version < 1)
                throw new RegistryException(RegistryErrorKind.Invalid, "The body must be {\"version\": n} with n a positive integer.");
        }
        catch (JsonException e)
        {
            throw new RegistryException(RegistryErrorKind.Invalid, $"The body is not valid JSON: {e.Message}", e);
        }
        var result = await _registry.SetAliasAsync(model, alias, version, HttpJson.Precondition(ctx), ctx.RequestAborted);
        _dataplane.Repository.InvalidateAliases(); // this process serves the move at once; others within the refresh interval
        ctx.Response.Headers.ETag = result.ETag;
        await WriteJson(ctx, 200, result, RegistryJson.Options);
    });

    /// <summary>DELETE api/registry/models/{model}/aliases/{alias} (optional If-Match); 404 when absent.</summary>
    public Task HandleDeleteAlias(HttpContext ctx) => Run(ctx, async () =>
    {
        string model = Route(ctx, "model"), alias = Route(ctx, "alias");
        if (!await _registry.DeleteAliasAsync(model, alias, HttpJson.Precondition(ctx), ctx.RequestAborted))
            throw new RegistryException(RegistryErrorKind.NotFound, $"Model '{model}' has no alias '{alias}'.");
        _dataplane.Repository.InvalidateAliases();
        ctx.Response.StatusCode = 204;
    });

    // ---- plumbing ----

    private static string Route(HttpContext ctx, string name) =>
        OptionalRoute(ctx, name) ?? throw new InvalidOperationException($"Route value '{name}' is missing: the route template does not match the handler.");

    private static string? OptionalRoute(HttpContext ctx, string name) =>
        ctx.Request.RouteValues.TryGetValue(name, out var v) && v is not null ? Uri.UnescapeDataString(v.ToString()!) : null;

    /// <summary>A request body in a buffer rented from the shared pool; dispose once nothing refers to it.</summary>
    private sealed class PooledBody(byte[] buffer, int length) : IDisposable
    {
        private byte[]? _buffer = buffer;

        public ReadOnlyMemory<byte> Memory => (_buffer ?? throw new ObjectDisposedException(nameof(PooledBody))).AsMemory(0, length);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _buffer, null) is { } b)
                ArrayPool<byte>.Shared.Return(b);
        }
    }

    /// <summary>
    /// Reads the whole body, refusing (413) anything above <see cref="ServingOptions.MaxRequestBodyBytes"/>.
    /// The codecs copy what they keep into tensors, so the body can live in a pooled buffer: at 64 instances a
    /// binary body is ~200 KB, and a fresh array per request would be a large-object allocation every time.
    /// </summary>
    private async Task<PooledBody> ReadBodyAsync(HttpContext ctx)
    {
        long limit = _dataplane.Options.MaxRequestBodyBytes;
        long? declared = ctx.Request.ContentLength;
        if (declared > limit)
            throw InferenceError.TooLarge(limit);
        // Let the server enforce the same limit while streaming (Kestrel's own default is 30 MB).
        if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
            feature.MaxRequestBodySize = limit;
        // One byte of room past the limit, so a body longer than it is seen, not silently cut.
        int cap = (int)Math.Min(limit + 1, Array.MaxLength);
        // A declared length sizes the buffer exactly (plus the byte that detects a lying client); without one it
        // grows past 1 MiB only as bytes arrive.
        int initial = (int)Math.Clamp((declared ?? 4096) + 1, 256, Math.Min(cap, declared is null ? 1 << 20 : cap));
        var buffer = ArrayPool<byte>.Shared.Rent(initial);
        int length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length >= cap)
                        throw InferenceError.TooLarge(limit);
                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, cap));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                int read = await ctx.Request.Body.ReadAsync(buffer.AsMemory(length), ctx.RequestAborted);
                if (read == 0)
                    break;
                length += read;
                if (length > limit)
                    throw InferenceError.TooLarge(limit);
            }
            return new PooledBody(buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private async Task Run(HttpContext ctx, Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (Exception e) when (ApiErrors.Classify(e, ctx) is { } error)
        {
            if (error.Status >= 500)
                _logger.LogWarning(e, "Inference request {Path} failed: {Message}", ctx.Request.Path, e.Message);
            await WriteError(ctx, error.Status, error.Message);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away: there is nobody to answer.
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Unhandled error serving {Method} {Path}", ctx.Request.Method, ctx.Request.Path);
            await WriteError(ctx, 500, "Internal server error.");
        }
    }

    private static Task WriteError(HttpContext ctx, int status, string message) =>
        ctx.Response.HasStarted ? Task.CompletedTask : WriteJson(ctx, status, new { error = message }, V2Json);

    private static async Task WriteJson<T>(HttpContext ctx, int status, T value, JsonSerializerOptions options)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json; charset=utf-8";
        await JsonSerializer.SerializeAsync(ctx.Response.Body, value, options, ctx.RequestAborted);
    }

    private static async Task WriteBytes(HttpContext ctx, int status, byte[] body, string contentType)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = contentType;
        ctx.Response.ContentLength = body.Length;
        await ctx.Response.Body.WriteAsync(body, ctx.RequestAborted);
    }
}
