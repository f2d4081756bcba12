using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using MlFunctions.Core.Sweeps;
using MlFunctions.Tests.Engine;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Sweeps;

/// <summary>
/// A real sweep in a host process, killed with SIGKILL mid-sweep and restarted: it completes, and the
/// trials that had finished before the kill never run again (Katib can only restart a finished experiment).
/// </summary>
[Collection(nameof(MultiProcessCollection))]
public sealed class SweepCrashTests(ITestOutputHelper output) : IDisposable
{
    private const string Key = "test-key";
    private readonly string work = Directory.CreateTempSubdirectory("mlf-sweep-crash-").FullName;

    [Fact]
    public async Task AKilledSweepResumesWithoutRerunningFinishedTrials()
    {
        var storage = await TestStorage.ConnectionStringAsync();
        var hub = TestStorage.NewTaskHub("sweepcrash");
        var journal = Path.Combine(work, "journal.txt");
        var args = new[] { "--Probe:JournalPath", journal };
        var spec = new
        {
            name = "crash",
            parameters = new object[] { new { name = "x1", kind = "double", min = -2, max = 2 }, new { name = "x2", kind = "double", min = -2, max = 2 } },
            algorithm = "random",
            objective = new { metric = "loss", direction = "minimize" },
            parallelTrialCount = 2,
            maxTrialCount = 6,
            trial = new { standIn = new { function = "sphere", epochs = 2, epochDelayMs = 1500 } },
        };

        string id;
        HashSet<string> finishedBeforeKill;
        await using (var first = await HostProcess.StartAsync(storage, hub, Key, Path.Combine(work, "a"), args))
        {
            using var api = new ApiClient(first.BaseUrl, Key);
            var start = await api.Http.PostAsJsonAsync("api/sweeps?instanceId=crash-sweep", spec);
            Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
            id = "crash-sweep";

            // Kill once at least two trials are tracked as finished and others are in flight.
            finishedBeforeKill = await Eventually.GetAsync(
                async () => await TrackedAsync(api, id),
                done => done.Count >= 2,
                TimeSpan.FromMinutes(3),
                "two trials finished");
            first.KillHard();
            output.WriteLine($"killed pid {first.Pid} after trials {string.Join(", ", finishedBeforeKill)}");
        }

        await using var second = await HostProcess.StartAsync(storage, hub, Key, Path.Combine(work, "b"), args);
        using var api2 = new ApiClient(second.BaseUrl, Key);
        var (status, final) = await api2.WaitDoneAsync(id, TimeSpan.FromMinutes(4));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Completed", (string?)final!["runtimeStatus"]);
        Assert.Equal(6, final["output"]!["trials"]!.AsArray().Count);

        var lines = File.ReadAllLines(journal).Select(l => l.Split(' ')).Where(p => p.Length == 4).ToList();
        foreach (var l in lines)
            output.WriteLine(string.Join(' ', l));
        foreach (var trial in finishedBeforeKill)
            Assert.Equal(1, lines.Count(l => l[0] == "start" && l[1] == trial));
        Assert.Contains(lines, l => l[3] == second.Pid.ToString());
        Assert.Equal(6, (await TrackedAsync(api2, id)).Count);
    }

