using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Api.Pipelines;
using MlFunctions.Core;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Functions;
using MlFunctions.Local;
using MlFunctions.Local.Cli;
using MlFunctions.Local.Triggers;
using MlFunctions.Tests.Infrastructure;
using Moq;
using Xunit;
using Xunit.Abstractions;
using static MlFunctions.Tests.Triggers.Automation;

namespace MlFunctions.Tests.Triggers;

/// <summary>
/// The local host end to end: a <c>_SUCCESS</c> marker under a pipeline that is not MNIST starts its stored spec on
/// the batch (the run reads the batch's CSV), a marker without a spec is recorded as rejected, and a CRON schedule
/// created over HTTP fires, pauses and survives a host restart. The host has its own uploads, schedules and records
/// containers, so the other test hosts on the shared Azurite never see these.
/// </summary>
public sealed class PipelineAutomationHostTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Key = "automation-key";
    private readonly string suffix = Guid.NewGuid().ToString("N")[..8];
    private readonly string data = Directory.CreateTempSubdirectory("mlf-automation-").FullName;
    private readonly string hub = TestStorage.NewTaskHub("auto");
    private WebApplication? app;

    private string Uploads => "uploads-" + suffix;

    public async Task InitializeAsync() => app = await StartHostAsync();

    public async Task DisposeAsync()
    {
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public void TheLocalHostRunsTheGenericWatcherAndScheduleTimerBesideMnistsTriggers()
    {
        var hosted = app!.Services.GetServices<IHostedService>().ToList();
        Assert.Single(hosted.OfType<PipelineUploadWatcher>());
        Assert.Single(hosted.OfType<PipelineScheduleTimer>());
        Assert.Single(hosted.OfType<UploadWatcher>());
        Assert.NotNull(app.Services.GetRequiredService<PipelineScheduleHandlers>());
    }

    [Fact]
    public async Task AMarkerUnderAnyPipelineStartsItsStoredSpecOnThatBatch()
    {
        var pipeline = "loans-" + suffix;
        using var api = new ApiClient(Commands.BaseUrl(app!), Key);

        // The label column does not exist: the run fails at validate-dataset naming the batch's real columns,
        // which shows it ran the stored spec on this batch (and needs no training worker).
        var spec = TabularSpec(pipeline) with { Columns = new() { Label = "nope" }, Sweep = new PipelineSweep { MaxTrials = 1, Epochs = 1 }, RetrainEpochs = 1 };
        Assert.Equal(HttpStatusCode.OK, (await api.Http.PutAsJsonAsync($"/api/pipelines/{pipeline}", spec, MlJson.Options)).StatusCode);
        var container = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient(Uploads);
        await container.CreateIfNotExistsAsync();
        await container.GetBlobClient($"datasets/{pipeline}/b1/loans.csv").UploadAsync(BinaryData.FromString("income,debt,approved\n10,1,yes\n20,2,no\n30,3,yes\n40,4,no\n"));
        await container.GetBlobClient($"datasets/{pipeline}/b1/_SUCCESS").UploadAsync(BinaryData.Empty);
        await container.GetBlobClient($"datasets/ghost-{suffix}/b1/a.csv").UploadAsync(BinaryData.FromString("a,b\n1,2\n"));
        await container.GetBlobClient($"datasets/ghost-{suffix}/b1/_SUCCESS").UploadAsync(BinaryData.Empty);

        var record = await Eventually.GetAsync(
            async () => (await api.Http.GetFromJsonAsync<JsonObject>($"/api/pipelines/{pipeline}/triggers"))!["triggers"]!.AsArray(),
            t => t.Count == 1,
            TimeSpan.FromSeconds(60),
            "the trigger record");
        var runId = (string)record[0]!["runId"]!;
        Assert.Equal("started", (string?)record[0]!["outcome"]);
        Assert.StartsWith($"{pipeline}-u-", runId);

        var (_, final) = await api.WaitDoneAsync(runId, TimeSpan.FromMinutes(3));
        output.WriteLine(final!.ToJsonString());
        Assert.Equal("Failed", (string?)final["runtimeStatus"]);
        Assert.Contains("unknown column 'nope'", final["output"]?.ToString());
        Assert.Contains("income", final["output"]?.ToString());
        var input = final["input"]!;
        Assert.Equal(($"datasets/{pipeline}/b1", "blob"), ((string?)input["dataset"]!["sourcePrefix"], (string?)input["trigger"]));
        var runs = await api.Http.GetFromJsonAsync<JsonObject>($"/api/pipelines/runs?pipeline={pipeline}");
        Assert.Contains(runs!["runs"]!.AsArray(), r => (string?)r!["runId"] == runId);

        var ghost = await Eventually.GetAsync(
            async () => (await api.Http.GetFromJsonAsync<JsonObject>($"/api/pipelines/ghost-{suffix}/triggers"))!["triggers"]!.AsArray(),
            t => t.Count == 1,
            TimeSpan.FromSeconds(60),
            "the rejected marker's record");
        Assert.Equal("rejected", (string?)ghost[0]!["outcome"]);
        Assert.Contains("no stored pipeline spec", (string?)ghost[0]!["reason"]);
        Assert.True((await container.GetBlobClient($"datasets/ghost-{suffix}/b1/a.csv").ExistsAsync()).Value);
        Assert.Equal(HttpStatusCode.OK, (await api.Http.GetAsync("/api/health")).StatusCode);
    }

    [Fact]
    public async Task ASchedulePutOverHttpFiresAndPausesAndSurvivesARestart()
    {
        var pipeline = "sched-" + suffix;
        using (var api = new ApiClient(Commands.BaseUrl(app!), Key))
        {
            var spec = TabularSpec(pipeline) with { Dataset = new PipelineDataset { SourceContainer = Uploads, SourcePrefix = "datasets/none" }, Sweep = new PipelineSweep { MaxTrials = 1, Epochs = 1 }, RetrainEpochs = 1 };
            Assert.Equal(HttpStatusCode.OK, (await api.Http.PutAsJsonAsync($"/api/pipelines/{pipeline}", spec, MlJson.Options)).StatusCode);

            var bad = await api.Http.PutAsJsonAsync($"/api/pipelines/{pipeline}/schedules/bad", new { cron = "*/0 * * * 9" });
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Equal(2, (await bad.Content.ReadFromJsonAsync<JsonObject>())!["problems"]!.AsArray().Count);

            // Every second (six fields): the host's timer loop fires it within a poll or two.
            var put = await api.Http.PutAsJsonAsync($"/api/pipelines/{pipeline}/schedules/often", new { cron = "* * * * * *", overrides = new { sweep = new { maxTrials = 1, epochs = 1 } } });
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            Assert.NotNull(put.Headers.ETag);
            var fired = await Eventually.GetAsync(
                () => api.Http.GetFromJsonAsync<JsonObject>($"/api/pipelines/{pipeline}/schedules/often"),
                s => s?["lastRunId"] is not null,
                TimeSpan.FromSeconds(60),
                "a scheduled run");
            Assert.StartsWith($"{pipeline}-s-often-", (string)fired!["lastRunId"]!);
            var paused = await api.Http.PostAsync($"/api/pipelines/{pipeline}/schedules/often/pause", null);
            Assert.Equal(HttpStatusCode.OK, paused.StatusCode);
            var (_, run) = await api.WaitDoneAsync((string)fired["lastRunId"]!);
            Assert.Equal("timer", (string?)run!["input"]!["trigger"]);
            var all = await api.Http.GetFromJsonAsync<JsonObject>("/api/pipelines/schedules");
            Assert.Contains(all!["schedules"]!.AsArray(), s => (string?)s!["pipeline"] == pipeline && (bool)s["paused"]!);
        }

        // A new host on the same storage: the schedule is still there, still paused, with its history.
        await app!.StopAsync();
        await app.DisposeAsync();
        app = await StartHostAsync();
        using var again = new ApiClient(Commands.BaseUrl(app), Key);
        var after = await again.Http.GetFromJsonAsync<JsonObject>($"/api/pipelines/{pipeline}/schedules/often");
        Assert.True((bool)after!["paused"]!);
        Assert.NotNull(after["lastOccurrence"]);
        Assert.Equal(HttpStatusCode.NoContent, (await again.Http.DeleteAsync($"/api/pipelines/{pipeline}/schedules/often")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await again.Http.GetAsync($"/api/pipelines/{pipeline}/schedules/often")).StatusCode);
    }

    private async Task<WebApplication> StartHostAsync()
    {
        var host = LocalHost.Build(
        [
            "--urls", "http://127.0.0.1:0", "--AzureWebJobsStorage", await TestStorage.ConnectionStringAsync(), "--Local:TaskHub", hub,
            "--Local:ApiKey", Key, "--Local:DataPath", data, "--Logging:LogLevel:Default", "Warning", "--Local:Workers", "0",
            "--Pipelines:Triggers:UploadsContainer", Uploads, "--Pipelines:Triggers:UploadPollSeconds", "0.3",
            "--Pipelines:Triggers:SchedulesContainer", "sched-" + suffix, "--Pipelines:Triggers:RecordsContainer", "trig-" + suffix,
            "--Pipelines:Triggers:SchedulePollSeconds", "0.5",
        ]);
        await host.StartAsync();
        return host;
    }
}

