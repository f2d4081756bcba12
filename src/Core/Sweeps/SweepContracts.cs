namespace MlFunctions.Core.Sweeps;

/// <summary>Metrics at one step (epoch) of a trial.</summary>
public sealed record MetricStep(int Step, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// What a trial produced, whatever ran it (a training job, a stand-in, k folds): final metrics, the
/// per-step history, artifacts, or the reason it failed.
/// </summary>
public sealed record TrialOutcome(
    string TrialId,
    TrialState State,
    IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyList<MetricStep> History,
    IReadOnlyDictionary<string, string> Artifacts)
{
    public string? Error { get; init; }

    public string? Device { get; init; }

    /// <summary>Per-fold metrics when the trial was scored by cross-validation.</summary>
    public CrossValidationSummary? CrossValidation { get; init; }

    public static TrialOutcome Failed(string trialId, string error, IReadOnlyList<MetricStep>? history = null) =>
        new(trialId, TrialState.Failed, new Dictionary<string, double>(), history ?? [], new Dictionary<string, string>()) { Error = error };
}

/// <summary>Mean and standard deviation of each metric over k folds, and the folds' own values.</summary>
public sealed record CrossValidationSummary(
    int Folds,
    IReadOnlyDictionary<string, double> Mean,
    IReadOnlyDictionary<string, double> StdDev,
    IReadOnlyList<IReadOnlyDictionary<string, double>> PerFold)
{
    /// <summary>Sample standard deviation (n − 1), as scikit-learn's cross_validate users compute it from the scores.</summary>
    public static CrossValidationSummary Of(IReadOnlyList<IReadOnlyDictionary<string, double>> folds)
    {
        var names = folds.SelectMany(f => f.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var mean = new Dictionary<string, double>(StringComparer.Ordinal);
        var std = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            var values = folds.Where(f => f.ContainsKey(name)).Select(f => f[name]).ToArray();
            var m = values.Average();
            mean[name] = m;
            std[name] = values.Length > 1 ? Math.Sqrt(values.Sum(v => (v - m) * (v - m)) / (values.Length - 1)) : 0;
        }

        return new CrossValidationSummary(folds.Count, mean, std, folds);
    }
}

/// <summary>Event names the sweep listens to.</summary>
public static class SweepEvents
{
    /// <summary>A running trial's metrics after a step: raised on the sweep by the trial (TrainModel or a stand-in).</summary>
    public const string TrialProgress = "TrialProgress";
}

/// <summary>Body of <see cref="SweepEvents.TrialProgress"/>: which trial (its instance id) and its metrics at a step.</summary>
public sealed record TrialProgress(string TrialInstanceId, MetricStep Step);

/// <summary>A finished trial as the sweep remembers it across generations (ContinueAsNew).</summary>
public sealed record TrialRecord(
    int Index,
    string TrialId,
    ParameterSet Parameters,
    TrialState State,
    double? Objective,
    double? Secondary,
    int? Budget,
    string? Bracket,
    IReadOnlyList<double> ObjectiveCurve,
    string? Error = null);

/// <summary>The sweep's state carried into the next generation.</summary>
public sealed record SweepState(
    int Generation,
    int Started,
    IReadOnlyList<TrialRecord> Finished,
    bool Exhausted,
    DateTime StartedAt);

/// <summary>Input of the <c>HyperparameterSweep</c> orchestration. <see cref="State"/> is null on the first generation.</summary>
public sealed record SweepInput(SweepSpec Spec, SweepState? State = null);

/// <summary>A trial in results and status: id, parameters, objective values, state.</summary>
public sealed record TrialSummary(
    string TrialId,
    ParameterSet Parameters,
    TrialState State,
    double? Objective,
    double? Secondary,
    int? Budget,
    string? Error);

/// <summary>Custom status of a running sweep.</summary>
public sealed record SweepStatus(
    string Sweep,
    int Generation,
    int Done,
    int Running,
    int Failed,
    int EarlyStopped,
    int Started,
    TrialSummary? Best,
    string State);

/// <summary>How a sweep ended and what it found.</summary>
public sealed record SweepResult(
    string SweepId,
    string Outcome,
    string Reason,
    TrialSummary? Best,
    IReadOnlyList<TrialSummary>? ParetoFront,
    IReadOnlyList<TrialSummary> Trials,
    int Generations);

/// <summary>Outcome values of <see cref="SweepResult.Outcome"/>.</summary>
public static class SweepOutcomes
{
    public const string GoalReached = "GoalReached";
    public const string MaxTrialsReached = "MaxTrialsReached";
    public const string SpaceExhausted = "SpaceExhausted";
}

/// <summary>Input of the suggestion activity: the spec and what has been observed so far.</summary>
public sealed record SuggestTrialsInput(SweepSpec Spec, IReadOnlyList<TrialObservation> History, int Count);

/// <summary>Input of the <c>StandInTrial</c> sub-orchestration.</summary>
/// <param name="ProgressTo">The sweep's instance id, which gets a <see cref="TrialProgress"/> per epoch.</param>
/// <param name="Fold">Cross-validation fold (0-based) or null: a fold shifts the result slightly, as data would.</param>
public sealed record StandInTrialInput(string TrialId, ParameterSet Parameters, StandInTrialSpec Spec, int? Budget, string? ProgressTo, int? Fold = null);

/// <summary>Input of the stand-in evaluation activity.</summary>
public sealed record EvaluateStandInInput(string TrialId, ParameterSet Parameters, StandInTrialSpec Spec, int Epochs, int? Fold);

/// <summary>
/// Input of the <c>CrossValidate</c> orchestration: k copies of one trial, each holding out one fold.
/// Exactly one of <see cref="Job"/> and <see cref="StandIn"/> is set.
/// </summary>
public sealed record CrossValidationInput(string TrialId, int Folds, Training.TrainingJob? Job, StandInTrialInput? StandIn, int MaxAttempts = 2, int HeartbeatTimeoutSeconds = 300);
