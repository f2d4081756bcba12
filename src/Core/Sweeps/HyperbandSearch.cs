using System.Globalization;
using System.Text.RegularExpressions;

namespace MlFunctions.Core.Sweeps;

/// <summary>One rung of a Hyperband bracket: how many configurations run, with how many epochs each.</summary>
public sealed record HyperbandRung(int Rung, int Configurations, int Epochs);

/// <summary>One successive-halving bracket: s (the paper's index, s_max down to 0) and its rungs.</summary>
public sealed record HyperbandBracket(int S, IReadOnlyList<HyperbandRung> Rungs);

/// <summary>
/// Hyperband (Li et al., "Hyperband: A Novel Bandit-Based Approach to Hyperparameter Optimization", JMLR
/// 2018, Algorithm 1) over the epoch budget: brackets s = s_max … 0 of successive halving, bracket s starting
/// n = ⌈(s_max+1)/(s+1) · η^s⌉ random configurations with r = R·η^(−s) epochs and keeping the best ⌊n_i/η⌋ at
/// each rung with η times the epochs. Suggestions carry <see cref="Suggestion.Budget"/> (epochs) and
/// <see cref="Suggestion.Bracket"/> ("s2/r1": bracket 2, rung 1).
/// </summary>
/// <remarks>
/// The whole state is read back from the history's Bracket and Budget tags. A rung's survivors are chosen
/// only once every trial of that rung has finished (Succeeded, EarlyStopped or Failed; failed ones never
/// survive); a promoted configuration runs again as a new trial with the same parameters and more epochs.
/// Brackets are independent (the paper runs them one after another only for exposition), so while one
/// waits on a rung the next one's first rung is handed out, keeping parallel workers busy. When nothing can
/// be started now the answer is empty but not exhausted; it is exhausted once every rung of every bracket
/// has been handed out and has finished.
/// </remarks>
public sealed partial class HyperbandSearch : ISuggestionAlgorithm
{
    public const int DefaultEta = 3;

    public string Name => "hyperband";

    public IReadOnlyList<string> ValidateSettings(SearchSpace space, IReadOnlyDictionary<string, string>? settings)
    {
        var reader = new SettingsReader(settings, "maxEpochs", "eta", "minEpochs").RejectUnknown(Name);
        Read(reader);
        return reader.Problems;
    }

    /// <summary>The brackets for R = <paramref name="maxEpochs"/>, η = <paramref name="eta"/> and a smallest budget of <paramref name="minEpochs"/>.</summary>
    public static IReadOnlyList<HyperbandBracket> Schedule(int maxEpochs, int eta, int minEpochs = 1)
    {
        // s_max = ⌊log_η(R / r_min)⌋, computed with integers: floating logs misround exact powers (log_3(9)).
        var sMax = 0;
        for (long budget = (long)minEpochs * eta; budget <= maxEpochs; budget *= eta)
        {
            sMax++;
        }

        var brackets = new List<HyperbandBracket>();
        for (var s = sMax; s >= 0; s--)
        {
            var n = (int)Math.Ceiling((sMax + 1) / (double)(s + 1) * Math.Pow(eta, s) - 1e-9);
            var rungs = new List<HyperbandRung>();
            for (var i = 0; i <= s; i++)
            {
                var configurations = (int)Math.Floor(n / Math.Pow(eta, i) + 1e-9);
                var epochs = (int)Math.Round(maxEpochs / Math.Pow(eta, s - i));
                rungs.Add(new HyperbandRung(i, configurations, Math.Clamp(epochs, minEpochs, maxEpochs)));
            }

            brackets.Add(new HyperbandBracket(s, rungs));
        }

        return brackets;
    }

    public static string Tag(int s, int rung) => string.Create(CultureInfo.InvariantCulture, $"s{s}/r{rung}");

