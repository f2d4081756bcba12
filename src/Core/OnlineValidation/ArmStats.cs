using System.Text.Json.Serialization;

namespace MlFunctions.Core.OnlineValidation;

/// <summary>
/// What the online policies know about one arm (a served alias): feedback count, reward sum and sum of
/// squares (rewards in [0, 1]; a binary reward is 0 or 1), and Exp3's log-weight. Every field is a sum of
/// per-feedback deltas, so updates from several hosts commute: merging is addition, whatever the order.
/// </summary>
public sealed record ArmStats
{
    public double Feedback { get; init; }
    public double RewardSum { get; init; }
    public double RewardSquares { get; init; }

    /// <summary>Exp3's log-weight (0 = the uniform start); log space so a long run cannot overflow.</summary>
    public double LogWeight { get; init; }

    /// <summary>Thompson's Beta posterior from a Beta(1, 1) prior: a reward r counts r successes and 1 - r failures.</summary>
    [JsonIgnore]
    public double Successes => RewardSum;
    [JsonIgnore]
    public double Failures => Feedback - RewardSum;

    public double Mean => Feedback > 0 ? RewardSum / Feedback : 0;

    /// <summary>The sample variance of the rewards (population form; 0 with fewer than two).</summary>
    [JsonIgnore]
    public double Variance => Feedback > 1 ? Math.Max(0, (RewardSquares / Feedback) - (Mean * Mean)) : 0;

    public static ArmStats Empty { get; } = new();

    /// <summary>One feedback of <paramref name="reward"/>, with Exp3's log-weight change (0 for other policies).</summary>
    public static ArmStats Delta(double reward, double logWeightDelta = 0) =>
        new() { Feedback = 1, RewardSum = reward, RewardSquares = reward * reward, LogWeight = logWeightDelta };

    public ArmStats Add(ArmStats delta) => new()
    {
        Feedback = Feedback + delta.Feedback,
        RewardSum = RewardSum + delta.RewardSum,
        RewardSquares = RewardSquares + delta.RewardSquares,
        LogWeight = LogWeight + delta.LogWeight,
    };
}
