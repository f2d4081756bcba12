using System.Globalization;
using System.Net;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using MlFunctions.Core.Registry;

namespace MlFunctions.Activities.Registry;

/// <summary>
/// <see cref="IModelRegistry"/> over one blob container (by convention <c>models</c>).
/// </summary>
/// <remarks>
/// Blob layout (container <c>models</c>):
/// <code>
/// {model}/versions/{version:D10}.json   immutable ModelVersion record; metadata: sha256, runid
/// {model}/aliases/{alias}.json          ModelAlias document;            metadata: version
/// {model}/...                           anything else (e.g. ONNX artifacts) is ignored by the registry
/// </code>
/// Why this shape:
/// <list type="bullet">
/// <item>A version number is allocated by <em>creating</em> its record with <c>If-None-Match: *</c>. Creation is
/// the allocation, so there is no separate counter that a crash could leave ahead of the records (no gaps),
/// and two writers racing for the same number get one 409/412 loser that simply tries the next number.
/// Zero-padded names make a prefix listing come back in version order.</item>
/// <item>An alias is one small blob moved with <c>If-Match: {etag}</c> (or <c>If-None-Match: *</c> when new).
/// Each move is a read-modify-write (revision + previous version), and the ETag condition turns it into a
/// compare-and-swap: a concurrent writer makes the upload fail with 412 and the loser re-reads and retries,
/// so no move is lost and the document is never half-written.</item>
/// <item>Version and alias numbers are mirrored in blob metadata, so listing models is one flat listing
/// with metadata instead of one download per blob.</item>
/// </list>
/// </remarks>
public sealed class BlobModelRegistry : IModelRegistry
{
    public const string DefaultContainerName = "models";

    private const int MaxAttempts = 200;
    private readonly BlobContainerClient _container;
    private readonly TimeProvider _time;
    private int _containerReady;

    public BlobModelRegistry(BlobContainerClient container, TimeProvider? time = null)
    {
        _container = container;
        _time = time ?? TimeProvider.System;
    }

    private static string VersionsPrefix(string model) => $"{model}/versions/";
    private static string VersionBlob(string model, int version) => $"{model}/versions/{version.ToString("D10", CultureInfo.InvariantCulture)}.json";
    private static string AliasBlob(string model, string alias) => $"{model}/aliases/{alias}.json";

