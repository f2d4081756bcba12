using System.Text.Json.Serialization;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Core.Registry;

/// <summary>
/// One tensor of a model signature. <see cref="Datatype"/> uses the KServe V2 names (FP32, INT64, ...);
/// <see cref="Shape"/> uses -1 for a dynamic dimension (the batch dimension is usually dynamic).
/// </summary>
public sealed record TensorSignature(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("datatype")] string Datatype,
    [property: JsonPropertyName("shape")] long[] Shape);

/// <summary>Input and output tensors of a model, as the exporter wrote them.</summary>
public sealed record ModelSignature(
    [property: JsonPropertyName("inputs")] IReadOnlyList<TensorSignature> Inputs,
    [property: JsonPropertyName("outputs")] IReadOnlyList<TensorSignature> Outputs);

/// <summary>Where a version came from, so any served prediction can be traced back to its run and data.</summary>
public sealed record ModelLineage
{
    [JsonPropertyName("pipelineRunId")]
    public string? PipelineRunId { get; init; }

    [JsonPropertyName("datasetVersion")]
    public string? DatasetVersion { get; init; }

    /// <summary>Hyperparameters as invariant-culture strings: a string map survives every writer (C#, Python) unchanged.</summary>
    [JsonPropertyName("hyperparameters")]
    public IReadOnlyDictionary<string, string> Hyperparameters { get; init; } = new Dictionary<string, string>();
}

/// <summary>What a caller supplies to register a new version; the registry assigns the number and the time.</summary>
public sealed record ModelVersionDraft
{
    [JsonPropertyName("artifactUri")]
    public required string ArtifactUri { get; init; }

    /// <summary>Lower-case hex sha256 of the ONNX bytes; serving refuses an artifact whose hash differs.</summary>
    [JsonPropertyName("sha256")]
    public required string Sha256 { get; init; }

    [JsonPropertyName("signature")]
    public required ModelSignature Signature { get; init; }

    [JsonPropertyName("transform")]
    public TransformSpec? Transform { get; init; }

    [JsonPropertyName("metrics")]
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    [JsonPropertyName("lineage")]
    public ModelLineage Lineage { get; init; } = new();
}

/// <summary>An immutable registered version of a model (MLflow's ModelVersion).</summary>
public sealed record ModelVersion
{
    /// <summary>Schema version of the stored JSON record.</summary>
    [JsonPropertyName("schemaVersion")]
    public int SchemaVersion { get; init; } = 1;

    [JsonPropertyName("name")]
    public required string Name { get; init; }

    [JsonPropertyName("version")]
    public required int Version { get; init; }

    [JsonPropertyName("artifactUri")]
    public required string ArtifactUri { get; init; }

    [JsonPropertyName("sha256")]
    public required string Sha256 { get; init; }

    [JsonPropertyName("signature")]
    public required ModelSignature Signature { get; init; }

    [JsonPropertyName("transform")]
    public TransformSpec? Transform { get; init; }

    [JsonPropertyName("metrics")]
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    [JsonPropertyName("lineage")]
    public ModelLineage Lineage { get; init; } = new();

    [JsonPropertyName("createdAt")]
    public required DateTimeOffset CreatedAt { get; init; }

    public static ModelVersion FromDraft(string name, int version, ModelVersionDraft draft, DateTimeOffset createdAt) => new()
    {
        Name = name,
        Version = version,
        ArtifactUri = draft.ArtifactUri,
        Sha256 = draft.Sha256.ToLowerInvariant(),
        Signature = draft.Signature,
        Transform = draft.Transform,
        Metrics = draft.Metrics,
        Lineage = draft.Lineage,
        CreatedAt = createdAt,
    };
}

/// <summary>
/// A named pointer to a version (champion, challenger, ...). <see cref="Revision"/> counts moves, and
/// <see cref="ETag"/> is the store's concurrency token: pass it back to move the alias only if nobody else did.
/// </summary>
public sealed record ModelAlias
{
    [JsonPropertyName("model")]
    public required string Model { get; init; }

    [JsonPropertyName("alias")]
    public required string Alias { get; init; }

    [JsonPropertyName("version")]
    public required int Version { get; init; }

    [JsonPropertyName("previousVersion")]
    public int? PreviousVersion { get; init; }

    [JsonPropertyName("revision")]
    public long Revision { get; init; }

    [JsonPropertyName("updatedAt")]
    public DateTimeOffset UpdatedAt { get; init; }

    /// <summary>Not part of the stored document: filled from the store on read.</summary>
    [JsonPropertyName("etag")]
    public string? ETag { get; init; }

    /// <summary>The alias document after pointing it at <paramref name="version"/>: one move, one revision.</summary>
    public static ModelAlias Move(string model, string alias, int version, ModelAlias? current, DateTimeOffset now) => new()
    {
        Model = model,
        Alias = alias,
        Version = version,
        PreviousVersion = current?.Version,
        Revision = (current?.Revision ?? 0) + 1,
        UpdatedAt = now,
    };
}

/// <summary>A registered model as listed: its name, newest version and current aliases.</summary>
public sealed record RegisteredModel(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("latestVersion")] int LatestVersion,
    [property: JsonPropertyName("versions")] IReadOnlyList<int> Versions,
    [property: JsonPropertyName("aliases")] IReadOnlyDictionary<string, int> Aliases);
