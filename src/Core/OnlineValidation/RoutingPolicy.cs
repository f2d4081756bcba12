using System.Globalization;
using System.Text.Json.Serialization;
using MlFunctions.Core.Registry;

namespace MlFunctions.Core.OnlineValidation;

/// <summary>
/// How <c>/v2/models/{m}/infer</c> picks the alias that serves a request (the body of
/// <c>PUT /api/serving/{m}/policy</c>). Kinds: <c>fixed</c> (one alias), <c>canary</c> (weights over aliases,
/// sticky per request key), <c>abtest</c> (a fixed two-way split plus a sequential test on the feedback) and
/// <c>bandit</c> (<c>thompson</c> or <c>exp3</c> over <see cref="Arms"/>, learned from the feedback).
/// </summary>
public sealed record RoutingPolicy
{
    public const string Fixed = "fixed", Canary = "canary", AbTest = "abtest", Bandit = "bandit";
    public const string Thompson = "thompson", Exp3Algorithm = "exp3";

    public string? Kind { get; init; }

    /// <summary>fixed: the alias that serves everything.</summary>
    public string? Alias { get; init; }

    /// <summary>canary and abtest: weight per alias, summing to 1 or to 100.</summary>
    public IReadOnlyDictionary<string, double>? Weights { get; init; }

    /// <summary>abtest: the control variant (A); the other is B. Default: <c>champion</c> when it is a variant.</summary>
    public string? Control { get; init; }

    /// <summary>bandit: the aliases it chooses between.</summary>
    public IReadOnlyList<string>? Arms { get; init; }

    /// <summary>bandit: <c>thompson</c> (binary rewards) or <c>exp3</c> (rewards in [0, 1]).</summary>
    public string? Algorithm { get; init; }

    /// <summary>exp3's exploration rate γ in (0, 1]; default the optimal γ for a 10,000-feedback horizon.</summary>
    public double? Gamma { get; init; }

    /// <summary>abtest: significance level (default 0.05).</summary>
    public double? Alpha { get; init; }

    /// <summary>Seed of the bandit draws (a choice depends only on the seed, the state and the request key).</summary>
    public long Seed { get; init; }

    /// <summary>How long after serving a request its feedback still counts (default 3,600 s).</summary>
    public int? FeedbackWindowSeconds { get; init; }

    [JsonIgnore]
    public double AlphaOrDefault => Alpha ?? 0.05;
    [JsonIgnore]
    public TimeSpan FeedbackWindow => TimeSpan.FromSeconds(FeedbackWindowSeconds ?? 3600);

    /// <summary>The aliases in the order every decision uses: weights sorted by alias (ordinal), bandit arms as given.</summary>
    public IReadOnlyList<string> ArmNames() => Kind switch
    {
        Fixed => Alias is null ? [] : [Alias],
        Canary or AbTest => Weights?.Keys.Order(StringComparer.Ordinal).ToList() ?? [],
        Bandit => Arms ?? [],
        _ => [],
    };

    [JsonIgnore]
    public double ExplorationRate => Gamma ?? Exp3.OptimalGamma(Math.Max(2, ArmNames().Count), Exp3.DefaultHorizon);

    /// <summary>abtest: (control, treatment).</summary>
    public (string Control, string Treatment) Variants()
    {
        var names = ArmNames();
        string control = Control ?? (names.Contains(RegistryNames.Champion) ? RegistryNames.Champion : names[0]);
        return (control, names.First(n => n != control));
    }

    /// <summary>Every problem with the policy, for one 400 that lists them all; empty when it is valid.</summary>
    public IReadOnlyList<string> Validate(Func<string, bool> aliasExists)
    {
        var problems = new List<string>();
        static string F(double d) => d.ToString("G", CultureInfo.InvariantCulture);
        switch (Kind)
        {
            case Fixed:
                if (string.IsNullOrEmpty(Alias))
                    problems.Add("kind 'fixed' needs 'alias'.");
                break;
            case Canary or AbTest:
                if (Weights is null || Weights.Count == 0)
                {
                    problems.Add($"kind '{Kind}' needs 'weights': a weight per alias.");
                    break;
                }
                foreach (var (alias, w) in Weights)
                    if (!(w >= 0) || double.IsInfinity(w))
                        problems.Add($"weight of '{alias}' is {F(w)}; weights must be finite and ≥ 0.");
                double sum = Weights.Values.Sum();
                if (Math.Abs(sum - 1) > 1e-6 && Math.Abs(sum - 100) > 1e-4)
                    problems.Add($"weights sum to {F(sum)}; they must sum to 1 or to 100.");
                if (Kind == AbTest && Weights.Count != 2)
                    problems.Add($"kind 'abtest' compares exactly two aliases; 'weights' names {Weights.Count}.");
                if (Kind == AbTest && Control is not null && !Weights.ContainsKey(Control))
                    problems.Add($"control '{Control}' is not one of the weighted aliases.");
                if (Alpha is { } a && !(a > 0 && a < 0.5))
                    problems.Add($"alpha is {F(a)}; it must be in (0, 0.5).");
                break;
            case Bandit:
                if (Arms is null || Arms.Count < 2)
                    problems.Add("kind 'bandit' needs 'arms': at least two aliases.");
                else if (Arms.Distinct(StringComparer.Ordinal).Count() != Arms.Count)
                    problems.Add("'arms' names an alias more than once.");
                if (Algorithm is not (Thompson or Exp3Algorithm))
                    problems.Add($"algorithm '{Algorithm}' is unknown; use 'thompson' (binary rewards) or 'exp3' (rewards in [0, 1]).");
                if (Gamma is { } g && !(g > 0 && g <= 1))
                    problems.Add($"gamma is {F(g)}; it must be in (0, 1].");
                break;
            default:
                problems.Add($"kind '{Kind}' is unknown; use fixed, canary, abtest or bandit.");
                break;
        }
        if (FeedbackWindowSeconds is { } s && s <= 0)
            problems.Add($"feedbackWindowSeconds is {s}; it must be positive.");
        foreach (var alias in ArmNames())
        {
            if (!RegistryNames.IsValid(alias))
                problems.Add($"'{alias}' is not a valid alias name.");
            else if (!aliasExists(alias))
                problems.Add($"alias '{alias}' is not set on this model.");
        }
        return problems;
    }
}