    /// <summary>
    /// PBT killed after its first generation: the resumed sweep finishes every generation, reruns no finished trial,
    /// and each later generation is exactly what <see cref="PbtSearch"/> decides from the recorded generation before it
    /// (the same exploit parents and explored hyperparameters as without the crash).
    /// </summary>
    [Fact]
    public async Task AKilledPbtSweepResumesWithTheSameExploitAndExploreDecisions()
    {
        var storage = await TestStorage.ConnectionStringAsync();
        var hub = TestStorage.NewTaskHub("pbtcrash");
        var journal = Path.Combine(work, "pbt-journal.txt");
        var args = new[] { "--Probe:JournalPath", journal };
        var settings = new Dictionary<string, string> { ["population"] = "3", ["generations"] = "3", ["interval"] = "1" };
        var space = new SearchSpace([ParameterSpec.Double("x1", -2, 2), ParameterSpec.Double("x2", -2, 2)]);
        var spec = new
        {
            name = "pbt-crash",
            parameters = new object[] { new { name = "x1", kind = "double", min = -2, max = 2 }, new { name = "x2", kind = "double", min = -2, max = 2 } },
            algorithm = "pbt",
            algorithmSettings = settings,
            objective = new { metric = "loss", direction = "minimize" },
            parallelTrialCount = 3,
            maxTrialCount = 9,
            seed = 3,
            trial = new { standIn = new { function = "sphere", epochs = 1, epochDelayMs = 1500 } },
        };

        const string id = "pbt-crash-sweep";
        HashSet<string> finishedBeforeKill;
        await using (var first = await HostProcess.StartAsync(storage, hub, Key, Path.Combine(work, "pa"), args))
        {
            using var api = new ApiClient(first.BaseUrl, Key);
            Assert.Equal(HttpStatusCode.Accepted, (await api.Http.PostAsJsonAsync($"api/sweeps?instanceId={id}", spec)).StatusCode);
            finishedBeforeKill = await Eventually.GetAsync(async () => await TrackedAsync(api, id), done => done.Count >= 3, TimeSpan.FromMinutes(3), "generation 0 finished");
            first.KillHard();
            output.WriteLine($"killed pid {first.Pid} after trials {string.Join(", ", finishedBeforeKill)}");
        }

        await using var second = await HostProcess.StartAsync(storage, hub, Key, Path.Combine(work, "pb"), args);
        using var api2 = new ApiClient(second.BaseUrl, Key);
        var (status, final) = await api2.WaitDoneAsync(id, TimeSpan.FromMinutes(4));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Completed", (string?)final!["runtimeStatus"]);
        Assert.Equal(9, final["output"]!["trials"]!.AsArray().Count);

        var lines = File.ReadAllLines(journal).Select(l => l.Split(' ')).Where(p => p.Length == 4).ToList();
        foreach (var trial in finishedBeforeKill)
            Assert.Equal(1, lines.Count(l => l[0] == "start" && l[1] == trial));

        // Replay the decisions from the tracked trials: generation g must be PBT's answer to generations < g.
        var body = await (await api2.Http.GetAsync($"api/sweeps/{id}/trials")).Content.ReadFromJsonAsync<JsonObject>();
        var trials = body!["trials"]!.AsArray().Select(t => t!.AsObject()).Select(t => (
            Id: (string)t["runId"]!,
            Bracket: (string)t["tags"]!["bracket"]!,
            Parent: (string?)t["tags"]!["warm_start_from"],
            Parameters: new ParameterSet(t["params"]!.AsObject().ToDictionary(p => p.Key, p => (string)p.Value!)),
            Objective: (double)t["objective"]!)).ToList();
        var pbt = SuggestionAlgorithms.Get("pbt");
        for (var g = 1; g < 3; g++)
        {
            var before = trials.Where(t => PbtSearch.ParseTag(t.Bracket)!.Value.Generation < g)
                .Select(t => new TrialObservation(t.Id, t.Parameters, TrialState.Succeeded, t.Objective, null, t.Bracket)).ToList();
            var decided = pbt.Suggest(new SuggestionRequest(space, ObjectiveDirection.Minimize, before, 3, 3, settings)).Suggestions;
            var actual = trials.Where(t => PbtSearch.ParseTag(t.Bracket)!.Value.Generation == g).OrderBy(t => t.Bracket, StringComparer.Ordinal).ToList();
            Assert.Equal(decided.Select(d => $"{d.Bracket} {d.Parent} {d.Parameters.Describe()}"), actual.Select(a => $"{a.Bracket} {a.Parent} {a.Parameters.Describe()}"));
            output.WriteLine($"generation {g}: " + string.Join("; ", actual.Select(a => $"{a.Bracket} from {a.Parent}: loss {a.Objective:F4}")));
        }
    }

    private static async Task<HashSet<string>> TrackedAsync(ApiClient api, string id)
    {
        var response = await api.Http.GetAsync($"api/sweeps/{id}/trials");
        if (!response.IsSuccessStatusCode)
            return [];
        var body = await response.Content.ReadFromJsonAsync<JsonObject>();
        return body!["trials"]!.AsArray().Select(t => (string)t!["runId"]!).ToHashSet();
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(work, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
