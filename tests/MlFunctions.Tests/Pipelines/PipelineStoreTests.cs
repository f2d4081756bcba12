using System.Text.Json;
using MlFunctions.Activities;
using MlFunctions.Activities.Pipelines;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Tests.Infrastructure;
using Xunit;

namespace MlFunctions.Tests.Pipelines;

/// <summary>The step cache and lineage activities against Azurite. Keys and run ids are unique per test, so tests share the containers.</summary>
public sealed class PipelineStoreTests
{
    private static readonly ActivityCall Call = new("test", "test-instance", CancellationToken.None);
    private static readonly IStorageClients Storage = new ConnectionStringStorageClients(_ => TestStorage.ConnectionStringAsync());
    private static readonly DateTime T0 = new(2025, 3, 1, 8, 0, 0, DateTimeKind.Utc);

    private static string UniqueKey() => ContentDigest.Sha256Hex(Guid.NewGuid().ToString());

    private static StepCacheEntry Entry(string key, DateTime createdAt, object output) => new()
    {
        Key = key,
        Step = "train",
        CodeVersion = "v1",
        RunId = "run-producer",
        CreatedAt = createdAt,
        Output = JsonSerializer.SerializeToElement(output, MlJson.Options),
        OutputDigest = ContentDigest.Of(output),
    };

    private static Task<LookupStepCacheResult> LookupAsync(string key, DateTime now, TimeSpan? maxStaleness) =>
        new LookupStepCacheActivity(new BlobStepCache(Storage)).RunAsync(new LookupStepCacheInput(key, now, maxStaleness), Call);

    [Fact]
    public async Task A_stored_output_is_a_hit_until_it_is_older_than_max_staleness()
    {
        var key = UniqueKey();
        Assert.Null((await LookupAsync(key, T0, null)).Entry);

        var output = new { modelHash = "abc", accuracy = 0.97 };
        Assert.True(await new StoreStepCacheActivity(new BlobStepCache(Storage)).RunAsync(Entry(key, T0, output), Call));

        var hit = (await LookupAsync(key, T0.AddHours(1), TimeSpan.FromHours(2))).Entry;
        Assert.NotNull(hit);
        Assert.Equal("run-producer", hit.RunId);
        Assert.Equal(T0, hit.CreatedAt);
        Assert.Equal(ContentDigest.Of(output), ContentDigest.Of(hit.Output));
        Assert.Equal(0.97, hit.Output.GetProperty("accuracy").GetDouble());

        Assert.NotNull((await LookupAsync(key, T0.AddHours(2), TimeSpan.FromHours(2))).Entry); // exactly at the limit: still fresh
        Assert.Null((await LookupAsync(key, T0.AddHours(2).AddSeconds(1), TimeSpan.FromHours(2))).Entry);
        Assert.NotNull((await LookupAsync(key, T0.AddDays(400), null)).Entry); // no limit
    }

    [Fact]
    public async Task A_newer_execution_refreshes_the_entry()
    {
        var key = UniqueKey();
        var cache = new BlobStepCache(Storage);
        await cache.StoreAsync(Entry(key, T0, 1));
        await cache.StoreAsync(Entry(key, T0.AddDays(10), 1) with { RunId = "run-later" });

        var hit = await cache.LookupAsync(key, T0.AddDays(10.5), TimeSpan.FromDays(1));
        Assert.Equal("run-later", hit?.RunId);
    }

    [Fact]
    public async Task Lineage_reads_back_per_run_in_sequence_order_and_rewrites_are_idempotent()
    {
        var run = "run-" + Guid.NewGuid().ToString("N")[..12];
        var other = run + "x";
        var activity = new RecordLineageActivity(new BlobLineageStore(Storage));
        StepRecord Record(string runId, int seq, string step, bool cached = false, StepStatus status = StepStatus.Succeeded) => new()
        {
            RunId = runId,
            Sequence = seq,
            Step = step,
            CodeVersion = "v1",
            Target = "T_" + step,
            CacheKey = ContentDigest.Sha256Hex(step),
            Inputs = new Dictionary<string, string> { ["dataset"] = ContentDigest.Of("d") },
            OutputDigest = status == StepStatus.Succeeded ? ContentDigest.Of(seq) : null,
            StartedAt = T0.AddMinutes(seq),
            EndedAt = T0.AddMinutes(seq + 1),
            Cached = cached,
            Attempts = cached ? 0 : 1,
            Status = status,
        };

        // Written out of order (fan-out branches end in any order), and one written twice (an activity retry).
        await activity.RunAsync(Record(run, 3, "evaluate", status: StepStatus.Failed), Call);
        await activity.RunAsync(Record(run, 1, "train", cached: true), Call);
        await activity.RunAsync(Record(run, 2, "validate"), Call);
        await activity.RunAsync(Record(run, 2, "validate"), Call);
        await activity.RunAsync(Record(other, 1, "train"), Call);

        var store = new BlobLineageStore(Storage);
        var records = await store.ReadRunAsync(run);
        Assert.Equal(["train", "validate", "evaluate"], records.Select(r => r.Step));
        Assert.Equal(ContentDigest.CanonicalJson(Record(run, 2, "validate")), ContentDigest.CanonicalJson(records[1]));

        var summary = await store.SummarizeAsync(run);
        Assert.Equal((2, 1, 0, 1), (summary.Executed, summary.Cached, summary.Skipped, summary.Failed));
        Assert.Equal(T0.AddMinutes(1), summary.StartedAt);
        Assert.Equal(T0.AddMinutes(4), summary.EndedAt);

        Assert.Empty(await store.ReadRunAsync("run-that-never-was"));
    }
}
