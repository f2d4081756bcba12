using System.Text.Json;
using Microsoft.AspNetCore.Http;
using MlFunctions.Core.OnlineValidation;
using MlFunctions.Core.Registry;
using MlFunctions.Serving;
using MlFunctions.Serving.Online;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Api.Inference;

/// <summary>Routing policies, feedback and V1 readiness: online validation over <see cref="PolicyRouter"/>.</summary>
public sealed partial class InferenceHandlers
{
    /// <summary>Request id header: read when the V2 body has no <c>id</c>, and always answered.</summary>
    public const string RequestIdHeader = "X-Request-Id";

    /// <summary>Optional sticky key for canary and A/B routing (a user or session id); default the request id.</summary>
    public const string RoutingKeyHeader = "X-Routing-Key";

    /// <summary>The version that served the request (also the V2 <c>model_version</c> field).</summary>
    public const string ModelVersionHeader = "X-Model-Version";

    /// <summary>The alias a routing policy chose.</summary>
    public const string ModelAliasHeader = "X-Model-Alias";

    private const int MaxRequestIdLength = 256;

    /// <summary>
    /// Infers with the model's policy when the request names neither a version nor an alias, gives the request an
    /// id (body <c>id</c>, else <c>X-Request-Id</c>, else a new GUID) and remembers what served it for feedback.
    /// </summary>
    private async Task<InferResponse> RoutedInferAsync(HttpContext ctx, string model, string? version, InferRequest request)
    {
        string id = request.Id ?? ctx.Request.Headers[RequestIdHeader].FirstOrDefault() ?? Guid.NewGuid().ToString("N");
        if (id.Length is 0 or > MaxRequestIdLength)
            throw InferenceError.Invalid($"The request id must be 1 to {MaxRequestIdLength} characters.");
        request = new InferRequest { Id = id, Parameters = request.Parameters, Inputs = request.Inputs, Outputs = request.Outputs, RawJson = request.RawJson };

        (PolicyDocument Policy, RoutingDecision Decision)? routed = null;
        if (_router is not null && version is null && !model.Contains('@') && RegistryNames.IsValid(model))
        {
            string key = ctx.Request.Headers[RoutingKeyHeader].FirstOrDefault() is { Length: > 0 } k ? k : id;
            routed = await _router.DecideAsync(model, key, ctx.RequestAborted);
        }
        var target = routed is { } r ? $"{model}@{r.Decision.Alias}" : model;
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        InferResponse response;
        try
        {
            response = await _dataplane.InferAsync(target, version, request, "v2", ctx.RequestAborted);
        }
        catch (Exception e) when (routed is { } failed && CountFailure(model, failed, started, e, ctx.RequestAborted))
        {
            throw; // not reached: the filter records the failure and lets the exception pass
        }
        if (routed is { } chosen)
        {
            _router!.RecordServed(model, chosen.Policy.Generation, chosen.Decision.Alias, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds, error: false);
            await _router!.RememberAsync(model, chosen.Policy, chosen.Decision, id, response, ctx.RequestAborted);
            ctx.Response.Headers[ModelAliasHeader] = chosen.Decision.Alias;
        }
        ctx.Response.Headers[ModelVersionHeader] = response.ModelVersion;
        ctx.Response.Headers[RequestIdHeader] = id;
        return response;
    }

    /// <summary>
    /// Counts a routed request that failed on the server side (the model failed or could not load, its alias vanished,
    /// anything unexpected) toward the alias's error rate; the caller's own mistakes (400, 413) and aborts do not count.
    /// Always false, so the exception propagates untouched.
    /// </summary>
    private bool CountFailure(string model, (PolicyDocument Policy, RoutingDecision Decision) routed, long started, Exception e, CancellationToken aborted)
    {
        bool serverSide = e switch
        {
            InferenceError { Kind: InferenceErrorKind.InvalidInput or InferenceErrorKind.PayloadTooLarge or InferenceErrorKind.Conflict or InferenceErrorKind.Gone } => false,
            OperationCanceledException when aborted.IsCancellationRequested => false,
            _ => true,
        };
        if (serverSide)
            _router!.RecordServed(model, routed.Policy.Generation, routed.Decision.Alias, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds, error: true);
        return false;
    }

    /// <summary>GET v1/models/{model}: KServe V1 readiness, 200 {"name", "ready": true} or 503 while loading.</summary>
    public Task HandleV1ModelReady(HttpContext ctx) => Run(ctx, async () =>
    {
        string model = Route(ctx, "model");
        bool ready = await _dataplane.IsModelReadyAsync(model, null, ctx.RequestAborted);
        await WriteJson(ctx, ready ? 200 : 503, new { name = model, ready }, V2Json);
    });

