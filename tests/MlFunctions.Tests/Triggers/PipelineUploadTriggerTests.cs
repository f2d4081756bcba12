using Azure.Storage.Blobs;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Activities.Storage;
using MlFunctions.Api.Pipelines;
using MlFunctions.Core;
using MlFunctions.Core.Pipelines;
using MlFunctions.Local.Triggers;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using static MlFunctions.Tests.Triggers.Automation;

namespace MlFunctions.Tests.Triggers;

/// <summary>
/// <c>datasets/{pipeline}/{batch}/_SUCCESS</c> for any pipeline, through the shared <see cref="PipelineUploadTriggers"/>
/// and the local <see cref="PipelineUploadWatcher"/>, on Azurite (own containers) with a fake Durable client.
/// </summary>
public sealed class PipelineUploadTriggerTests : IAsyncLifetime
{
    private readonly string container = "uploads-" + Guid.NewGuid().ToString("N")[..12];
    private readonly ManualClock clock = new(new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly FakeDurableClient durable = new();
    private BlobServiceClient blobs = null!;
    private Automation automation = null!;
    private string connection = string.Empty;

    public async Task InitializeAsync()
    {
        connection = await TestStorage.ConnectionStringAsync();
        blobs = new BlobServiceClient(connection);
        await blobs.GetBlobContainerClient(container).CreateIfNotExistsAsync();
        automation = new Automation(blobs, clock);
        automation.Specs.Specs["loans"] = TabularSpec("loans");
    }

    public async Task DisposeAsync()
    {
        await blobs.GetBlobContainerClient(container).DeleteIfExistsAsync();
        await automation.DisposeAsync();
    }

    [Theory]
    [InlineData("datasets/loans/2024-06-01/_SUCCESS", true, "loans", "2024-06-01")]
    [InlineData("datasets/mnist/b/_SUCCESS", true, "mnist", "b")]
    [InlineData("datasets/loans/_SUCCESS", false, "", "")]
    [InlineData("datasets/loans/a/b/_SUCCESS", false, "", "")]
    [InlineData("datasets/loans/a/loans.csv", false, "", "")]
    [InlineData("other/loans/a/_SUCCESS", false, "", "")]
    public void MarkerNamesParse(string name, bool isMarker, string pipeline, string batch)
    {
        Assert.Equal(isMarker, PipelineAutomation.TryParseMarker(name, out var p, out var b));
        Assert.Equal((pipeline, batch), (p, b));
    }

    [Fact]
    public async Task AMarkerStartsTheStoredSpecOnItsBatchAndTheSameContentAgainIsOneRun()
    {
        await UploadAsync("loans", "b1", ("loans.csv", Csv));
        await UploadAsync("loans", "b1-copy", ("loans.csv", Csv));
        var uploads = automation.Uploads();

        var first = await uploads.StartForMarkerAsync(durable.Client, blobs, container, "loans", "b1");
        var again = await uploads.StartForMarkerAsync(durable.Client, blobs, container, "loans", "b1");
        var copy = await uploads.StartForMarkerAsync(durable.Client, blobs, container, "loans", "b1-copy");

        Assert.Equal(TriggerOutcome.Started, first.Outcome);
        Assert.StartsWith("loans-u-", first.InstanceId);
        Assert.Equal((TriggerOutcome.Duplicate, first.InstanceId), (again.Outcome, again.InstanceId));
        Assert.Equal((TriggerOutcome.Duplicate, first.InstanceId), (copy.Outcome, copy.InstanceId));
        var start = Assert.Single(durable.Starts);
        Assert.Equal(OrchestrationNames.TrainingPipeline, start.Name);
        var spec = Assert.IsType<PipelineSpec>(start.Input);
        Assert.Equal(("loans", container, "datasets/loans/b1", "blob", "approved"), (spec.Name, spec.Dataset.SourceContainer, spec.Dataset.SourcePrefix, spec.Trigger, spec.Columns!.Label));
        Assert.Empty(spec.Dataset.SourceDirectories);

        // A changed spec is a new run on the same data; a failed run is restarted under its id.
        automation.Specs.Specs["loans"] = TabularSpec("loans") with { Metric = "auc" };
        var changed = await uploads.StartForMarkerAsync(durable.Client, blobs, container, "loans", "b1");
        Assert.Equal(TriggerOutcome.Started, changed.Outcome);
        Assert.NotEqual(first.InstanceId, changed.InstanceId);
        durable.Statuses[changed.InstanceId!] = OrchestrationRuntimeStatus.Failed;
        Assert.Equal(TriggerOutcome.Restarted, (await uploads.StartForMarkerAsync(durable.Client, blobs, container, "loans", "b1")).Outcome);

        var records = await automation.Records().ListAsync("loans");
        Assert.Equal(["b1", "b1-copy"], records.Select(r => r.Batch).Order());
        Assert.Equal((AutomationOutcome.Restarted, changed.InstanceId), records.Where(r => r.Batch == "b1").Select(r => (r.Outcome, r.RunId)).Single());
    }

    [Fact]
    public async Task MarkersThatCannotStartARunAreRejectedWithARecordedReasonAndNothingIsLost()
    {
        await UploadAsync("nospec", "b1", ("a.csv", Csv));
        await UploadAsync("loans", "images", ("train-images-idx3-ubyte", "x"), ("train-labels-idx1-ubyte", "y"));
        await UploadAsync("loans", "empty");
        await UploadAsync("loans", "odd", ("notes.txt", "hello"));
        automation.Specs.Specs["badspec"] = TabularSpec("badspec") with { Metric = "r2" };
        await UploadAsync("badspec", "b1", ("a.csv", Csv));
        var uploads = automation.Uploads();

        foreach (var (pipeline, batch, expected) in new[]
        {
            ("nospec", "b1", "no stored pipeline spec 'nospec'"),
            ("loans", "images", "reads csv files, but the batch holds idx files"),
            ("loans", "empty", "no data files"),
            ("loans", "odd", "cannot tell the dataset format"),
            ("badspec", "b1", "metric must be one of"),
            ("Bad Name", "b1", "not a valid pipeline name"),
        })
        {
            var result = await uploads.StartForMarkerAsync(durable.Client, blobs, container, pipeline, batch);
            Assert.Equal(TriggerOutcome.Rejected, result.Outcome);
            Assert.Contains(expected, result.Reason);
        }

        Assert.Empty(durable.Starts);
        var nospec = Assert.Single(await automation.Records().ListAsync("nospec"));
        Assert.Equal((AutomationOutcome.Rejected, "b1"), (nospec.Outcome, nospec.Batch));
        Assert.Contains("The upload is kept", nospec.Reason);
        Assert.Equal(3, (await automation.Records().ListAsync("loans")).Count);
        Assert.True((await blobs.GetBlobContainerClient(container).GetBlobClient("datasets/nospec/b1/a.csv").ExistsAsync()).Value);

        // MNIST's batches are its own trigger's; a batch without a marker is not complete.
        Assert.Equal(TriggerOutcome.Skipped, (await uploads.StartForMarkerAsync(durable.Client, blobs, container, "mnist", "b1")).Outcome);
        await UploadAsync("loans", "partial", false, ("a.csv", Csv));
        Assert.Equal(TriggerOutcome.Skipped, (await uploads.StartForMarkerAsync(durable.Client, blobs, container, "loans", "partial")).Outcome);
    }

    [Fact]
    public async Task TheWatcherStartsEachNewMarkerOnceSkipsMnistAndARestartedWatcherStartsNothing()
    {
        await UploadAsync("loans", "b1", ("loans.csv", Csv));
        await UploadAsync("nospec", "b1", ("a.csv", Csv));
        await blobs.GetBlobContainerClient(container).UploadBlobAsync("datasets/mnist/b1/_SUCCESS", BinaryData.Empty);

        var results = await Watcher().PollOnceAsync(durable.Client, blobs, default);
        Assert.Equal([TriggerOutcome.Started, TriggerOutcome.Rejected], results.Select(r => r.Outcome).Order());
        var marker = await blobs.GetBlobContainerClient(container).GetBlobClient("datasets/loans/b1/_SUCCESS").GetPropertiesAsync();
        Assert.Equal(durable.Starts.Single().InstanceId, marker.Value.Metadata[UploadWatcher.HandledMetadata]);
        Assert.Empty((await blobs.GetBlobContainerClient(container).GetBlobClient("datasets/mnist/b1/_SUCCESS").GetPropertiesAsync()).Value.Metadata);

        Assert.Empty(await Watcher().PollOnceAsync(durable.Client, blobs, default));

        // The marker written again (after the user stored the missing spec) is a new event.
        automation.Specs.Specs["nospec"] = TabularSpec("nospec");
        await UploadAsync("nospec", "b1", ("a.csv", Csv));
        Assert.Equal(TriggerOutcome.Started, Assert.Single(await Watcher().PollOnceAsync(durable.Client, blobs, default)).Outcome);
        Assert.Equal(2, durable.Starts.Count);
        Assert.Empty(await Watcher(container: "missing-" + Guid.NewGuid().ToString("N")[..8]).PollOnceAsync(durable.Client, blobs, default));
    }

    [Fact]
    public async Task AnAccumulatingSpecTrainsOnEveryCompleteBatchUpToTheOneThatFired()
    {
        automation.Specs.Specs["days"] = TabularSpec("days") with { Dataset = TabularSpec("days").Dataset with { Accumulate = true } };
        await UploadAsync("days", "2010-12-01", ("d01.csv", Csv));
        await UploadAsync("days", "2010-12-02", false, ("d02.csv", Csv));
        await UploadAsync("days", "2010-12-03", ("d03.csv", Csv + "40,4,no\n"));
        await UploadAsync("days", "2010-12-05", ("d05.csv", Csv));
        var uploads = automation.Uploads();

        // 12-03 fired: 12-01 and itself; 12-02 has no marker (incomplete), 12-05 sorts after it.
        var third = await uploads.StartForMarkerAsync(durable.Client, blobs, container, "days", "2010-12-03");
        Assert.Equal(TriggerOutcome.Started, third.Outcome);
        var spec = Assert.IsType<PipelineSpec>(Assert.Single(durable.Starts).Input);
        Assert.Equal(["datasets/days/2010-12-01", "datasets/days/2010-12-03"], spec.Dataset.SourcePrefixes);
        Assert.Equal("datasets/days/2010-12-03", spec.Dataset.SourcePrefix);
        Assert.Equal(spec.Dataset.SourcePrefixes, spec.RegisterInput().SourcePrefixes);

        // The run id covers the union: a later day is a new run over all four complete days, the same marker again is none.
        var fifth = await uploads.StartForMarkerAsync(durable.Client, blobs, container, "days", "2010-12-05");
        Assert.Equal(TriggerOutcome.Started, fifth.Outcome);
        Assert.NotEqual(third.InstanceId, fifth.InstanceId);
        Assert.Equal(["datasets/days/2010-12-01", "datasets/days/2010-12-03", "datasets/days/2010-12-05"], Assert.IsType<PipelineSpec>(durable.Starts[1].Input).Dataset.SourcePrefixes);
        Assert.Equal(TriggerOutcome.Duplicate, (await uploads.StartForMarkerAsync(durable.Client, blobs, container, "days", "2010-12-05")).Outcome);

        // Two batches with one file name cannot merge into one folder: a clear rejection, and the files stay.
        await UploadAsync("days", "2010-12-06", ("d01.csv", Csv));
        var clash = await uploads.StartForMarkerAsync(durable.Client, blobs, container, "days", "2010-12-06");
        Assert.Equal(TriggerOutcome.Rejected, clash.Outcome);
        Assert.Contains("file name d01.csv occurs in more than one", clash.Reason);
        Assert.Equal(2, durable.Starts.Count);
        Assert.True((await blobs.GetBlobContainerClient(container).GetBlobClient("datasets/days/2010-12-06/d01.csv").ExistsAsync()).Value);
    }

    private const string Csv = "income,debt,approved\n10,1,yes\n20,2,no\n30,3,yes\n";

    private PipelineUploadWatcher Watcher(string? container = null) => new(
        () => durable.Client,
        new ConnectionStringStorageClients(_ => Task.FromResult(connection)),
        automation.Uploads(),
        new PipelineAutomationOptions { UploadsContainer = container ?? this.container },
        NullLogger<PipelineUploadWatcher>.Instance);

    private Task UploadAsync(string pipeline, string batch, params (string Name, string Content)[] files) => UploadAsync(pipeline, batch, true, files);

    private async Task UploadAsync(string pipeline, string batch, bool marker, params (string Name, string Content)[] files)
    {
        var c = blobs.GetBlobContainerClient(container);
        foreach (var (name, content) in files)
            await c.GetBlobClient($"datasets/{pipeline}/{batch}/{name}").UploadAsync(BinaryData.FromString(content), overwrite: true);
        if (marker)
            await c.GetBlobClient($"datasets/{pipeline}/{batch}/_SUCCESS").UploadAsync(BinaryData.Empty, overwrite: true);
    }
}
