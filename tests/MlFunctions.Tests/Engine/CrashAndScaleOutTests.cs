using System.Net;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Engine;

/// <summary>
/// The engine in real host processes: kill -9 mid-orchestration and restart, and two hosts sharing one
/// task hub. The probe journal records every activity start and end with the process id.
/// </summary>
[Collection(nameof(MultiProcessCollection))]
public sealed class CrashAndScaleOutTests(ITestOutputHelper output) : IDisposable
{
    private const string Key = "test-key";
    private readonly string work = Directory.CreateTempSubdirectory("mlf-crash-").FullName;

    [Fact]
    public async Task KilledHostResumesOnRestartWithoutRerunningFinishedActivities()
    {
        var storage = await TestStorage.ConnectionStringAsync();
        var hub = TestStorage.NewTaskHub("crash");
        var journal = Path.Combine(work, "journal.txt");
        var journalArgs = new[] { "--Probe:JournalPath", journal };

        string id;
        HashSet<int> finishedBeforeKill;
        await using (var first = await HostProcess.StartAsync(storage, hub, Key, Path.Combine(work, "a"), journalArgs))
        {
            using var api = new ApiClient(first.BaseUrl, Key);
            var (response, body) = await api.StartAsync("FanOutProbe", new { count = 8, delayMs = 1500, sequential = true });
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            id = (string)body["id"]!;

            // Kill once two steps have finished and the third is in flight.
            await Eventually.GetAsync(() => Task.FromResult(Read(journal)), lines => lines.Count(l => l.Phase == "start") >= 3, TimeSpan.FromMinutes(2), "three steps started");
            first.KillHard();
            finishedBeforeKill = Read(journal).Where(l => l.Phase == "end").Select(l => l.Index).ToHashSet();
            output.WriteLine($"killed pid {first.Pid} after steps {string.Join(",", finishedBeforeKill)} finished");
        }

        await using var second = await HostProcess.StartAsync(storage, hub, Key, Path.Combine(work, "b"), journalArgs);
        using var api2 = new ApiClient(second.BaseUrl, Key);
        var (status, final) = await api2.WaitDoneAsync(id);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Completed", (string?)final!["runtimeStatus"]);
        Assert.Equal(8, (int)final["output"]!);

        var lines = Read(journal);
        foreach (var line in lines)
        {
            output.WriteLine($"{line.Phase} {line.Index} pid={line.Pid}");
        }

        Assert.NotEmpty(finishedBeforeKill);
        foreach (var index in finishedBeforeKill)
        {
            Assert.Equal(1, lines.Count(l => l.Phase == "start" && l.Index == index));
        }

        Assert.Equal(Enumerable.Range(0, 8), lines.Where(l => l.Phase == "end").Select(l => l.Index).Distinct().Order());
        Assert.Contains(lines, l => l.Pid == second.Pid);
    }

    [Fact]
    public async Task TwoHostsOnOneTaskHubShareTheWork()
    {
        var storage = await TestStorage.ConnectionStringAsync();
        var hub = TestStorage.NewTaskHub("scale");
        var journal = Path.Combine(work, "journal.txt");

        // A small activity limit per host makes one host unable to take the whole fan-out alone.
        var args = new[] { "--Probe:JournalPath", journal, "--Local:MaxConcurrentActivities", "4" };
        await using var a = await HostProcess.StartAsync(storage, hub, Key, Path.Combine(work, "a"), args);
        await using var b = await HostProcess.StartAsync(storage, hub, Key, Path.Combine(work, "b"), args);
        using var api = new ApiClient(a.BaseUrl, Key);
        var (response, body) = await api.StartAsync("FanOutProbe", new { count = 40, delayMs = 500 });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);

        // Either host answers for the instance: the state is in the shared task hub.
        using var apiB = new ApiClient(b.BaseUrl, Key);
        var (status, final) = await apiB.WaitDoneAsync((string)body["id"]!);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(40, (int)final!["output"]!);

        var byPid = Read(journal).Where(l => l.Phase == "end").GroupBy(l => l.Pid).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine(string.Join(", ", byPid.Select(p => $"pid {p.Key}: {p.Value} steps")));
        Assert.True(byPid.ContainsKey(a.Pid) && byPid.ContainsKey(b.Pid), "both hosts ran probe steps: " + string.Join(", ", byPid.Keys));
        Assert.Equal(40, byPid.Values.Sum());
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(work, recursive: true);
        }
        catch (IOException)
        {
            // A killed host may still hold a file for a moment; the temp folder is disposable.
        }
    }

    private static List<JournalLine> Read(string path)
    {
        if (!File.Exists(path))
        {
            return [];
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd()
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' '))
            .Where(p => p.Length == 4)
            .Select(p => new JournalLine(p[0], p[1], int.Parse(p[2]), int.Parse(p[3])))
            .ToList();
    }

    private sealed record JournalLine(string Phase, string InstanceId, int Index, int Pid);
}

/// <summary>
/// Multi-process engine tests run alone, after the parallel ones: with the rest of the suite (a training
/// worker, in-process hosts) competing for 2 cores, the two-hosts test twice saw its fan-out stall past
/// 3 minutes in CI, and never when the machine was not saturated (cause not yet found; see the closing note).
/// </summary>
[CollectionDefinition(nameof(MultiProcessCollection), DisableParallelization = true)]
public sealed class MultiProcessCollection;