/// <summary>The Functions app's automation wrappers are the shared handlers and runner, declared on the same paths.</summary>
public sealed class PipelineAutomationFunctionsTests : IAsyncLifetime
{
    private readonly ManualClock clock = new(new DateTimeOffset(2025, 3, 1, 0, 10, 0, TimeSpan.Zero));
    private readonly FakeDurableClient durable = new();
    private readonly string container = "uploads-" + Guid.NewGuid().ToString("N")[..12];
    private BlobServiceClient blobs = null!;
    private Automation automation = null!;

    public async Task InitializeAsync()
    {
        blobs = new BlobServiceClient(await TestStorage.ConnectionStringAsync());
        automation = new Automation(blobs, clock);
        automation.Specs.Specs["loans"] = TabularSpec("loans");
    }

    public Task DisposeAsync() => automation.DisposeAsync();

    [Fact]
    public void TheFunctionsAppDeclaresTheGenericBlobTriggerAndTheScheduleTimer()
    {
        var metadata = JsonNode.Parse(File.ReadAllText(RepoPaths.ProjectOutput("Functions", "functions.metadata")))!.AsArray();
        JsonNode Binding(string function) => metadata.Single(f => (string)f!["name"]! == function)!["bindings"]!.AsArray()[0]!;

        var blob = Binding(PipelineAutomationFunctions.UploadFunction);
        Assert.Equal(("blobTrigger", "uploads/datasets/{pipeline}/{batch}/_SUCCESS", "AzureWebJobsStorage"), ((string)blob["type"]!, (string)blob["path"]!, (string)blob["connection"]!));
        var timer = Binding(PipelineAutomationFunctions.ScheduleFunction);
        Assert.Equal(("timerTrigger", "0 * * * * *"), ((string)timer["type"]!, (string)timer["schedule"]!));
    }