    /// <summary>POST v2/models/{model}/feedback with {"id": ..., "reward": x} or {"id": ..., "label": y}.</summary>
    public Task HandleFeedback(HttpContext ctx) => Run(ctx, async () =>
    {
        var router = RequireRouter();
        string model = Route(ctx, "model");
        using var body = await ReadBodyAsync(ctx);
        string id;
        double? reward = null;
        JsonElement? label = null;
        try
        {
            using var doc = JsonDocument.Parse(body.Memory);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("id", out var idElement) || idElement.ValueKind != JsonValueKind.String
                || idElement.GetString() is not { Length: > 0 } text)
                throw InferenceError.Invalid("The body must be {\"id\": \"...\", \"reward\": x} or {\"id\": \"...\", \"label\": y}.");
            id = text;
            if (root.TryGetProperty("reward", out var rw))
                reward = rw.ValueKind == JsonValueKind.Number ? rw.GetDouble() : throw InferenceError.Invalid("'reward' must be a number in [0, 1].");
            if (root.TryGetProperty("label", out var lb))
                label = lb.Clone();
        }
        catch (JsonException e)
        {
            throw InferenceError.Invalid($"The body is not valid JSON: {e.Message}");
        }
        PolicyRouter.ValidateFeedback(reward, label);
        var result = await router.FeedbackAsync(model, id, reward, label, ctx.RequestAborted);
        await WriteJson(ctx, 200, result, RegistryJson.Options);
    });

    /// <summary>GET api/serving/{model}/policy: the policy, its ETag, per-arm feedback and the A/B verdict.</summary>
    public Task HandleGetPolicy(HttpContext ctx) => Run(ctx, async () =>
    {
        var router = RequireRouter();
        string model = Route(ctx, "model");
        var doc = await router.Store.GetPolicyAsync(model, ctx.RequestAborted)
            ?? throw InferenceError.NotFound($"Model '{model}' has no routing policy.");
        var state = await router.Store.GetStateAsync(model, doc.Generation, ctx.RequestAborted);
        ctx.Response.Headers.ETag = doc.ETag;
        await WriteJson(ctx, 200, new PolicyView(doc, state, PolicyEngine.Verdict(doc.Policy, state)), RegistryJson.Options);
    });

    /// <summary>
    /// PUT api/serving/{model}/policy with a <see cref="RoutingPolicy"/>. 400 lists every problem (kind, weights,
    /// unknown aliases); 404 for an unknown model; <c>If-Match</c> / <c>If-None-Match: *</c> as for aliases, 412 when stale.
    /// </summary>
    public Task HandlePutPolicy(HttpContext ctx) => Run(ctx, async () =>
    {
        var router = RequireRouter();
        string model = Route(ctx, "model");
        if (!RegistryNames.IsValid(model) || (await _registry.ListVersionsAsync(model, ctx.RequestAborted)).Count == 0)
            throw InferenceError.NotFound($"Unknown model '{model}'.");
        RoutingPolicy policy;
        using (var body = await ReadBodyAsync(ctx))
        {
            try
            {
                policy = JsonSerializer.Deserialize<RoutingPolicy>(body.Memory.Span, RegistryJson.Options)
                    ?? throw InferenceError.Invalid("The body must be a routing policy object.");
            }
            catch (JsonException e)
            {
                throw InferenceError.Invalid($"The body is not a valid routing policy: {e.Message}");
            }
        }
        var existing = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var alias in policy.ArmNames().Where(RegistryNames.IsValid).Distinct())
            existing[alias] = await _registry.GetAliasAsync(model, alias, ctx.RequestAborted) is not null;
        var problems = policy.Validate(a => existing.GetValueOrDefault(a));
        if (problems.Count > 0)
        {
            await WriteJson(ctx, 400, new { error = $"Invalid routing policy for '{model}': {string.Join(" ", problems)}", problems }, V2Json);
            return;
        }
        var doc = await router.Store.PutPolicyAsync(model, policy, HttpJson.Precondition(ctx), ctx.RequestAborted);
        router.Invalidate(model);
        ctx.Response.Headers.ETag = doc.ETag;
        await WriteJson(ctx, 200, doc, RegistryJson.Options);
    });

    /// <summary>DELETE api/serving/{model}/policy (optional If-Match): back to serving <c>champion</c>; 404 when none.</summary>
    public Task HandleDeletePolicy(HttpContext ctx) => Run(ctx, async () =>
    {
        var router = RequireRouter();
        string model = Route(ctx, "model");
        if (!await router.Store.DeletePolicyAsync(model, HttpJson.Precondition(ctx), ctx.RequestAborted))
            throw InferenceError.NotFound($"Model '{model}' has no routing policy.");
        router.Invalidate(model);
        ctx.Response.StatusCode = 204;
    });

    private PolicyRouter RequireRouter() =>
        _router ?? throw new InferenceError(InferenceErrorKind.NotReady, "Routing policies are not configured on this host (no serving store).");

    private sealed record PolicyView(PolicyDocument Policy, PolicyState State, SequentialTestResult? Test);
}
