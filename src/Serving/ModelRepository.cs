using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Core.Registry;

namespace MlFunctions.Serving;

/// <summary>The artifact's bytes do not hash to the registry's sha256: the model is refused.</summary>
public sealed class ModelIntegrityException(string message) : Exception(message)
{
    /// <summary>The sha256 the bytes actually have.</summary>
    public string? Actual { get; init; }
}

/// <summary>A model reference after resolution: the registry record and how it was reached.</summary>
public sealed record ResolvedModel(ModelVersion Version, string? Alias);

/// <summary>
/// Resolves model references through the registry and keeps one ONNX Runtime session per model version.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>{model}</c> resolves alias <c>champion</c>, <c>{model}@{alias}</c> another alias, and an explicit
/// version wins over both. Alias lookups are cached for <see cref="ServingOptions.AliasRefreshInterval"/>, so a
/// moved alias is served within that bound with no restart; version records are immutable and cached for
/// good.</item>
/// <item>Loading reads the artifact, checks its sha256 against the registry before ONNX Runtime sees a byte,
/// and creates the session through <see cref="ISessionFactory"/> (CUDA, else CPU).</item>
/// <item>Sessions are reference counted (leases). Beyond <see cref="ServingOptions.MemoryBudgetBytes"/> the
/// least recently used ones are unloaded; an unloaded session is disposed when its last lease ends, so
/// in-flight requests always finish.</item>
/// </list>
/// </remarks>
public sealed class ModelRepository : IAsyncDisposable
{
    private static readonly TimeSpan LoadRetryInterval = TimeSpan.FromSeconds(5);

    private readonly IModelRegistry _registry;
    private readonly IArtifactStore _artifacts;
    private readonly ISessionFactory _sessions;
    private readonly ServingOptions _options;
    private readonly ServingMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<(string, string), (Task<ModelAlias?> Alias, long FetchedAt)> _aliases = new();
    private readonly ConcurrentDictionary<(string, int), ModelVersion> _versions = new();
    private readonly ConcurrentDictionary<(string, int), ModelEntry> _entries = new();
    private readonly Lock _budgetLock = new();
    private readonly CancellationTokenSource _disposing = new(); // aborts loads still running at shutdown

