using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Microsoft.DurableTask.Client;
using MlFunctions.Api.Pipelines;
using MlFunctions.Core;
using MlFunctions.Core.Pipelines;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using static MlFunctions.Tests.Triggers.Automation;

namespace MlFunctions.Tests.Triggers;

/// <summary>
/// Schedules through the shared handlers (CRUD, ETags, every problem of a bad one) and the shared runner that both
/// hosts' timers call, on Azurite with a hand-moved clock and a fake Durable client: due occurrences fire once, a
/// host that was down catches up once, and a restarted host never fires an occurrence again.
/// </summary>
public sealed class PipelineScheduleTests : IAsyncLifetime
{
    private readonly ManualClock clock = new(new DateTimeOffset(2025, 3, 1, 0, 10, 0, TimeSpan.Zero));
    private readonly FakeDurableClient durable = new();
    private Automation automation = null!;

    public async Task InitializeAsync()
    {
        automation = new Automation(new BlobServiceClient(await TestStorage.ConnectionStringAsync()), clock);
        automation.Specs.Specs["loans"] = TabularSpec("loans");
    }

    public Task DisposeAsync() => automation.DisposeAsync();

    [Fact]
    public async Task SchedulesAreCreatedListedReplacedPausedResumedAndDeletedWithETags()
    {
        var handlers = automation.Handlers();
        var created = await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 3 * * *", timeZone = "Europe/Paris" }, Route("loans", "nightly"));
        Assert.Equal(201, created.Status);
        Assert.NotNull(created.ETag);
        Assert.Equal("0 3 * * *", (string?)created.Body!["cron"]);
        Assert.Equal("2025-03-01T02:00:00+00:00", (string?)created.Body["nextOccurrence"]);
        Assert.False((bool)created.Body["paused"]!);

        Assert.Equal(201, (await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 * * * *", overrides = new { sweep = new { maxTrials = 1 } } }, Route("loans", "hourly"))).Status);
        automation.Specs.Specs["churn"] = TabularSpec("churn");
        Assert.Equal(201, (await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 0 * * 0", paused = true }, Route("churn", "weekly"))).Status);

        var list = await CallAsync(handlers.HandleList, "GET", route: Route("loans"));
        Assert.Equal(["hourly", "nightly"], list.Body!["schedules"]!.AsArray().Select(s => (string)s!["id"]!));
        var all = await CallAsync(handlers.HandleListAll, "GET");
        Assert.Equal(["churn/weekly", "loans/hourly", "loans/nightly"], all.Body!["schedules"]!.AsArray().Select(s => $"{s!["pipeline"]}/{s["id"]}"));

        // A stale ETag is refused; the current one replaces (200, created time kept); create-only refuses an existing one.
        clock.Now = clock.Now.AddMinutes(5);
        var get = await CallAsync(handlers.HandleGet, "GET", route: Route("loans", "nightly"));
        Assert.Equal(created.ETag, get.ETag);
        var replaced = await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 4 * * *" }, Route("loans", "nightly"), ("If-Match", created.ETag!));
        Assert.Equal(200, replaced.Status);
        Assert.Equal((string?)created.Body["createdAt"], (string?)replaced.Body!["createdAt"]);
        Assert.Equal("UTC", (string?)replaced.Body["timeZone"]);
        Assert.Equal(412, (await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 5 * * *" }, Route("loans", "nightly"), ("If-Match", created.ETag!))).Status);
        Assert.Equal(412, (await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 5 * * *" }, Route("loans", "nightly"), ("If-None-Match", "*"))).Status);

        var paused = await CallAsync(handlers.HandlePause, "POST", route: Route("loans", "nightly"));
        Assert.True((bool)paused.Body!["paused"]!);
        Assert.Null(paused.Body["nextOccurrence"]);
        var resumed = await CallAsync(handlers.HandleResume, "POST", route: Route("loans", "nightly"));
        Assert.False((bool)resumed.Body!["paused"]!);
        Assert.Equal("2025-03-01T04:00:00+00:00", (string?)resumed.Body["nextOccurrence"]);

        Assert.Equal(412, (await CallAsync(handlers.HandleDelete, "DELETE", route: Route("loans", "nightly"), headers: ("If-Match", created.ETag!))).Status);
        Assert.Equal(204, (await CallAsync(handlers.HandleDelete, "DELETE", route: Route("loans", "nightly"))).Status);
        Assert.Equal(404, (await CallAsync(handlers.HandleGet, "GET", route: Route("loans", "nightly"))).Status);
        Assert.Equal(404, (await CallAsync(handlers.HandleDelete, "DELETE", route: Route("loans", "nightly"))).Status);
        Assert.Equal(404, (await CallAsync(handlers.HandlePause, "POST", route: Route("loans", "nightly"))).Status);
    }

    [Fact]
    public async Task BadSchedulesAre400sListingEveryProblemAndBadNamesOrMissingSpecsAreRefused()
    {
        var handlers = automation.Handlers();
        var bad = await CallAsync(handlers.HandlePut, "PUT", new { cron = "61 25 0 13 8", timeZone = "Mars/Olympus" }, Route("loans", "bad"));
        Assert.Equal(400, bad.Status);
        var problems = bad.Body!["problems"]!.AsArray().Select(p => (string)p!).ToList();
        Assert.Equal(6, problems.Count);
        Assert.Contains("minute value 61 is out of range 0-59", problems);
        Assert.Contains("day-of-week value 8 is out of range 0-7", problems);
        Assert.Contains(problems, p => p.Contains("Mars/Olympus"));

        var overrides = await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 3 * * *", overrides = new { sweep = new { maxTrials = 0 }, metric = "r2" } }, Route("loans", "bad"));
        Assert.Equal(400, overrides.Status);
        Assert.Contains(overrides.Body!["problems"]!.AsArray(), p => ((string)p!).StartsWith("overrides: sweep.maxTrials"));
        Assert.Contains(overrides.Body["problems"]!.AsArray(), p => ((string)p!).StartsWith("overrides: metric must be"));
        Assert.Equal(400, (await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 3 * * *", overrides = new { name = "other" } }, Route("loans", "bad"))).Status);
        Assert.Equal(400, (await CallAsync(handlers.HandlePut, "PUT", "{not json", Route("loans", "bad"))).Status);
        Assert.Equal(400, (await CallAsync(handlers.HandlePut, "PUT", null, Route("loans", "bad"))).Status);

        Assert.Equal(400, (await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 3 * * *" }, Route("loans", "Not Valid"))).Status);
        Assert.Equal(400, (await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 3 * * *" }, Route("Bad Pipeline", "x"))).Status);
        Assert.Equal(400, (await CallAsync(handlers.HandleList, "GET", route: Route("schedules"))).Status);
        Assert.Equal(404, (await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 3 * * *" }, Route("never-stored", "x"))).Status);
        Assert.Empty((await CallAsync(handlers.HandleListAll, "GET")).Body!["schedules"]!.AsArray());
    }

    [Fact]
    public async Task ADueScheduleFiresOnceAndAHostThatWasDownCatchesUpOnceAndNeverAgainAfterARestart()
    {
        var handlers = automation.Handlers();
        Assert.Equal(201, (await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 * * * *", overrides = new { sweep = new { maxTrials = 2 } } }, Route("loans", "hourly"))).Status);

        // Created at 00:10; nothing is due before 01:00.
        var runner = automation.Runner();
        Assert.Empty(await runner.FireDueAsync(durable.Client, clock.Now.AddMinutes(49)));

        // The host was down from 00:30 to 05:30: five occurrences missed, one run, for the latest.
        var fired = Assert.Single(await runner.FireDueAsync(durable.Client, At(5, 30)));
        Assert.Equal((AutomationOutcome.Started, "loans-s-hourly-20250301050000"), (fired.Outcome, fired.RunId));
        var start = Assert.Single(durable.Starts);
        Assert.Equal((OrchestrationNames.TrainingPipeline, "loans-s-hourly-20250301050000"), (start.Name, start.InstanceId));
        var spec = Assert.IsType<PipelineSpec>(start.Input);
        Assert.Equal(("loans", "timer", 2, 2), (spec.Name, spec.Trigger, spec.Sweep.MaxTrials, spec.Sweep.Epochs));

        // The same tick again, and a restarted host (new store, new runner) before the next occurrence: nothing.
        Assert.Empty(await runner.FireDueAsync(durable.Client, At(5, 31)));
        Assert.Empty(await automation.Runner().FireDueAsync(durable.Client, At(5, 59)));
        Assert.Single(durable.Starts);

        var next = Assert.Single(await automation.Runner().FireDueAsync(durable.Client, At(6, 0)));
        Assert.Equal("loans-s-hourly-20250301060000", next.RunId);
        Assert.Equal(2, durable.Starts.Count);

        // The schedule says what its last fire did.
        clock.Now = At(6, 1);
        var read = await CallAsync(handlers.HandleGet, "GET", route: Route("loans", "hourly"));
        Assert.Equal("2025-03-01T06:00:00+00:00", (string?)read.Body!["lastOccurrence"]);
        Assert.Equal("loans-s-hourly-20250301060000", (string?)read.Body["lastRunId"]);
        Assert.Equal("started", (string?)read.Body["lastOutcome"]);
        Assert.Equal("2025-03-01T07:00:00+00:00", (string?)read.Body["nextOccurrence"]);
    }

    [Fact]
    public async Task AnOccurrenceWhoseRunExistsIsRecordedNotStartedAgain()
    {
        // A host that started the run and died before recording it: the next host finds the run under the same id.
        Assert.Equal(201, (await CallAsync(automation.Handlers().HandlePut, "PUT", new { cron = "0 * * * *" }, Route("loans", "hourly"))).Status);
        durable.Statuses["loans-s-hourly-20250301010000"] = OrchestrationRuntimeStatus.Completed;

        var fired = Assert.Single(await automation.Runner().FireDueAsync(durable.Client, At(1, 0, 30)));
        Assert.Equal(AutomationOutcome.Duplicate, fired.Outcome);
        Assert.Empty(durable.Starts);
        Assert.Empty(await automation.Runner().FireDueAsync(durable.Client, At(1, 30)));
    }

    [Fact]
    public async Task APausedScheduleDoesNotFireAndResumingDoesNotMakeUpThePause()
    {
        var handlers = automation.Handlers();
        Assert.Equal(201, (await CallAsync(handlers.HandlePut, "PUT", new { cron = "0 * * * *", paused = true }, Route("loans", "hourly"))).Status);
        Assert.Empty(await automation.Runner().FireDueAsync(durable.Client, At(3, 0)));

        clock.Now = At(3, 10);
        Assert.Equal(200, (await CallAsync(handlers.HandleResume, "POST", route: Route("loans", "hourly"))).Status);
        Assert.Empty(await automation.Runner().FireDueAsync(durable.Client, At(3, 59)));
        Assert.Equal("loans-s-hourly-20250301040000", Assert.Single(await automation.Runner().FireDueAsync(durable.Client, At(4, 0))).RunId);

        clock.Now = At(4, 5);
        Assert.Equal(200, (await CallAsync(handlers.HandlePause, "POST", route: Route("loans", "hourly"))).Status);
        Assert.Empty(await automation.Runner().FireDueAsync(durable.Client, At(9, 0)));
        Assert.Single(durable.Starts);
    }

    [Fact]
    public async Task ASchedulesTimeZoneDecidesWhenItFires()
    {
        Assert.Equal(201, (await CallAsync(automation.Handlers().HandlePut, "PUT", new { cron = "0 3 * * *", timeZone = "Europe/Paris" }, Route("loans", "paris"))).Status);
        Assert.Empty(await automation.Runner().FireDueAsync(durable.Client, At(1, 59)));
        Assert.Equal("loans-s-paris-20250301020000", Assert.Single(await automation.Runner().FireDueAsync(durable.Client, At(2, 0))).RunId);
    }

    [Fact]
    public async Task AScheduleWhosePipelineLostItsSpecRecordsTheReasonAndStartsNothing()
    {
        Assert.Equal(201, (await CallAsync(automation.Handlers().HandlePut, "PUT", new { cron = "0 * * * *" }, Route("loans", "hourly"))).Status);
        automation.Specs.Specs.TryRemove("loans", out _);

        var fired = Assert.Single(await automation.Runner().FireDueAsync(durable.Client, At(1, 0)));
        Assert.Equal(AutomationOutcome.Rejected, fired.Outcome);
        Assert.Contains("no stored pipeline spec 'loans'", fired.Reason);
        Assert.Empty(durable.Starts);

        var read = await CallAsync(automation.Handlers().HandleGet, "GET", route: Route("loans", "hourly"));
        Assert.Equal("rejected", (string?)read.Body!["lastOutcome"]);
        Assert.Contains("no stored pipeline spec", (string?)read.Body["lastReason"]);
        Assert.Empty(await automation.Runner().FireDueAsync(durable.Client, At(1, 30)));
    }

    [Fact]
    public async Task ALatestBatchScheduleRunsOnTheNewestCompleteUpload()
    {
        Assert.Equal(201, (await CallAsync(automation.Handlers().HandlePut, "PUT", new { cron = "0 * * * *", latestBatch = true }, Route("loans", "fresh"))).Status);
        var none = Assert.Single(await automation.Runner().FireDueAsync(durable.Client, At(1, 0)));
        Assert.Equal(AutomationOutcome.Rejected, none.Outcome);
        Assert.Contains("has no complete batch", none.Reason);

        var uploads = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient(automation.UploadsContainer);
        await uploads.CreateIfNotExistsAsync();
        foreach (var batch in new[] { "2025-03-01", "2025-03-02" })
        {
            await uploads.GetBlobClient($"datasets/loans/{batch}/a.csv").UploadAsync(BinaryData.FromString("x,approved\n1,yes\n"));
            await uploads.GetBlobClient($"datasets/loans/{batch}/_SUCCESS").UploadAsync(BinaryData.Empty);
        }

        await uploads.GetBlobClient("datasets/loans/2025-03-03/a.csv").UploadAsync(BinaryData.FromString("x,approved\n1,yes\n"));

        Assert.Equal(AutomationOutcome.Started, Assert.Single(await automation.Runner().FireDueAsync(durable.Client, At(2, 0))).Outcome);
        var spec = Assert.IsType<PipelineSpec>(Assert.Single(durable.Starts).Input);
        Assert.Equal((automation.UploadsContainer, "datasets/loans/2025-03-02", "timer"), (spec.Dataset.SourceContainer, spec.Dataset.SourcePrefix, spec.Trigger));
    }

    [Fact]
    public void OverridesMergeIntoTheStoredSpecAndRunIdsAreDeterministic()
    {
        var spec = TabularSpec("loans");
        var merged = PipelineAutomation.WithOverrides(spec, JsonNode.Parse("""{"sweep": {"maxTrials": 1}, "Metric": "auc", "columns": {"ignore": ["applicant"]}}""")!.AsObject());
        Assert.Equal((1, 2, "auc", "approved", "timer"), (merged.Sweep.MaxTrials, merged.Sweep.Epochs, merged.Metric, merged.Columns!.Label, merged.Trigger));
        Assert.Equal(["applicant"], merged.Columns.Ignore);

        Assert.Equal("loans-s-nightly-20250301030000", PipelineAutomation.ScheduledInstanceId("loans", "nightly", new DateTimeOffset(2025, 3, 1, 4, 0, 0, TimeSpan.FromHours(1))));
        var longId = PipelineAutomation.ScheduledInstanceId(new string('p', 63), new string('s', 63), At(1, 0));
        Assert.True(longId.Length <= PipelineAutomation.MaxInstanceIdLength, longId);
        Assert.Equal(longId, PipelineAutomation.ScheduledInstanceId(new string('p', 63), new string('s', 63), At(1, 0)));
    }

    private static DateTimeOffset At(int hour, int minute, int second = 0) => new(2025, 3, 1, hour, minute, second, TimeSpan.Zero);
}
