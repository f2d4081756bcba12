using MlFunctions.Activities.Probes;
using MlFunctions.Core.Sweeps;

namespace MlFunctions.Activities.Sweeps;

/// <summary>
/// The "ask" of ask/tell: the algorithm is a pure function of the recorded history, run here so that
/// its cost (a GP's Cholesky, TPE's density ratios) stays out of the orchestration's replay, and its
/// answer is recorded in the history like any activity result.
/// </summary>
public sealed class SuggestTrialsActivity : IActivity<SuggestTrialsInput, SuggestionResult>
{
    public Task<SuggestionResult> RunAsync(SuggestTrialsInput input, ActivityCall call)
    {
        var spec = input.Spec;
        var algorithm = SuggestionAlgorithms.Get(spec.Algorithm);
        return Task.FromResult(algorithm.Suggest(new SuggestionRequest(
            spec.Space, spec.Objective.Direction, input.History, input.Count, spec.Seed, spec.AlgorithmSettings)));
    }
}

/// <summary>
/// A stand-in trial's "training": the closed-form objective of its parameters as a learning curve. It
/// journals start and end (as the probe steps do) so crash tests can tell which trials ran, and how often.
/// </summary>
public sealed class EvaluateStandInActivity(ProbeJournal journal) : IActivity<EvaluateStandInInput, List<double>>
{
    public async Task<List<double>> RunAsync(EvaluateStandInInput input, ActivityCall call)
    {
        await journal.WriteAsync("start", call.InstanceId, input.Fold ?? 0);
        if (input.Spec.FailWhen is { } failWhen)
        {
            var (name, value) = failWhen.Split('=', 2) is [var n, var v] ? (n, v) : (failWhen, string.Empty);
            if (input.Parameters.TryGetValue(name, out var actual) && actual == value)
            {
                throw new InvalidOperationException($"stand-in trial {input.TrialId} fails by design: {name} = {value} (failWhen)");
            }
        }

        var loss = StandInObjectives.Evaluate(input.Spec.Function, input.Parameters);

        // A fold sees slightly different data: shift the result by a small fold-dependent amount, so the
        // folds' spread (the reported std) is not zero.
        if (input.Fold is { } fold)
        {
            loss += 0.01 * (fold - 1) * (Math.Abs(loss) + 1);
        }

        await journal.WriteAsync("end", call.InstanceId, input.Fold ?? 0);
        return StandInObjectives.Curve(loss, input.Epochs).ToList();
    }
}
