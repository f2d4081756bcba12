namespace MlFunctions.Core.Sweeps;

/// <summary>Whether the objective is minimized or maximized.</summary>
public enum ObjectiveDirection
{
    Minimize,
    Maximize,
}

/// <summary>What became of a trial, as the algorithms and the tracking store see it.</summary>
public enum TrialState
{
    Running,
    Succeeded,
    EarlyStopped,
    Failed,
}

/// <summary>
/// A trial as the algorithm is told about it. <see cref="Objective"/> is the final value of the primary
/// objective (null while running or when failed); <see cref="Budget"/> is the epochs it was given
/// (Hyperband's resource; null when the sweep does not vary it).
/// </summary>
public sealed record TrialObservation(
    string TrialId,
    ParameterSet Parameters,
    TrialState State,
    double? Objective,
    int? Budget = null,
    string? Bracket = null);

/// <summary>
/// The next configuration to run. <see cref="Budget"/> and <see cref="Bracket"/> are Hyperband's and PBT's;
/// <see cref="Parent"/> (PBT) is the trial whose newest checkpoint this trial starts from instead of a fresh network.
/// </summary>
public sealed record Suggestion(ParameterSet Parameters, int? Budget = null, string? Bracket = null, string? Parent = null);

/// <summary>
/// An ask: the space, everything observed so far (finished and running trials), how many suggestions
/// are wanted, and the sweep's seed. The same request always yields the same answer, so an orchestration
/// replays deterministically whether it computes suggestions inline or records them from an activity.
/// </summary>
public sealed record SuggestionRequest(
    SearchSpace Space,
    ObjectiveDirection Direction,
    IReadOnlyList<TrialObservation> History,
    int Count,
    long Seed,
    IReadOnlyDictionary<string, string>? Settings = null);

/// <summary>
/// The answer. Fewer suggestions than asked is normal (Hyperband waits for a rung to finish; grid runs
/// out). <see cref="Exhausted"/> says the algorithm will never suggest again (grid covered, Hyperband's
/// brackets done).
/// </summary>
public sealed record SuggestionResult(IReadOnlyList<Suggestion> Suggestions, bool Exhausted);

/// <summary>
/// A search algorithm in ask/tell form, as a pure function of the recorded history: "tell" is adding an
/// observation to <see cref="SuggestionRequest.History"/>. No hidden state, so replay and resume after
/// a crash give the same suggestions.
/// </summary>
public interface ISuggestionAlgorithm
{
    /// <summary>The spec's name for it: grid, random, sobol, tpe, gp, cmaes, hyperband, pbt, auto.</summary>
    string Name { get; }

    /// <summary>Problems with algorithm-specific settings for this space (empty when fine).</summary>
    IReadOnlyList<string> ValidateSettings(SearchSpace space, IReadOnlyDictionary<string, string>? settings);

    SuggestionResult Suggest(SuggestionRequest request);

    /// <summary>
    /// Whether the answer depends on the observed results. False for grid, random and sobol: their next
    /// points depend only on which trials exist, so a sweep may ask for many at once without any result
    /// reaching the algorithm later than it would one ask at a time.
    /// </summary>
    bool AdaptsToResults => true;
}