    private async Task EnsureContainerAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _containerReady) == 1)
            return;
        await _container.CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        Volatile.Write(ref _containerReady, 1);
    }

    public async Task<ModelVersion> RegisterVersionAsync(string model, ModelVersionDraft draft, CancellationToken cancellationToken = default)
    {
        RegistryNames.Validate(model, "model");
        RegistryNames.ValidateDraft(draft);
        await EnsureContainerAsync(cancellationToken).ConfigureAwait(false);
        string sha = draft.Sha256.ToLowerInvariant();
        string? runId = draft.Lineage.PipelineRunId;

        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            int max = 0;
            await foreach (var item in _container.GetBlobsAsync(new GetBlobsOptions { Traits = BlobTraits.Metadata, Prefix = VersionsPrefix(model) }, cancellationToken).ConfigureAwait(false))
            {
                if (!TryParseVersionBlob(item.Name, out _, out int v))
                    continue;
                max = Math.Max(max, v);
                // A retried registration activity (at-least-once) must not mint a second version.
                if (runId is not null
                    && item.Metadata.TryGetValue("sha256", out var s) && s == sha
                    && item.Metadata.TryGetValue("runid", out var r) && r == Uri.EscapeDataString(runId))
                {
                    return await GetVersionAsync(model, v, cancellationToken).ConfigureAwait(false)
                        ?? throw new InvalidOperationException($"Version blob {item.Name} vanished while registering.");
                }
            }

            var record = ModelVersion.FromDraft(model, max + 1, draft, _time.GetUtcNow());
            var metadata = new Dictionary<string, string> { ["sha256"] = sha };
            if (runId is not null)
                metadata["runid"] = Uri.EscapeDataString(runId); // metadata values must be ASCII
            try
            {
                await _container.GetBlobClient(VersionBlob(model, record.Version)).UploadAsync(
                    BinaryData.FromObjectAsJson(record, RegistryJson.Options),
                    new BlobUploadOptions
                    {
                        Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
                        Metadata = metadata,
                        HttpHeaders = new BlobHttpHeaders { ContentType = "application/json" },
                    },
                    cancellationToken).ConfigureAwait(false);
                return record;
            }
            catch (RequestFailedException e) when (IsConcurrencyFailure(e))
            {
                // Another writer took this number first: list again and try the next one.
                await BackoffAsync(attempt, cancellationToken).ConfigureAwait(false);
            }
        }
        throw new RegistryException(RegistryErrorKind.Conflict, $"Could not allocate a version of '{model}' after {MaxAttempts} attempts.");
    }

    public async Task<ModelVersion?> GetVersionAsync(string model, int version, CancellationToken cancellationToken = default)
    {
        if (!RegistryNames.IsValid(model) || version < 1)
            return null;
        try
        {
            var result = await _container.GetBlobClient(VersionBlob(model, version)).DownloadContentAsync(cancellationToken).ConfigureAwait(false);
            return result.Value.Content.ToObjectFromJson<ModelVersion>(RegistryJson.Options);
        }
        catch (RequestFailedException e) when (e.Status == (int)HttpStatusCode.NotFound)
        {
            return null; // the blob or the whole container is missing: either way the version does not exist
        }
    }

    public async Task<IReadOnlyList<ModelVersion>> ListVersionsAsync(string model, CancellationToken cancellationToken = default)
    {
        if (!RegistryNames.IsValid(model))
            return [];
        var numbers = new List<int>();
        try
        {
            await foreach (var item in _container.GetBlobsAsync(new GetBlobsOptions { Prefix = VersionsPrefix(model) }, cancellationToken).ConfigureAwait(false))
                if (TryParseVersionBlob(item.Name, out _, out int v))
                    numbers.Add(v);
        }
        catch (RequestFailedException e) when (e.Status == (int)HttpStatusCode.NotFound)
        {
            return [];
        }
        var records = await Task.WhenAll(numbers.Select(v => GetVersionAsync(model, v, cancellationToken))).ConfigureAwait(false);
        return records.OfType<ModelVersion>().OrderBy(v => v.Version).ToList();
    }

    public async Task<IReadOnlyList<RegisteredModel>> ListModelsAsync(CancellationToken cancellationToken = default)
    {
        var versions = new SortedDictionary<string, SortedSet<int>>(StringComparer.Ordinal);
        var aliases = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        try
        {
            await foreach (var item in _container.GetBlobsAsync(new GetBlobsOptions { Traits = BlobTraits.Metadata }, cancellationToken).ConfigureAwait(false))
            {
                if (TryParseVersionBlob(item.Name, out var model, out int v))
                {
                    (versions.TryGetValue(model, out var set) ? set : versions[model] = []).Add(v);
                }
                else if (TryParseAliasBlob(item.Name, out model, out var alias)
                    && item.Metadata.TryGetValue("version", out var text)
                    && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out v))
                {
                    (aliases.TryGetValue(model, out var map) ? map : aliases[model] = new(StringComparer.Ordinal))[alias] = v;
                }
            }
        }
        catch (RequestFailedException e) when (e.Status == (int)HttpStatusCode.NotFound)
        {
            return [];
        }
        return versions.Select(kv => new RegisteredModel(
            kv.Key, kv.Value.Max, kv.Value.ToList(),
            aliases.TryGetValue(kv.Key, out var a) ? a : new Dictionary<string, int>())).ToList();
    }

    public async Task<ModelAlias?> GetAliasAsync(string model, string alias, CancellationToken cancellationToken = default)
    {
        if (!RegistryNames.IsValid(model) || !RegistryNames.IsValid(alias))
            return null;
        try
        {
            var result = await _container.GetBlobClient(AliasBlob(model, alias)).DownloadContentAsync(cancellationToken).ConfigureAwait(false);
            var doc = result.Value.Content.ToObjectFromJson<ModelAlias>(RegistryJson.Options)
                ?? throw new JsonException($"Alias blob {model}/{alias} is empty.");
            return doc with { ETag = result.Value.Details.ETag.ToString() };
        }
        catch (RequestFailedException e) when (e.Status == (int)HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task<ModelAlias> SetAliasAsync(string model, string alias, int version, string? ifMatch = null, CancellationToken cancellationToken = default)
    {
        RegistryNames.Validate(model, "model");
        RegistryNames.Validate(alias, "alias");
        if (await GetVersionAsync(model, version, cancellationToken).ConfigureAwait(false) is null)
            throw new RegistryException(RegistryErrorKind.NotFound, $"Model '{model}' has no version {version}.");

        var blob = _container.GetBlobClient(AliasBlob(model, alias));
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var current = await GetAliasAsync(model, alias, cancellationToken).ConfigureAwait(false);
            CheckPrecondition(model, alias, current, ifMatch);
            var doc = ModelAlias.Move(model, alias, version, current, _time.GetUtcNow());
            var conditions = current is null
                ? new BlobRequestConditions { IfNoneMatch = ETag.All }
                : new BlobRequestConditions { IfMatch = new ETag(current.ETag!) };
            try
            {
                var response = await blob.UploadAsync(
                    BinaryData.FromObjectAsJson(doc, RegistryJson.Options),
                    new BlobUploadOptions
                    {
                        Conditions = conditions,
                        Metadata = new Dictionary<string, string> { ["version"] = version.ToString(CultureInfo.InvariantCulture) },
                        HttpHeaders = new BlobHttpHeaders { ContentType = "application/json" },
                    },
                    cancellationToken).ConfigureAwait(false);
                return doc with { ETag = response.Value.ETag.ToString() };
            }
            catch (RequestFailedException e) when (IsConcurrencyFailure(e))
            {
                if (IsSpecificETag(ifMatch))
                    throw new RegistryException(RegistryErrorKind.Conflict, $"Alias '{model}@{alias}' was changed by another writer.", e);
                await BackoffAsync(attempt, cancellationToken).ConfigureAwait(false);
            }
        }
        throw new RegistryException(RegistryErrorKind.Conflict, $"Could not move alias '{model}@{alias}' after {MaxAttempts} attempts.");
    }

    public async Task<bool> DeleteAliasAsync(string model, string alias, string? ifMatch = null, CancellationToken cancellationToken = default)
    {
        RegistryNames.Validate(model, "model");
        RegistryNames.Validate(alias, "alias");
        var blob = _container.GetBlobClient(AliasBlob(model, alias));
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var current = await GetAliasAsync(model, alias, cancellationToken).ConfigureAwait(false);
            CheckPrecondition(model, alias, current, ifMatch);
            if (current is null)
                return false;
            try
            {
                await blob.DeleteAsync(conditions: new BlobRequestConditions { IfMatch = new ETag(current.ETag!) }, cancellationToken: cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (RequestFailedException e) when (e.Status == (int)HttpStatusCode.NotFound)
            {
                return false; // deleted concurrently by someone else
            }
            catch (RequestFailedException e) when (IsConcurrencyFailure(e))
            {
                if (IsSpecificETag(ifMatch))
                    throw new RegistryException(RegistryErrorKind.Conflict, $"Alias '{model}@{alias}' was changed by another writer.", e);
                await BackoffAsync(attempt, cancellationToken).ConfigureAwait(false);
            }
        }
        throw new RegistryException(RegistryErrorKind.Conflict, $"Could not delete alias '{model}@{alias}' after {MaxAttempts} attempts.");
    }

    private static bool IsSpecificETag(string? ifMatch) => !string.IsNullOrEmpty(ifMatch) && ifMatch != "*";

    private static void CheckPrecondition(string model, string alias, ModelAlias? current, string? ifMatch)
    {
        bool ok = ifMatch switch
        {
            null => true,
            "" => current is null,
            "*" => current is not null,
            _ => current is not null && Unquote(current.ETag) == Unquote(ifMatch),
        };
        if (!ok)
            throw new RegistryException(RegistryErrorKind.Conflict,
                $"Precondition failed for alias '{model}@{alias}': expected ETag {(ifMatch == "" ? "(absent)" : ifMatch)}, found {current?.ETag ?? "(absent)"}.");
    }

    // HTTP clients differ on whether an ETag keeps its quotes; compare the opaque value only.
    private static string? Unquote(string? etag) => etag?.Trim().Trim('"');

    private static bool IsConcurrencyFailure(RequestFailedException e) =>
        e.Status is (int)HttpStatusCode.PreconditionFailed or (int)HttpStatusCode.Conflict;

    private static Task BackoffAsync(int attempt, CancellationToken ct) =>
        // Jittered, capped backoff: writers that collided should not collide again in lock step.
        Task.Delay(Random.Shared.Next(1, Math.Min(5 + attempt * 5, 100)), ct);

    private static bool TryParseVersionBlob(string name, out string model, out int version)
    {
        model = "";
        version = 0;
        var parts = name.Split('/');
        if (parts.Length != 3 || parts[1] != "versions" || !parts[2].EndsWith(".json", StringComparison.Ordinal))
            return false;
        model = parts[0];
        return int.TryParse(parts[2].AsSpan(0, parts[2].Length - 5), NumberStyles.None, CultureInfo.InvariantCulture, out version) && version > 0;
    }

    private static bool TryParseAliasBlob(string name, out string model, out string alias)
    {
        model = alias = "";
        var parts = name.Split('/');
        if (parts.Length != 3 || parts[1] != "aliases" || !parts[2].EndsWith(".json", StringComparison.Ordinal))
            return false;
        model = parts[0];
        alias = parts[2][..^5];
        return true;
    }
}
