using System.Globalization;
using System.Text.RegularExpressions;

namespace MlFunctions.Core.Sweeps;

/// <summary>
/// Population-based training (Jaderberg et al., "Population Based Training of Neural Networks", 2017) with
/// truncation selection, as a pure function of the recorded history like every other algorithm. A population of
/// <c>population</c> members trains in generations of <c>interval</c> epochs; generation g of member m is one
/// trial, tagged <see cref="Suggestion.Bracket"/> "pbt/g{g}/m{m}", trained to (g+1)·interval epochs in all
/// (<see cref="Suggestion.Budget"/>). Once every trial of generation g has finished, generation g+1 is decided:
/// members in the top <c>quantile</c> by objective continue from their own checkpoint with their own
/// hyperparameters; the others (and failed ones) <em>exploit</em>, taking the checkpoint and hyperparameters of a
/// member of the top quantile, and <em>explore</em>, multiplying each numeric hyperparameter by 0.8 or 1.2 (clamped
/// to its range) and resampling each categorical one with probability <c>resampleProbability</c>.
/// <see cref="Suggestion.Parent"/> names the trial whose newest checkpoint the new trial starts from: checkpoints
/// are in blob storage already, so exploiting is a copy by reference and survives a crash like the history does.
/// </summary>
/// <remarks>
/// Parameters that change the shape of the network (the <c>frozen</c> setting; by default <see cref="DefaultFrozen"/>)
/// are never perturbed: a checkpoint can only be loaded into the network it came from. Every random draw comes from
/// a generator seeded by (sweep seed, generation, member), so a decision does not depend on how many suggestions were
/// asked for at once, nor on when: a resumed sweep makes the same decisions as an uninterrupted one.
/// </remarks>
public sealed partial class PbtSearch : ISuggestionAlgorithm
{
    public const int DefaultPopulation = 4;
    public const int DefaultGenerations = 4;
    public const int DefaultInterval = 1;
    public const double DefaultQuantile = 0.25;
    public const double DefaultResampleProbability = 0.25;

    /// <summary>Perturbation factors of exploration (the paper's 0.8 and 1.2).</summary>
    public static readonly double[] Factors = [0.8, 1.2];

    /// <summary>Training parameters (<see cref="TrialJobs.Parameters"/>) a checkpoint cannot change: the model and its layer shapes, and the optimizer kind.</summary>
    public static readonly IReadOnlyList<string> DefaultFrozen = ["model", "hiddenSize", "hiddenLayers", "channels", "embeddingSize", "batchNorm", "optimizer", "loss"];

    public string Name => "pbt";

    public IReadOnlyList<string> ValidateSettings(SearchSpace space, IReadOnlyDictionary<string, string>? settings)
    {
        var reader = new SettingsReader(settings, "population", "generations", "interval", "quantile", "resampleProbability", "frozen").RejectUnknown(Name);
        var s = Read(reader, space);
        if (s.Population < 2)
            reader.Problems.Add("PBT needs a population of at least 2 (exploitation copies one member into another).");
        if (space.Parameters.All(p => s.Frozen.Contains(p.Name)))
            reader.Problems.Add("PBT has nothing to explore: every parameter of the space is frozen.");
        return reader.Problems;
    }

    public static string Tag(int generation, int member) => string.Create(CultureInfo.InvariantCulture, $"pbt/g{generation}/m{member}");

