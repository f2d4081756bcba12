using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;
using Microsoft.Extensions.Logging;
using MlFunctions.Api.Inference;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Serving.Tests;

/// <summary>Artifacts held in memory; <see cref="Gate"/> can hold loads back to observe the "loading" state.</summary>
internal sealed class MemoryArtifactStore : IArtifactStore
{
    private readonly ConcurrentDictionary<string, byte[]> _blobs = new();
    public ConcurrentDictionary<string, TaskCompletionSource> Gates { get; } = new();
    public int Reads;

    public string Put(string uri, byte[] bytes)
    {
        _blobs[uri] = bytes;
        return uri;
    }

    public async Task<byte[]> ReadAsync(string artifactUri, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Reads);
        if (Gates.TryGetValue(artifactUri, out var gate))
            await gate.Task.WaitAsync(cancellationToken);
        return _blobs.TryGetValue(artifactUri, out var b) ? b : throw new FileNotFoundException(artifactUri);
    }
}

/// <summary>Counts sessions created, so a test can prove a refused artifact never reached ONNX Runtime.</summary>
internal sealed class CountingSessionFactory(ISessionFactory inner) : ISessionFactory
{
    public int Created;

    public SessionHandle Create(byte[] model, string modelDisplayName)
    {
        Interlocked.Increment(ref Created);
        return inner.Create(model, modelDisplayName);
    }
}

/// <summary>Collects log lines, so tests can assert that refusals and fallbacks are logged.</summary>
internal sealed class ListLogger<T> : ILogger<T>
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Entries { get; } = new();
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Entries.Enqueue((logLevel, formatter(state, exception) + (exception is null ? "" : " | " + exception.Message)));
}

/// <summary>A complete dataplane over an in-memory registry and artifact store, with its HTTP handlers.</summary>
internal sealed class Harness : IAsyncDisposable
{
    public Harness(Action<ServingOptions>? configure = null, ISessionFactory? sessions = null, IModelRegistry? registry = null, IArtifactStore? artifacts = null,
        Online.BlobServingStore? servingStore = null, PayloadLogger? payloads = null)
    {
        Options = new ServingOptions { ExecutionProvider = ExecutionProviderPreference.Cpu, IntraOpNumThreads = 1 };
        configure?.Invoke(Options);
        Registry = registry ?? new InMemoryModelRegistry();
        Artifacts = artifacts ?? new MemoryArtifactStore();
        Sessions = new CountingSessionFactory(sessions ?? new OrtSessionFactory(OrtSessionFactory.ProvidersFor(Options), Options.IntraOpNumThreads, FactoryLog));
        Metrics = new ServingMetrics();
        Repository = new ModelRepository(Registry, Artifacts, Sessions, Options, Metrics, RepositoryLog);
        Dataplane = new InferenceDataplane(Repository, Options, Metrics, payloads: payloads);
        Router = servingStore is null ? null : new Online.PolicyRouter(servingStore, Options);
        Handlers = new InferenceHandlers(Dataplane, Registry, router: Router);
    }

    public ServingOptions Options { get; }
    public IModelRegistry Registry { get; }
    public IArtifactStore Artifacts { get; }
    public CountingSessionFactory Sessions { get; }
    public ServingMetrics Metrics { get; }
    public ModelRepository Repository { get; }
    public InferenceDataplane Dataplane { get; }
    public InferenceHandlers Handlers { get; }
    public Online.PolicyRouter? Router { get; }
    public ListLogger<ModelRepository> RepositoryLog { get; } = new();
    public ListLogger<OrtSessionFactory> FactoryLog { get; } = new();

    /// <summary>Stores the bytes, registers a version (with the true sha256 unless given) and optionally points an alias at it.</summary>
    public async Task<ModelVersion> RegisterAsync(string name, byte[] onnx, string? alias = RegistryNames.Champion, TransformSpec? transform = null, string? sha256 = null)
    {
        var uri = $"mem://{name}/{Guid.NewGuid():N}.onnx";
        ((MemoryArtifactStore)Artifacts).Put(uri, onnx);
        var version = await Registry.RegisterVersionAsync(name, new ModelVersionDraft
        {
            ArtifactUri = uri,
            Sha256 = sha256 ?? OnnxModels.Sha256(onnx),
            Signature = new ModelSignature([new TensorSignature("input", "FP32", [-1, 4])], [new TensorSignature("output", "FP32", [-1, 3])]),
            Transform = transform,
            Metrics = new Dictionary<string, double> { ["accuracy"] = 0.9 },
            Lineage = new ModelLineage { PipelineRunId = "run-" + Guid.NewGuid().ToString("N"), DatasetVersion = "d1" },
        });
        if (alias is not null)
            await Registry.SetAliasAsync(name, alias, version.Version);
        return version;
    }

    /// <summary>Routes like a host would: matches the path against <see cref="InferenceRoutes.All"/> and calls the handler.</summary>
    public async Task<HttpResult> SendAsync(string method, string path, string? body = null, IDictionary<string, string>? headers = null, byte[]? rawBody = null)
    {
        var ctx = new DefaultHttpContext();
        ctx.Request.Method = method;
        ctx.Request.Path = "/" + path;
        var bytes = rawBody ?? (body is null ? [] : Encoding.UTF8.GetBytes(body));
        ctx.Request.Body = new MemoryStream(bytes);
        ctx.Request.ContentLength = bytes.Length;
        if (headers is not null)
            foreach (var (k, v) in headers)
                ctx.Request.Headers[k] = v;
        var response = new MemoryStream();
        ctx.Response.Body = response;

        var route = Match(method, path, out var values)
            ?? throw new InvalidOperationException($"No route matches {method} {path}.");
        ctx.Request.RouteValues = values;
        await route.Handler(Handlers, ctx);
        return new HttpResult(ctx.Response.StatusCode, response.ToArray(), ctx.Response.Headers.ToDictionary(h => h.Key, h => h.Value.ToString()), route.Name);
    }

    public static InferenceRoute? Match(string method, string path, out RouteValueDictionary values)
    {
        foreach (var route in InferenceRoutes.All.Where(r => r.HttpMethod == method))
        {
            values = new RouteValueDictionary();
            var matcher = new TemplateMatcher(TemplateParser.Parse(route.Template), new RouteValueDictionary());
            if (matcher.TryMatch("/" + path, values))
                return route;
        }
        values = new RouteValueDictionary();
        return null;
    }

    public ValueTask DisposeAsync()
    {
        Metrics.Dispose();
        return Repository.DisposeAsync();
    }
}

internal sealed record HttpResult(int Status, byte[] Body, IReadOnlyDictionary<string, string> Headers, string Route)
{
    public string Text => Encoding.UTF8.GetString(Body);
    public System.Text.Json.JsonDocument Json() => System.Text.Json.JsonDocument.Parse(Body);
    public override string ToString() => $"{Status} {Route}: {Text}";
}
