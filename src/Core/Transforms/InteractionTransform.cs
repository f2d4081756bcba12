using System.Text.Json.Serialization;
using MlFunctions.Core.Datasets;

namespace MlFunctions.Core.Transforms;

/// <summary>
/// What a recommender needs beside its weights to answer a raw request, fitted on the training interactions and
/// stored with the model version: the raw user and item ids (index = position), each user's already-seen items
/// (excluded from recommendations) and the most popular items (the fallback for an unknown user).
/// </summary>
public sealed record InteractionTransform
{
    [JsonPropertyName("users")]
    public IReadOnlyList<string> Users { get; init; } = [];

    [JsonPropertyName("items")]
    public IReadOnlyList<string> Items { get; init; } = [];

    /// <summary>Seen item indices of user index u at position u.</summary>
    [JsonPropertyName("seen")]
    public IReadOnlyList<int[]> Seen { get; init; } = [];

    /// <summary>Item indices by training popularity, most popular first.</summary>
    [JsonPropertyName("popular")]
    public IReadOnlyList<int> Popular { get; init; } = [];

    public IdMap UserMap() => new(Users);

    public IdMap ItemMap() => new(Items);
}
