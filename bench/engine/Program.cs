using System.Diagnostics;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Activities;
using MlFunctions.Core;
using MlFunctions.Core.Probes;
using MlFunctions.Local.Engine;
using MlFunctions.Local.Storage;

// Measures the embedded engine itself: FanOutProbe with 100 and 1,000 no-op activities (activities/s)
// and a 10-step sequential no-op probe (median per-step overhead). The engine runs on Azurite exactly
// as the local host runs it; only HTTP is left out, since it is not what is measured.
var repeats = args.Length > 0 ? int.Parse(args[0]) : 3;
var data = Directory.CreateTempSubdirectory("mlf-bench-").FullName;
await using var azurite = await Azurite.StartAsync(data, NullLogger.Instance);
var services = new ServiceCollection().AddMlActivities().BuildServiceProvider();
await using var engine = await DurableEngine.StartAsync(
    new EngineOptions { StorageConnectionString = azurite.ConnectionString, TaskHubName = "bench" + Guid.NewGuid().ToString("N")[..8] },
    services,
    LoggerFactory.Create(b => b.AddFilter(_ => false)));
var client = engine.Client;

async Task<double> RunAsync(FanOutProbeInput input)
{
    var clock = Stopwatch.StartNew();
    var id = await client.ScheduleNewOrchestrationInstanceAsync(OrchestrationNames.FanOutProbe, input);
    var done = await client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true);
    clock.Stop();
    if (done.RuntimeStatus != OrchestrationRuntimeStatus.Completed || done.ReadOutputAs<int>() != input.Count)
    {
        throw new InvalidOperationException($"probe {id} ended {done.RuntimeStatus}: {done.SerializedOutput}");
    }

    return clock.Elapsed.TotalSeconds;
}

static double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);

// Warm-up: the first orchestration on a new hub pays for partition leases and queue creation.
await RunAsync(new FanOutProbeInput(10));

var fan100 = new List<double>();
var fan1000 = new List<double>();
var step = new List<double>();
for (var i = 0; i < repeats; i++)
{
    var s100 = await RunAsync(new FanOutProbeInput(100));
    fan100.Add(100 / s100);
    var s1000 = await RunAsync(new FanOutProbeInput(1000));
    fan1000.Add(1000 / s1000);
    var s10 = await RunAsync(new FanOutProbeInput(10, 0, Sequential: true));
    step.Add(s10 * 1000 / 10);
    Console.WriteLine($"run {i + 1}: fanout100 {100 / s100:F1}/s ({s100:F2} s), fanout1000 {1000 / s1000:F1}/s ({s1000:F2} s), sequential10 {s10 * 100:F1} ms/step");
}

Console.WriteLine(
    $"RESULT engine fanout100_per_s={Median(fan100):F1} fanout1000_per_s={Median(fan1000):F1} step_overhead_ms={Median(step):F1}");
Directory.Delete(data, recursive: true);
