using System.Globalization;

namespace MlFunctions.Core.Registry;

/// <summary>
/// A process-local <see cref="IModelRegistry"/> with the same contract as the blob one (version numbering,
/// idempotent registration, ETag preconditions). For tests and for running serving without storage; it does not
/// survive the process, so it is never the production registry.
/// </summary>
public sealed class InMemoryModelRegistry(TimeProvider? time = null) : IModelRegistry
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, List<ModelVersion>> _versions = new(StringComparer.Ordinal);
    private readonly Dictionary<(string, string), ModelAlias> _aliases = new();
    private long _etag;

    public Task<ModelVersion> RegisterVersionAsync(string model, ModelVersionDraft draft, CancellationToken cancellationToken = default)
    {
        RegistryNames.Validate(model, "model");
        RegistryNames.ValidateDraft(draft);
        lock (_lock)
        {
            if (!_versions.TryGetValue(model, out var list))
                _versions[model] = list = [];
            var existing = list.FirstOrDefault(v => draft.Lineage.PipelineRunId is not null
                && v.Lineage.PipelineRunId == draft.Lineage.PipelineRunId
                && string.Equals(v.Sha256, draft.Sha256, StringComparison.OrdinalIgnoreCase));
            if (existing is not null)
                return Task.FromResult(existing);
            var record = ModelVersion.FromDraft(model, list.Count + 1, draft, _time.GetUtcNow());
            list.Add(record);
            return Task.FromResult(record);
        }
    }

    public Task<ModelVersion?> GetVersionAsync(string model, int version, CancellationToken cancellationToken = default)
    {
        lock (_lock)
            return Task.FromResult(_versions.TryGetValue(model, out var list) && version >= 1 && version <= list.Count ? list[version - 1] : null);
    }

    public Task<IReadOnlyList<RegisteredModel>> ListModelsAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyList<RegisteredModel> result = _versions.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                .Select(kv => new RegisteredModel(kv.Key, kv.Value.Count, kv.Value.Select(v => v.Version).ToList(),
                    _aliases.Where(a => a.Key.Item1 == kv.Key).ToDictionary(a => a.Key.Item2, a => a.Value.Version)))
                .ToList();
            return Task.FromResult(result);
        }
    }

    public Task<IReadOnlyList<ModelVersion>> ListVersionsAsync(string model, CancellationToken cancellationToken = default)
    {
        lock (_lock)
            return Task.FromResult<IReadOnlyList<ModelVersion>>(_versions.TryGetValue(model, out var list) ? list.ToList() : []);
    }

    public Task<ModelAlias?> GetAliasAsync(string model, string alias, CancellationToken cancellationToken = default)
    {
        lock (_lock)
            return Task.FromResult(_aliases.GetValueOrDefault((model, alias)));
    }

    public Task<ModelAlias> SetAliasAsync(string model, string alias, int version, string? ifMatch = null, CancellationToken cancellationToken = default)
    {
        RegistryNames.Validate(model, "model");
        RegistryNames.Validate(alias, "alias");
        lock (_lock)
        {
            if (!_versions.TryGetValue(model, out var list) || version < 1 || version > list.Count)
                throw new RegistryException(RegistryErrorKind.NotFound, $"Model '{model}' has no version {version}.");
            var current = _aliases.GetValueOrDefault((model, alias));
            Check(model, alias, current, ifMatch);
            var doc = ModelAlias.Move(model, alias, version, current, _time.GetUtcNow()) with
            {
                ETag = "\"" + (++_etag).ToString(CultureInfo.InvariantCulture) + "\"",
            };
            _aliases[(model, alias)] = doc;
            return Task.FromResult(doc);
        }
    }

    public Task<bool> DeleteAliasAsync(string model, string alias, string? ifMatch = null, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            var current = _aliases.GetValueOrDefault((model, alias));
            Check(model, alias, current, ifMatch);
            return Task.FromResult(_aliases.Remove((model, alias)));
        }
    }

    private static void Check(string model, string alias, ModelAlias? current, string? ifMatch)
    {
        bool ok = ifMatch switch
        {
            null => true,
            "" => current is null,
            "*" => current is not null,
            _ => current is not null && current.ETag!.Trim('"') == ifMatch.Trim().Trim('"'),
        };
        if (!ok)
            throw new RegistryException(RegistryErrorKind.Conflict, $"Precondition failed for alias '{model}@{alias}'.");
    }
}
