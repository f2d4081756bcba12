using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
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
