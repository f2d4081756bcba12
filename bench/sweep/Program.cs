using System.Diagnostics;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Activities;
using MlFunctions.Core;
using MlFunctions.Core.Sweeps;
using MlFunctions.Local.Engine;
using MlFunctions.Local.Storage;

// The platform's cost per trial: sweeps of stand-in trials (they train nothing; the objective is a
// closed-form function evaluated in microseconds) on the embedded engine over Azurite, as the local
// host runs them. A 100-trial sweep with 10 in parallel gives throughput; a sequential sweep gives the
// per-trial overhead (suggestion activity, trial sub-orchestration, its activity and events, tracking),
// minus the same trials evaluated in a bare in-process loop — the peer.
var trials = args.Length > 0 ? int.Parse(args[0]) : 100;
var sequentialTrials = args.Length > 1 ? int.Parse(args[1]) : 20;
var data = Directory.CreateTempSubdirectory("mlf-bench-sweep-").FullName;
await using var azurite = await Azurite.StartAsync(data, NullLogger.Instance);
var storage = azurite.ConnectionString;
var services = new ServiceCollection()
    .AddMlActivities()
    .AddSingleton<MlFunctions.Activities.Storage.IStorageClients>(new MlFunctions.Activities.Storage.ConnectionStringStorageClients(_ => Task.FromResult(storage)))
    .BuildServiceProvider();
await using var engine = await DurableEngine.StartAsync(
    new EngineOptions { StorageConnectionString = storage, TaskHubName = "benchsweep" + Guid.NewGuid().ToString("N")[..8] },
    services,
    LoggerFactory.Create(b =>
    {
        // MLF_BENCH_LOG=1 shows the engine's warnings (for a sweep that does not finish).
        if (Environment.GetEnvironmentVariable("MLF_BENCH_LOG") == "1")
            b.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
        else
            b.AddFilter(_ => false);
    }));
var client = engine.Client;

SweepSpec Spec(int max, int parallel) => new()
{
    Name = "bench",
    Parameters = [ParameterSpec.Double("x1", -5, 10), ParameterSpec.Double("x2", 0, 15)],
    Algorithm = "random",
    Objective = new SweepObjective(StandInObjectives.Loss, ObjectiveDirection.Minimize),
    ParallelTrialCount = parallel,
    MaxTrialCount = max,
    Trial = new TrialTemplate { StandIn = new StandInTrialSpec("branin", Epochs: 1) },
};

async Task<double> RunAsync(SweepSpec spec)
{
    var clock = Stopwatch.StartNew();
    var id = await client.ScheduleNewOrchestrationInstanceAsync(OrchestrationNames.HyperparameterSweep, new SweepInput(spec));
    using var wait = new CancellationTokenSource();
    var waiting = client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, wait.Token);
    // With MLF_BENCH_LOG=1, every 10 s: the sweep's status and its unfinished trials (for a sweep that stalls).
    while (await Task.WhenAny(waiting, Task.Delay(10_000)) != waiting)
    {
        if (Environment.GetEnvironmentVariable("MLF_BENCH_LOG") != "1")
            continue;

        var state = await client.GetInstanceAsync(id, getInputsAndOutputs: true);
        Console.Error.WriteLine($"  {id}: {state?.RuntimeStatus} {state?.SerializedCustomStatus}");
        await foreach (var sub in client.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = id + "-", FetchInputsAndOutputs = true }))
        {
            if (sub.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
                Console.Error.WriteLine($"    {sub.InstanceId}: {sub.RuntimeStatus} created {sub.CreatedAt:O} updated {sub.LastUpdatedAt:O}");
        }
    }

    var done = await waiting;
    clock.Stop();
    var result = done.ReadOutputAs<SweepResult>();
    if (done.RuntimeStatus != OrchestrationRuntimeStatus.Completed || result?.Trials.Count != spec.MaxTrialCount)
    {
        throw new InvalidOperationException($"sweep {id} ended {done.RuntimeStatus}: {done.SerializedOutput} {done.FailureDetails?.ErrorMessage}");
    }

    if (spec.ParallelTrialCount == 1)
    {
        // Where a sequential trial's time goes: the sweep's episodes (each replays its history) and
        // activities per trial, and one trial sub-orchestration's.
        var sweepHistory = await client.GetHistoryJsonAsync(id);
        var trialHistory = await client.GetHistoryJsonAsync(id + "-t002");
        Console.WriteLine($"sequential sweep per trial: {Count(sweepHistory, 12) / spec.MaxTrialCount:F2} sweep episodes, "
            + $"{Count(sweepHistory, 4) / spec.MaxTrialCount:F2} sweep activities, {Count(sweepHistory, -1) / spec.MaxTrialCount:F1} sweep history events; "
            + $"a trial: {Count(trialHistory, 12):F0} episodes, {Count(trialHistory, 4):F0} activity; "
            + $"{(done.LastUpdatedAt - done.CreatedAt).TotalMilliseconds / spec.MaxTrialCount:F1} ms/trial from the sweep's start to its end in the instance table");
    }

    return clock.Elapsed.TotalSeconds;
}

// History events of a type (DTFx EventType: 4 TaskScheduled, 12 OrchestratorStarted; -1 all).
static double Count(string? historyJson, int eventType) =>
    System.Text.Json.JsonDocument.Parse(historyJson ?? "[]").RootElement.EnumerateArray()
        .Count(e => eventType < 0 || e.GetProperty("EventType").GetInt32() == eventType);

// Warm-up: the first orchestration on a new hub pays for partition leases and queue creation.
await RunAsync(Spec(4, 2));

var wall = await RunAsync(Spec(trials, 10));
Console.WriteLine($"sweep of {trials} stand-in trials, 10 in parallel: {wall:F2} s, {trials / wall:F1} trials/s");

var sequential = await RunAsync(Spec(sequentialTrials, 1));

// The peer: the same algorithm and objective with no platform around them.
var bare = Stopwatch.StartNew();
var history = new List<TrialObservation>();
var algorithm = SuggestionAlgorithms.Get("random");
var spec = Spec(sequentialTrials, 1);
for (var i = 0; i < sequentialTrials; i++)
{
    var s = algorithm.Suggest(new SuggestionRequest(spec.Space, ObjectiveDirection.Minimize, history, 1, spec.Seed)).Suggestions[0];
    var loss = StandInObjectives.Evaluate("branin", s.Parameters);
    history.Add(new TrialObservation($"t{i}", s.Parameters, TrialState.Succeeded, loss));
}

bare.Stop();
var perTrialMs = sequential * 1000 / sequentialTrials;
var bareMs = bare.Elapsed.TotalMilliseconds / sequentialTrials;
Console.WriteLine($"sequential sweep of {sequentialTrials}: {sequential:F2} s, {perTrialMs:F1} ms/trial; bare loop {bareMs:F3} ms/trial");
Console.WriteLine($"RESULT sweep trials_per_s={trials / wall:F1} overhead_ms_per_trial={perTrialMs - bareMs:F1}");
Directory.Delete(data, recursive: true);
