using MlFunctions.Core.Training;

namespace MlFunctions.Core.Sweeps;

/// <summary>What a sweep optimizes (Katib's <c>objective</c>).</summary>
/// <param name="Metric">A trial metric name, e.g. <c>val_accuracy</c> or <c>val_loss</c>.</param>
/// <param name="Goal">Ends the sweep as soon as a trial reaches it (≥ when maximizing, ≤ when minimizing).</param>
/// <param name="AdditionalMetrics">Recorded and shown beside the objective; not optimized.</param>
public sealed record SweepObjective(
    string Metric,
    ObjectiveDirection Direction = ObjectiveDirection.Maximize,
    double? Goal = null,
    IReadOnlyList<string>? AdditionalMetrics = null);

/// <summary>
/// An optional second objective: the sweep then reports the Pareto front of both instead of a single
/// best. Katib cannot do this (kubeflow/katib #1549).
/// </summary>
public sealed record SecondaryObjective(string Metric, ObjectiveDirection Direction = ObjectiveDirection.Minimize);

/// <summary>Katib's median stopping rule settings (<c>earlyStopping.algorithmName: medianstop</c>).</summary>
/// <param name="MinTrialsRequired">Completed trials needed before any trial is stopped (Katib's min_trials_required).</param>
/// <param name="StartStep">First step (epoch) at which a trial may be stopped (Katib's start_step).</param>
public sealed record EarlyStoppingSpec(string Algorithm = "medianstop", int MinTrialsRequired = 3, int StartStep = 4);

/// <summary>
/// A trial that trains nothing: the objective is a closed-form test function of the parameters,
/// reported over a few "epochs" that converge to it. It exercises everything a real trial does (events,
/// early stopping, failures, tracking) in milliseconds, for tests and for measuring the platform's own
/// overhead per trial.
/// </summary>
/// <param name="Function">branin, hartmann6, rosenbrock, ackley or sphere.</param>
/// <param name="EpochDelayMs">Durable wait between epochs (0: none); gives early stopping a window.</param>
/// <param name="FailWhen">"param=value": a trial with that parameter value fails (to exercise the failure limit).</param>
public sealed record StandInTrialSpec(string Function = "sphere", int Epochs = 3, int EpochDelayMs = 0, string? FailWhen = null);

/// <summary>
/// How each trial runs. <see cref="Job"/> is the template for real trials: the suggested parameters
/// override its hyperparameters (and its model, for a <c>model</c> parameter). Exactly one of
/// <see cref="Job"/> and <see cref="StandIn"/> is set.
/// </summary>
public sealed record TrialTemplate
{
    public TrainingJob? Job { get; init; }

    public StandInTrialSpec? StandIn { get; init; }

    /// <summary>Re-dispatches per trial (see <see cref="TrainModelInput.MaxAttempts"/>).</summary>
    public int MaxAttempts { get; init; } = 2;

    public int HeartbeatTimeoutSeconds { get; init; } = 300;
}

/// <summary>
/// A hyperparameter sweep, Katib's Experiment as a record: search space, algorithm, objective, budget,
/// early stopping, and how each trial runs.
/// </summary>
public sealed record SweepSpec
{
    public required string Name { get; init; }

    public required IReadOnlyList<ParameterSpec> Parameters { get; init; }

    /// <summary>
    /// grid, random, sobol, tpe, gp, cmaes, hyperband, pbt (population-based training, <see cref="PbtSearch"/>) or auto (the default: it picks TPE, GP-EI or CMA-ES
    /// from the space and the trials so far; see <see cref="AutoSearch"/>).
    /// </summary>
    public string Algorithm { get; init; } = "auto";

    /// <summary>Algorithm settings, e.g. hyperband's maxEpochs and eta, tpe's nStartup.</summary>
    public IReadOnlyDictionary<string, string>? AlgorithmSettings { get; init; }

    public required SweepObjective Objective { get; init; }

    public SecondaryObjective? SecondaryObjective { get; init; }

    public int ParallelTrialCount { get; init; } = 2;

    public int MaxTrialCount { get; init; } = 10;

    /// <summary>The sweep fails when more trials than this have failed (Katib's maxFailedTrialCount).</summary>
    public int MaxFailedTrialCount { get; init; } = 3;

    /// <summary>A trial still running after this long is asked to stop and counted as failed.</summary>
    public int TrialTimeoutSeconds { get; init; } = 3600;

    public EarlyStoppingSpec? EarlyStopping { get; init; }

    /// <summary>Scores each trial by k-fold cross-validation (mean over folds) when ≥ 2.</summary>
    public int? CrossValidationFolds { get; init; }

    public long Seed { get; init; } = 1;

    public required TrialTemplate Trial { get; init; }

    /// <summary>
    /// Finished trials per orchestration generation: after this many, the sweep lets its running trials
    /// finish and continues as new, so its history stays bounded however long the sweep runs.
    /// </summary>
    public int TrialsPerGeneration { get; init; } = 40;

    [System.Text.Json.Serialization.JsonIgnore]
    public SearchSpace Space => new(Parameters ?? []);

    /// <summary>Every problem with the spec, so a user fixes them in one go; empty when it can run.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(Name))
        {
            problems.Add("name is required");
        }