    [Fact]
    public void TheFunctionsAppsRegistrationResolvesTheWrappers()
    {
        // What Program.cs adds for them: the blob client, the spec store (AddMlActivities) and AddPipelineAutomation.
        var services = new ServiceCollection().AddLogging().AddSingleton(blobs).AddSingleton<IPipelineSpecStore>(automation.Specs);
        services.AddPipelineAutomation(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build());
        using var provider = services.BuildServiceProvider();
        Assert.NotNull(ActivatorUtilities.CreateInstance<PipelineAutomationFunctions>(provider));
        Assert.Equal("pipeline-schedules", provider.GetRequiredService<Microsoft.Extensions.Options.IOptions<PipelineAutomationOptions>>().Value.SchedulesContainer);
    }

    [Fact]
    public async Task TheWrappersRunTheSharedHandlersRunnerAndUploadTrigger()
    {
        var functions = new PipelineAutomationFunctions(automation.Uploads(), automation.Runner(), automation.Handlers(), blobs, clock, NullLogger<PipelineAutomationFunctions>.Instance);

        // HTTP: a schedule PUT through the Functions wrapper is read back by the shared handler the local host maps.
        var http = new DefaultHttpContext();
        http.Request.Method = "PUT";
        http.Request.Body = new MemoryStream("""{"cron": "0 * * * *"}"""u8.ToArray());
        http.Response.Body = new MemoryStream();
        await functions.Put(http.Request, "loans", "hourly");
        Assert.Equal(201, http.Response.StatusCode);
        Assert.Equal(200, (await CallAsync(automation.Handlers().HandleGet, "GET", route: Route("loans", "hourly"))).Status);

        // Timer: the tick fires the due occurrence through the shared runner.
        clock.Now = clock.Now.AddHours(1);
        await functions.OnTick(new TimerInfo(), durable.Client, Mock.Of<FunctionContext>());
        Assert.Equal("loans-s-hourly-20250301010000", Assert.Single(durable.Starts).InstanceId);

        // Blob trigger: the marker starts the stored spec on the batch in the uploads container.
        var uploads = blobs.GetBlobContainerClient(PipelineTriggers.DefaultUploadsContainer);
        await uploads.CreateIfNotExistsAsync();
        var batch = "fn-" + container[^8..];
        await uploads.GetBlobClient($"datasets/loans/{batch}/a.csv").UploadAsync(BinaryData.FromString("x,approved\n1,yes\n2,no\n"));
        await uploads.GetBlobClient($"datasets/loans/{batch}/_SUCCESS").UploadAsync(BinaryData.Empty);
        await functions.OnUpload(string.Empty, "loans", batch, durable.Client, Mock.Of<FunctionContext>());
        Assert.Equal(2, durable.Starts.Count);
        var spec = Assert.IsType<PipelineSpec>(durable.Starts[1].Input);
        Assert.Equal((OrchestrationNames.TrainingPipeline, $"datasets/loans/{batch}"), (durable.Starts[1].Name, spec.Dataset.SourcePrefix));
        await uploads.GetBlobClient($"datasets/loans/{batch}/a.csv").DeleteIfExistsAsync();
        await uploads.GetBlobClient($"datasets/loans/{batch}/_SUCCESS").DeleteIfExistsAsync();
    }
}
