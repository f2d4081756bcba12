using System.Text.Json;
using System.Text.Json.Serialization;

namespace MlFunctions.Core.Registry;

/// <summary>
/// The model registry (MLflow-like): numbered immutable versions and movable aliases.
/// Implementations must be safe under concurrent writers in several processes.
/// </summary>
public interface IModelRegistry
{
    /// <summary>
    /// Registers a new version and returns it with its number (1, 2, 3...). Idempotent for retries: when a
    /// version with the same sha256 and the same non-null lineage run id exists, that version is returned.
    /// </summary>
    Task<ModelVersion> RegisterVersionAsync(string model, ModelVersionDraft draft, CancellationToken cancellationToken = default);

    /// <summary>The version, or null when the model or version does not exist.</summary>
    Task<ModelVersion?> GetVersionAsync(string model, int version, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<RegisteredModel>> ListModelsAsync(CancellationToken cancellationToken = default);

    /// <summary>All versions of a model, ascending; empty when the model does not exist.</summary>
    Task<IReadOnlyList<ModelVersion>> ListVersionsAsync(string model, CancellationToken cancellationToken = default);

    /// <summary>The alias, or null when it is not set.</summary>
    Task<ModelAlias?> GetAliasAsync(string model, string alias, CancellationToken cancellationToken = default);

    /// <summary>
    /// Points <paramref name="alias"/> at <paramref name="version"/> atomically. With <paramref name="ifMatch"/>
    /// the move happens only if the alias still has that ETag ("*" = must exist, "" = must not exist), otherwise
    /// <see cref="RegistryException"/> with <see cref="RegistryErrorKind.Conflict"/>. Without it the move always
    /// wins, retrying internally on concurrent writers so no move is lost.
    /// </summary>
    Task<ModelAlias> SetAliasAsync(string model, string alias, int version, string? ifMatch = null, CancellationToken cancellationToken = default);

    /// <summary>Deletes the alias; false when it did not exist. <paramref name="ifMatch"/> as for set.</summary>
    Task<bool> DeleteAliasAsync(string model, string alias, string? ifMatch = null, CancellationToken cancellationToken = default);
}

public enum RegistryErrorKind
{
    Invalid,
    NotFound,
    Conflict,
}

/// <summary>A typed registry failure, so HTTP adapters map it to 400/404/409 without string matching.</summary>
public sealed class RegistryException(RegistryErrorKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public RegistryErrorKind Kind { get; } = kind;
}

/// <summary>Name rules shared by the registry, serving and the HTTP routes.</summary>
public static class RegistryNames
{
    /// <summary>The alias an unqualified model reference resolves to.</summary>
    public const string Champion = "champion";

    /// <summary>
    /// Model and alias names: 1..128 of [A-Za-z0-9._-], not starting with '.' or '-'. '@' and '/' are reserved
    /// for references (<c>model@alias</c>) and blob paths, so they can never be part of a name.
    /// </summary>
    public static bool IsValid(string? name) => SafeNames.IsModelName(name);

    public static void Validate(string? name, string what)
    {
        if (!IsValid(name))
            throw new RegistryException(RegistryErrorKind.Invalid,
                $"Invalid {what} name '{name}': use {SafeNames.ModelNameRule}.");
    }

    public static void ValidateDraft(ModelVersionDraft draft)
    {
        if (string.IsNullOrWhiteSpace(draft.ArtifactUri))
            throw new RegistryException(RegistryErrorKind.Invalid, "artifactUri is required.");
        if (draft.Sha256 is not { Length: 64 } || !draft.Sha256.All(char.IsAsciiHexDigit))
            throw new RegistryException(RegistryErrorKind.Invalid, "sha256 must be 64 hex digits.");
        if (draft.Signature is null || draft.Signature.Inputs.Count == 0 || draft.Signature.Outputs.Count == 0)
            throw new RegistryException(RegistryErrorKind.Invalid, "signature must list at least one input and one output.");
        try { draft.Transform?.Validate(); }
        catch (ArgumentException e) { throw new RegistryException(RegistryErrorKind.Invalid, e.Message, e); }
    }
}

/// <summary>The one JSON shape of registry records, for blobs and HTTP alike.</summary>
public static class RegistryJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}