        problems.AddRange(SearchSpaceValidation.Validate(Space));

        if (!SuggestionAlgorithms.TryGet(Algorithm, out var algorithm))
        {
            problems.Add($"unknown algorithm '{Algorithm}'; known: {string.Join(", ", SuggestionAlgorithms.Names)}");
        }
        else if (Parameters is { Count: > 0 })
        {
            problems.AddRange(algorithm!.ValidateSettings(Space, AlgorithmSettings));
        }

        if (Objective is null || string.IsNullOrWhiteSpace(Objective.Metric))
        {
            problems.Add("objective.metric is required");
        }

        if (SecondaryObjective is not null && string.IsNullOrWhiteSpace(SecondaryObjective.Metric))
        {
            problems.Add("secondaryObjective.metric is required when secondaryObjective is given");
        }

        if (ParallelTrialCount < 1)
        {
            problems.Add($"parallelTrialCount must be at least 1, got {ParallelTrialCount}");
        }

        if (MaxTrialCount < 1)
        {
            problems.Add($"maxTrialCount must be at least 1, got {MaxTrialCount}");
        }

        if (MaxFailedTrialCount < 0)
        {
            problems.Add($"maxFailedTrialCount must not be negative, got {MaxFailedTrialCount}");
        }

        if (TrialTimeoutSeconds < 1)
        {
            problems.Add($"trialTimeoutSeconds must be at least 1, got {TrialTimeoutSeconds}");
        }

        if (TrialsPerGeneration < 1)
        {
            problems.Add($"trialsPerGeneration must be at least 1, got {TrialsPerGeneration}");
        }

        if (EarlyStopping is not null)
        {
            if (!string.Equals(EarlyStopping.Algorithm, "medianstop", StringComparison.OrdinalIgnoreCase))
            {
                problems.Add($"unknown earlyStopping.algorithm '{EarlyStopping.Algorithm}'; known: medianstop");
            }

            if (EarlyStopping.MinTrialsRequired < 1)
            {
                problems.Add($"earlyStopping.minTrialsRequired must be at least 1, got {EarlyStopping.MinTrialsRequired}");
            }

            if (EarlyStopping.StartStep < 1)
            {
                problems.Add($"earlyStopping.startStep must be at least 1, got {EarlyStopping.StartStep}");
            }
        }

        if (CrossValidationFolds is { } folds && folds is < 2 or > 20)
        {
            problems.Add($"crossValidationFolds must be between 2 and 20, got {folds}");
        }

        problems.AddRange(ValidateTrial());
        return problems;
    }

    private IEnumerable<string> ValidateTrial()
    {
        if (Trial is null || (Trial.Job is null) == (Trial.StandIn is null))
        {
            yield return "trial must set exactly one of job (a training job template) and standIn";
            yield break;
        }

        if (Trial.StandIn is { } standIn)
        {
            if (!StandInObjectives.Known.Contains(standIn.Function, StringComparer.OrdinalIgnoreCase))
            {
                yield return $"unknown trial.standIn.function '{standIn.Function}'; known: {string.Join(", ", StandInObjectives.Known)}";
            }

            if (standIn.Epochs is < 1 or > 1000)
            {
                yield return $"trial.standIn.epochs must be between 1 and 1000, got {standIn.Epochs}";
            }

            if (standIn.EpochDelayMs is < 0 or > 600_000)
            {
                yield return $"trial.standIn.epochDelayMs must be between 0 and 600000, got {standIn.EpochDelayMs}";
            }

            if (Objective is not null && !StandInObjectives.Metrics.Contains(Objective.Metric))
            {
                yield return $"objective.metric '{Objective.Metric}' is not reported by stand-in trials; they report {string.Join(", ", StandInObjectives.Metrics)}";
            }

            yield break;
        }

        foreach (var p in Parameters ?? [])
        {
            if (!TrialJobs.Parameters.Contains(p.Name, StringComparer.Ordinal))
            {
                yield return $"parameter '{p.Name}' does not map to a training hyperparameter; known: {string.Join(", ", TrialJobs.Parameters)}";
            }
        }

        // Task metrics the worker reports per epoch as val_{name} (val_auc for two classes, val_hr@10 for ranking) count too.
        var metrics = TrialMetrics.TrainingMetricNames
            .Concat(Metrics.MetricNames.Classification.Concat(Metrics.MetricNames.Ranking).Concat(Metrics.MetricNames.Regression).Select(m => $"val_{m}"))
            .Distinct(StringComparer.Ordinal).ToList();
        if (Objective is not null && !metrics.Contains(Objective.Metric))
        {
            yield return $"objective.metric '{Objective.Metric}' is not a training metric; known: {string.Join(", ", metrics)}";
        }

        if (SecondaryObjective is not null && !metrics.Contains(SecondaryObjective.Metric))
        {
            yield return $"secondaryObjective.metric '{SecondaryObjective.Metric}' is not a training metric; known: {string.Join(", ", metrics)}";
        }

        if (Trial.Job!.Data is null)
        {
            yield return "trial.job.data (the prepared dataset) is required";
        }
    }
}
