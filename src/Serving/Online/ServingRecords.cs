using MlFunctions.Core.OnlineValidation;

namespace MlFunctions.Serving.Online;

/// <summary>A stored routing policy: the policy, its generation (new on every write, so learned state restarts) and its ETag.</summary>
public sealed record PolicyDocument(string Model, RoutingPolicy Policy, string Generation, DateTimeOffset UpdatedAt)
{
    public string? ETag { get; init; }
}

/// <summary>
/// What a served request's feedback needs: the alias and version that served it, the probability of that
/// choice (Exp3), the policy generation, the predicted classes (for label feedback) and when it expires.
/// </summary>
public sealed record ServedRequest(string Id, string Alias, int Version, double Probability, string Generation,
    DateTimeOffset ServedAt, DateTimeOffset ExpiresAt, int[]? Predicted)
{
    /// <summary>Set once, when its feedback is accepted: a second feedback is a duplicate.</summary>
    public DateTimeOffset? FeedbackAt { get; init; }
}

public enum FeedbackClaim
{
    Claimed,
    Unknown,
    Duplicate,
    Expired,
}