    /// <summary>(generation, member) of a PBT trial's tag, or null for any other bracket.</summary>
    public static (int Generation, int Member)? ParseTag(string? bracket) =>
        bracket is not null && TagPattern().Match(bracket) is { Success: true } m
            ? (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture))
            : null;

    public SuggestionResult Suggest(SuggestionRequest request)
    {
        var reader = new SettingsReader(request.Settings);
        var s = Read(reader, request.Space);
        if (reader.Problems.Count > 0)
            throw new ArgumentException(string.Join(" ", reader.Problems));

        var byGeneration = new Dictionary<int, Dictionary<int, TrialObservation>>();
        foreach (var trial in request.History)
        {
            if (ParseTag(trial.Bracket) is { } tag)
            {
                if (!byGeneration.TryGetValue(tag.Generation, out var members))
                    byGeneration[tag.Generation] = members = [];
                members[tag.Member] = trial;
            }
        }

        var suggestions = new List<Suggestion>();
        for (var g = 0; g < s.Generations; g++)
        {
            var issued = byGeneration.GetValueOrDefault(g) ?? [];
            if (issued.Count < s.Population)
            {
                // This generation still has members to hand out; the next one waits for all of it to finish.
                var previous = g == 0 ? null : byGeneration.GetValueOrDefault(g - 1) ?? [];
                if (previous is not null && (previous.Count < s.Population || previous.Values.Any(t => t.State == TrialState.Running)))
                    return new SuggestionResult(suggestions, false);
                for (var m = 0; m < s.Population && suggestions.Count < request.Count; m++)
                {
                    if (!issued.ContainsKey(m))
                        suggestions.Add(Decide(request, s, g, m, previous));
                }

                return new SuggestionResult(suggestions, false);
            }
        }

        // Every generation is handed out: nothing more will ever be suggested.
        return new SuggestionResult(suggestions, true);
    }

    /// <summary>Member <paramref name="m"/> of generation <paramref name="g"/>, from generation g−1 (null for the first generation).</summary>
    private static Suggestion Decide(SuggestionRequest request, Settings s, int g, int m, IReadOnlyDictionary<int, TrialObservation>? previous)
    {
        var random = new Random(SweepRandom.SeedFor(request.Seed, ((long)g << 20) + m, "pbt"));
        var budget = (g + 1) * s.Interval;
        if (previous is null)
            return new Suggestion(UnitSpace.ToParameterSet(request.Space, random.NextUnitVector(request.Space.Parameters.Count)), budget, Tag(g, m));

        // Ranked best first; failed members (no objective) last, by member index.
        var ranked = previous.Values
            .OrderBy(t => HasObjective(t) ? 0 : 1)
            .ThenBy(t => HasObjective(t) ? ObservedHistory.Loss(t.Objective!.Value, request.Direction) : 0)
            .ThenBy(t => ParseTag(t.Bracket)!.Value.Member)
            .ToList();
        var cut = Math.Max(1, (int)Math.Ceiling(s.Quantile * ranked.Count));
        var top = ranked.Take(cut).Where(HasObjective).ToList();
        var bottom = ranked.Skip(ranked.Count - cut).ToHashSet();
        var own = previous[m];
        if (top.Count == 0)
        {
            // No member has a result to exploit: start this member afresh, as in the first generation.
            return new Suggestion(UnitSpace.ToParameterSet(request.Space, random.NextUnitVector(request.Space.Parameters.Count)), budget, Tag(g, m));
        }

        if (HasObjective(own) && !bottom.Contains(own))
            return new Suggestion(new ParameterSet(own.Parameters), budget, Tag(g, m), own.TrialId);

        var donor = top[random.Next(top.Count)];
        return new Suggestion(Explore(request.Space, donor.Parameters, s, random), budget, Tag(g, m), donor.TrialId);
    }

    /// <summary>The donor's hyperparameters, perturbed: numeric ones ×0.8 or ×1.2 within their range, categorical ones resampled with a probability; frozen ones kept.</summary>
    public static ParameterSet Explore(SearchSpace space, ParameterSet donor, IReadOnlyCollection<string> frozen, double resampleProbability, Random random)
    {
        var result = new ParameterSet(donor);
        foreach (var p in space.Parameters)
        {
            // One draw per parameter in a fixed order whatever is frozen, so freezing one does not shift the others' draws.
            var u = random.NextDouble();
            var v = random.NextDouble();
            if (frozen.Contains(p.Name) || !donor.ContainsKey(p.Name))
                continue;
            if (p.Kind == ParameterKind.Categorical)
            {
                if (u < resampleProbability && p.Values is { Count: > 0 } values)
                    result[p.Name] = values[(int)(v * values.Count) % values.Count];
                continue;
            }

            // Quantize clamps to the range and snaps ints and steps (an int of 1 ×1.2 stays 1: PBT's usual behaviour).
            result[p.Name] = UnitSpace.Format(p, UnitSpace.Quantize(p, donor.GetDouble(p.Name) * Factors[u < 0.5 ? 0 : 1]));
        }

        return result;
    }

    private static ParameterSet Explore(SearchSpace space, ParameterSet donor, Settings s, Random random) =>
        Explore(space, donor, s.Frozen, s.ResampleProbability, random);

    private static bool HasObjective(TrialObservation trial) =>
        trial.State is TrialState.Succeeded or TrialState.EarlyStopped && trial.Objective is { } value && double.IsFinite(value);

    private sealed record Settings(int Population, int Generations, int Interval, double Quantile, double ResampleProbability, HashSet<string> Frozen);

    private static Settings Read(SettingsReader reader, SearchSpace space)
    {
        var population = reader.Int("population", DefaultPopulation, 1, 1000);
        var generations = reader.Int("generations", DefaultGenerations, 1, 1000);
        var interval = reader.Int("interval", DefaultInterval, 1, 10_000);
        var quantile = reader.Double("quantile", DefaultQuantile, 0, 0.5);
        var resample = reader.Double("resampleProbability", DefaultResampleProbability, -1e-12, 1);
        var frozen = new HashSet<string>(DefaultFrozen, StringComparer.Ordinal);
        if (reader.TryGetRaw("frozen", out var list))
        {
            frozen = new HashSet<string>(list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), StringComparer.Ordinal);
            foreach (var name in frozen.Where(n => space.Parameters.All(p => p.Name != n)).Order(StringComparer.Ordinal))
                reader.Problems.Add($"Setting 'frozen' names '{name}', which is not a parameter of the space.");
        }

        return new Settings(population, generations, interval, quantile, resample, frozen);
    }

    [GeneratedRegex(@"^pbt/g(\d+)/m(\d+)$", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();
}
