using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MlFunctions.Core.Sweeps;

// Our samplers on the standard test functions, each seed a sequential ask/tell loop (ask one point,
// evaluate, append to the history), as optuna.study.optimize runs with n_jobs=1. Writes
//   problems.json: each function's bounds and its value at probe points (optuna_side.py checks its own
//                  definitions against them, so both sides optimize the same functions on the same bounds);
//   ours.jsonl:    one line per (algorithm, function, seed) with the best value after 25 and 50 trials.
// Usage: MlFunctions.Bench.Hpo <out folder> [seeds] [algorithms, comma-separated] [settings: "auto.gpTrials=20;cmaes.sigma0=0.2"]
var outDir = args.Length > 0 ? args[0] : ".";
var seeds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10;
var algorithms = (args.Length > 2 ? args[2] : "random,sobol,tpe,gp,cmaes,auto").Split(',', StringSplitOptions.RemoveEmptyEntries);
var settings = (args.Length > 3 ? args[3] : string.Empty).Split(';', StringSplitOptions.RemoveEmptyEntries)
    .Select(s => (Algorithm: s[..s.IndexOf('.')], Key: s[(s.IndexOf('.') + 1)..s.IndexOf('=')], Value: s[(s.IndexOf('=') + 1)..]))
    .GroupBy(s => s.Algorithm)
    .ToDictionary(g => g.Key, g => (IReadOnlyDictionary<string, string>)g.ToDictionary(s => s.Key, s => s.Value));
int[] checkpoints = [25, 50];
var budget = checkpoints.Max();
(string Name, int Dimensions)[] functions = [("branin", 2), ("hartmann6", 6), ("rosenbrock", 4), ("ackley", 5)];

var problems = functions.Select(f =>
{
    var space = StandInObjectives.StandardSpace(f.Name, f.Dimensions);
    var probes = Enumerable.Range(0, 3).Select(k => space.Parameters.Select((p, i) => p.Min!.Value + ((p.Max!.Value - p.Min.Value) * (((k + 1) * 0.29 + i * 0.17) % 1.0))).ToArray()).ToArray();
    return new
    {
        name = f.Name,
        minimum = StandInObjectives.Minimum(f.Name),
        bounds = space.Parameters.Select(p => new[] { p.Min!.Value, p.Max!.Value }).ToArray(),
        probes = probes.Select(x => new { x, value = Value(f.Name, x) }).ToArray(),
    };
}).ToArray();
Directory.CreateDirectory(outDir);
File.WriteAllText(Path.Combine(outDir, "problems.json"), JsonSerializer.Serialize(problems));

using var results = new StreamWriter(Path.Combine(outDir, "ours.jsonl"));
foreach (var name in algorithms)
{
    var algorithm = SuggestionAlgorithms.Get(name);
    var own = settings.GetValueOrDefault(name);
    foreach (var (function, dimensions) in functions)
    {
        var space = StandInObjectives.StandardSpace(function, dimensions);
        var clock = Stopwatch.StartNew();
        var bests = new double[seeds][];

        // Each seed is a pure function of its seed: in parallel, the results are the same as in sequence.
        Parallel.For(0, seeds, seed =>
        {
            var history = new List<TrialObservation>();
            var best = double.PositiveInfinity;
            var at = new List<double>();
            for (var i = 0; i < budget; i++)
            {
                var s = algorithm.Suggest(new SuggestionRequest(space, ObjectiveDirection.Minimize, history, 1, seed, own)).Suggestions.Single();
                var value = StandInObjectives.Evaluate(function, s.Parameters);
                best = Math.Min(best, value);
                history.Add(new TrialObservation($"t{i:D3}", s.Parameters, TrialState.Succeeded, value));
                if (checkpoints.Contains(i + 1))
                {
                    at.Add(best);
                }
            }

            bests[seed] = at.ToArray();
        });
        var seconds = clock.Elapsed.TotalSeconds;
        for (var seed = 0; seed < seeds; seed++)
        {
            results.WriteLine(JsonSerializer.Serialize(new { side = "ours", sampler = name, function, seed, best = checkpoints.Zip(bests[seed]).ToDictionary(p => p.First.ToString(CultureInfo.InvariantCulture), p => p.Second), seconds = seconds / seeds }));
        }

        Console.Error.WriteLine($"  ours {name,-7} {function,-11} {seconds,6:F1} s for {seeds} seeds");
    }
}

static double Value(string function, double[] x)
{
    var p = new ParameterSet();
    for (var i = 0; i < x.Length; i++)
    {
        p[$"x{i + 1}"] = ParameterSet.Format(x[i]);
    }

    return StandInObjectives.Evaluate(function, p);
}