    public ModelRepository(IModelRegistry registry, IArtifactStore artifacts, ISessionFactory sessions, ServingOptions options,
        ServingMetrics metrics, ILogger<ModelRepository>? logger = null, TimeProvider? time = null)
    {
        _registry = registry;
        _artifacts = artifacts;
        _sessions = sessions;
        _options = options;
        _metrics = metrics;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Model versions with a live session: name, version, provider, estimated bytes.</summary>
    public IReadOnlyList<(string Name, int Version, string Provider, long SizeBytes)> Loaded =>
        _entries.Values.Where(e => e.Load.IsCompletedSuccessfully && !e.Evicted)
            .Select(e => (e.Key.Item1, e.Key.Item2, e.Load.Result.Provider, e.Load.Result.SizeBytes)).ToList();

    /// <summary>Resolves <c>model</c>, <c>model@alias</c> or an explicit version to a registry record (404 when unknown).</summary>
    public async Task<ResolvedModel> ResolveAsync(string model, string? version, CancellationToken cancellationToken = default)
    {
        string name = model;
        string? alias = null;
        int at = model.IndexOf('@');
        if (at >= 0)
        {
            if (version is not null)
                throw InferenceError.Invalid($"'{model}' names an alias; ask for either an alias or a version, not both.");
            name = model[..at];
            alias = model[(at + 1)..];
        }
        if (!RegistryNames.IsValid(name))
            throw InferenceError.NotFound($"Unknown model '{name}'.");

        if (version is not null)
        {
            if (!int.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < 1)
                throw InferenceError.NotFound($"Model '{name}' has no version '{version}'.");
            var record = await GetVersionAsync(name, v, cancellationToken).ConfigureAwait(false);
            if (record is null)
                throw await NotFoundAsync(name, $"Model '{name}' has no version {v}.", cancellationToken).ConfigureAwait(false);
            return new ResolvedModel(record, null);
        }

        alias ??= RegistryNames.Champion;
        if (!RegistryNames.IsValid(alias))
            throw InferenceError.NotFound($"Model '{name}' has no alias '{alias}'.");
        var pointer = await GetAliasAsync(name, alias, cancellationToken).ConfigureAwait(false);
        if (pointer is null)
            throw await NotFoundAsync(name, $"Model '{name}' has no alias '{alias}'.", cancellationToken).ConfigureAwait(false);
        var target = await GetVersionAsync(name, pointer.Version, cancellationToken).ConfigureAwait(false)
            ?? throw InferenceError.NotFound($"Alias '{name}@{alias}' points at version {pointer.Version}, which does not exist.");
        return new ResolvedModel(target, alias);
    }

    // A 404 should say whether the model or only the alias/version is unknown; this costs a listing on the error path only.
    private async Task<InferenceError> NotFoundAsync(string name, string message, CancellationToken ct)
    {
        var versions = await _registry.ListVersionsAsync(name, ct).ConfigureAwait(false);
        return InferenceError.NotFound(versions.Count == 0 ? $"Unknown model '{name}'." : message);
    }

    private async Task<ModelVersion?> GetVersionAsync(string name, int version, CancellationToken ct)
    {
        if (_versions.TryGetValue((name, version), out var cached))
            return cached;
        var record = await _registry.GetVersionAsync(name, version, ct).ConfigureAwait(false);
        if (record is not null)
            _versions[(name, version)] = record;
        return record;
    }

    private async Task<ModelAlias?> GetAliasAsync(string name, string alias, CancellationToken ct)
    {
        var key = (name, alias);
        long now = Stopwatch.GetTimestamp();
        if (_aliases.TryGetValue(key, out var entry)
            && !entry.Alias.IsFaulted && !entry.Alias.IsCanceled
            && Stopwatch.GetElapsedTime(entry.FetchedAt, now) < _options.AliasRefreshInterval)
        {
            return await entry.Alias.WaitAsync(ct).ConfigureAwait(false);
        }
        // Concurrent callers may each refresh once when the entry expires; that is cheaper than a lock here.
        var fetch = _registry.GetAliasAsync(name, alias, CancellationToken.None);
        _aliases[key] = (fetch, now);
        return await fetch.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Forgets cached alias resolutions so the next request re-reads the registry (used after a local alias move).</summary>
    public void InvalidateAliases() => _aliases.Clear();

    /// <summary>True when the version has a live session; otherwise starts loading it and returns false.</summary>
    public bool IsReady(ModelVersion version)
    {
        var entry = GetEntry(version);
        var load = entry.Load;
        if (load.IsCompletedSuccessfully)
            return true;
        if (load.IsFaulted)
            ForgetFailedEntry(entry);
        return false;
    }

    /// <summary>
    /// A lease on the version's session, loading it if needed (503 when loading takes longer than
    /// <see cref="ServingOptions.ModelLoadWait"/> or fails). Dispose the lease when the request is done.
    /// </summary>
    public async Task<ModelLease> AcquireAsync(ModelVersion version, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var entry = GetEntry(version);
            var load = entry.Load;
            if (!load.IsCompleted)
            {
                try
                {
                    await load.WaitAsync(_options.ModelLoadWait, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    throw InferenceError.NotReady($"Model {version.Name} v{version.Version} is still loading.");
                }
                catch when (load.IsFaulted)
                {
                    // reported below
                }
            }
            if (load.IsFaulted)
            {
                ForgetFailedEntry(entry);
                var cause = load.Exception!.GetBaseException();
                throw InferenceError.NotReady($"Model {version.Name} v{version.Version} is not ready: {cause.Message}", cause);
            }
            if (entry.TryAcquire(Stopwatch.GetTimestamp()))
                return new ModelLease(entry);
            // Unloaded between lookup and lease: the next lookup creates a fresh entry.
        }
    }

    private ModelEntry GetEntry(ModelVersion version)
    {
        var key = (version.Name, version.Version);
        return _entries.GetOrAdd(key, k => new ModelEntry(k, () => LoadAsync(version)));
    }

    private void ForgetFailedEntry(ModelEntry entry)
    {
        // Keep a failure for a short while so a broken artifact is not re-downloaded by every request,
        // then drop it so a repaired artifact (or a transient storage error) gets another try.
        entry.FailedAt ??= Stopwatch.GetTimestamp();
        if (Stopwatch.GetElapsedTime(entry.FailedAt.Value) >= LoadRetryInterval)
            _entries.TryRemove(new KeyValuePair<(string, int), ModelEntry>(entry.Key, entry));
    }

    private async Task<LoadedModel> LoadAsync(ModelVersion version)
    {
        await Task.Yield(); // never run the download on the caller's stack (GetOrAdd may run inside it)
        string display = $"{version.Name} v{version.Version}";
        var started = Stopwatch.GetTimestamp();
        try
        {
            byte[] bytes;
            try
            {
                bytes = await _artifacts.ReadVerifiedAsync(version.ArtifactUri, version.Sha256, _disposing.Token).ConfigureAwait(false);
            }
            catch (ModelIntegrityException e)
            {
                _logger.LogError("Refusing {Model}: artifact {Uri} has sha256 {Actual} but the registry records {Expected}.",
                    display, version.ArtifactUri, e.Actual, version.Sha256);
                _metrics.ModelLoads.Add(1, new("model", version.Name), new("outcome", "sha256_mismatch"));
                throw;
            }
            var handle = await Task.Run(() => _sessions.Create(bytes, display)).ConfigureAwait(false);
            LoadedModel model;
            try
            {
                model = new LoadedModel(version, handle, bytes.LongLength, _options.BatchingFor(version.Name), _metrics, _logger);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
            _metrics.ModelLoads.Add(1, new("model", version.Name), new("outcome", "loaded"), new("provider", handle.Provider));
            _logger.LogInformation("Loaded {Model} ({Bytes} bytes) on {Provider} in {Ms} ms; batching {Batching}.",
                display, bytes.Length, handle.Provider, Stopwatch.GetElapsedTime(started).TotalMilliseconds, model.Batchable);
            _ = Task.Run(() => EnforceBudget((version.Name, version.Version)));
            return model;
        }
        catch (OperationCanceledException) when (_disposing.IsCancellationRequested)
        {
            throw; // shutting down: not a load failure worth logging
        }
        catch (Exception e) when (e is not ModelIntegrityException)
        {
            _metrics.ModelLoads.Add(1, new("model", version.Name), new("outcome", "failed"));
            _logger.LogError(e, "Failed to load {Model} from {Uri}.", display, version.ArtifactUri);
            throw;
        }
    }

    private void EnforceBudget((string, int) keep)
    {
        lock (_budgetLock)
        {
            var loaded = _entries.Values.Where(e => e.Load.IsCompletedSuccessfully && !e.Evicted).ToList();
            long total = loaded.Sum(e => e.Load.Result.SizeBytes);
            foreach (var victim in loaded.Where(e => e.Key != keep).OrderBy(e => e.LastUsed))
            {
                if (total <= _options.MemoryBudgetBytes)
                    break;
                if (_entries.TryRemove(new KeyValuePair<(string, int), ModelEntry>(victim.Key, victim)))
                {
                    total -= victim.Load.Result.SizeBytes;
                    _logger.LogInformation("Unloading {Model} v{Version} (least recently used) to stay within {Budget} bytes.",
                        victim.Key.Item1, victim.Key.Item2, _options.MemoryBudgetBytes);
                    victim.Evict();
                }
            }
        }
    }

    /// <summary>Unloads one version now (it finishes in-flight requests first).</summary>
    public bool Unload(string name, int version)
    {
        if (_entries.TryRemove((name, version), out var entry))
        {
            entry.Evict();
            return true;
        }
        return false;
    }

    public async ValueTask DisposeAsync()
    {
        await _disposing.CancelAsync().ConfigureAwait(false);
        foreach (var key in _entries.Keys.ToList())
            if (_entries.TryRemove(key, out var entry))
                await entry.EvictAndWaitAsync().ConfigureAwait(false);
    }

    /// <summary>One cache slot: a lazily started load, a lease count and the LRU timestamp.</summary>
    internal sealed class ModelEntry((string, int) key, Func<Task<LoadedModel>> load)
    {
        private readonly Lazy<Task<LoadedModel>> _load = new(load);
        private readonly Lock _lock = new();
        private int _leases;
        private Task? _disposal;

        public (string, int) Key { get; } = key;
        public Task<LoadedModel> Load => _load.Value;
        public long LastUsed;
        public long? FailedAt { get; set; }
        public bool Evicted { get; private set; }

        public bool TryAcquire(long now)
        {
            lock (_lock)
            {
                if (Evicted)
                    return false;
                _leases++;
                LastUsed = now;
                return true;
            }
        }

        public void Release()
        {
            lock (_lock)
            {
                if (--_leases == 0 && Evicted)
                    _disposal ??= Task.Run(DisposeModelAsync); // off the caller's lock and stack
            }
        }

        public void Evict()
        {
            lock (_lock)
            {
                Evicted = true;
                if (_leases == 0)
                    _disposal ??= Task.Run(DisposeModelAsync); // off the caller's lock and stack
            }
        }

        public Task EvictAndWaitAsync()
        {
            Evict();
            lock (_lock)
                return _disposal ?? Task.CompletedTask;
        }

        private async Task DisposeModelAsync()
        {
            if (!_load.IsValueCreated)
                return;
            LoadedModel model;
            try
            {
                model = await _load.Value.ConfigureAwait(false); // unloaded mid-load: dispose once it exists
            }
            catch
            {
                return; // a failed load holds no session
            }
            await model.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>Keeps a model version's session alive while a request uses it.</summary>
public sealed class ModelLease : IDisposable
{
    private readonly ModelRepository.ModelEntry _entry;
    private int _released;

    internal ModelLease(ModelRepository.ModelEntry entry)
    {
        _entry = entry;
        Model = entry.Load.Result;
    }

    internal LoadedModel Model { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
            _entry.Release();
    }
}