    public SuggestionResult Suggest(SuggestionRequest request)
    {
        var reader = new SettingsReader(request.Settings);
        var (maxEpochs, eta, minEpochs) = Read(reader);
        if (reader.Problems.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", reader.Problems));
        }

        var random = SweepRandom.Create(request.Seed, request.History.Count, Name);
        var byTag = new Dictionary<(int S, int Rung), List<TrialObservation>>();
        foreach (var trial in request.History)
        {
            if (trial.Bracket is not null && TagPattern().Match(trial.Bracket) is { Success: true } match)
            {
                var key = (int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture));
                if (!byTag.TryGetValue(key, out var list))
                {
                    byTag[key] = list = new List<TrialObservation>();
                }

                list.Add(trial);
            }
        }

        var suggestions = new List<Suggestion>();
        var exhausted = true;
        foreach (var bracket in Schedule(maxEpochs, eta, minEpochs))
        {
            // Walk the rungs: each rung's size is its schedule size, or fewer when failures left fewer
            // survivors below; a rung is open while it has slots not yet handed out.
            var expected = bracket.Rungs[0].Configurations;
            for (var i = 0; i < bracket.Rungs.Count && expected > 0; i++)
            {
                var rung = bracket.Rungs[i];
                var issued = byTag.GetValueOrDefault((bracket.S, i)) ?? [];
                var open = expected - issued.Count;
                if (open > 0)
                {
                    exhausted = false;
                    if (i == 0)
                    {
                        for (var k = 0; k < open && suggestions.Count < request.Count; k++)
                        {
                            var parameters = UnitSpace.ToParameterSet(request.Space, random.NextUnitVector(request.Space.Parameters.Count));
                            suggestions.Add(new Suggestion(parameters, rung.Epochs, Tag(bracket.S, i)));
                        }
                    }
                    else
                    {
                        var below = byTag.GetValueOrDefault((bracket.S, i - 1)) ?? [];
                        var promoted = new HashSet<string>(issued.Select(t => t.Parameters.Describe()), StringComparer.Ordinal);
                        foreach (var survivor in Survivors(below, expected, request.Direction))
                        {
                            if (suggestions.Count >= request.Count)
                            {
                                break;
                            }

                            if (promoted.Add(survivor.Parameters.Describe()))
                            {
                                suggestions.Add(new Suggestion(new ParameterSet(survivor.Parameters), rung.Epochs, Tag(bracket.S, i)));
                            }
                        }
                    }

                    break;
                }

                // The rung is fully handed out; the next rung can be sized only once all of it has finished.
                if (issued.Any(t => t.State == TrialState.Running))
                {
                    exhausted = false;
                    break;
                }

                if (i + 1 < bracket.Rungs.Count)
                {
                    expected = Math.Min(bracket.Rungs[i + 1].Configurations, issued.Count(HasObjective));
                }
            }
        }

        return new SuggestionResult(suggestions, exhausted && suggestions.Count == 0);
    }

    /// <summary>The best <paramref name="keep"/> finished trials of a rung by objective; ties go to the earlier trial id.</summary>
    public static IReadOnlyList<TrialObservation> Survivors(IEnumerable<TrialObservation> rung, int keep, ObjectiveDirection direction) =>
        rung.Where(HasObjective)
            .OrderBy(t => ObservedHistory.Loss(t.Objective!.Value, direction))
            .ThenBy(t => t.TrialId, StringComparer.Ordinal)
            .Take(keep)
            .ToArray();

    private static bool HasObjective(TrialObservation trial) =>
        trial.State is TrialState.Succeeded or TrialState.EarlyStopped && trial.Objective is { } value && double.IsFinite(value);

    private static (int MaxEpochs, int Eta, int MinEpochs) Read(SettingsReader reader)
    {
        if (!reader.Has("maxEpochs"))
        {
            reader.Problems.Add("Hyperband needs the setting 'maxEpochs' (R, the most epochs one trial may get).");
        }

        var maxEpochs = reader.Int("maxEpochs", 1, 1);
        var eta = reader.Int("eta", DefaultEta, 2);
        var minEpochs = reader.Int("minEpochs", 1, 1);
        if (minEpochs > maxEpochs)
        {
            reader.Problems.Add($"Setting 'minEpochs' ({minEpochs}) must not exceed 'maxEpochs' ({maxEpochs}).");
            minEpochs = maxEpochs;
        }

        return (maxEpochs, eta, minEpochs);
    }

    [GeneratedRegex(@"^s(\d+)/r(\d+)$", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();
}
