using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MlFunctions.Api.Pipelines;
using MlFunctions.Functions;
using MlFunctions.Local.Triggers;
using MlFunctions.Tests.Http;
using MlFunctions.Tests.Infrastructure;
using Xunit;

namespace MlFunctions.Tests.Triggers;

/// <summary>Both hosts carry the same two triggers over the shared <see cref="PipelineTriggers"/>.</summary>
[Collection(nameof(LocalHostCollection))]
public sealed class TriggerHostTests(LocalHostFixture host)
{
    [Fact]
    public void TheLocalHostRunsTheUploadWatcherAndTheScheduleWithTheSharedTriggers()
    {
        var hosted = host.App.Services.GetServices<IHostedService>().ToList();
        Assert.Single(hosted.OfType<UploadWatcher>());
        Assert.Single(hosted.OfType<ScheduledRetraining>());
        var triggers = host.App.Services.GetRequiredService<PipelineTriggers>();
        Assert.True(triggers.Options.WatchUploads);
        Assert.Equal("uploads", triggers.Options.UploadsContainer);
        Assert.Null(triggers.Options.Schedule);
    }

    [Fact]
    public void TheFunctionsAppDeclaresTheBlobAndTimerTriggersOnTheSameSettings()
    {
        var path = RepoPaths.ProjectOutput("Functions", "functions.metadata");
        var metadata = JsonNode.Parse(File.ReadAllText(path))!.AsArray();
        JsonNode Binding(string function) => metadata.Single(f => (string)f!["name"]! == function)!["bindings"]!.AsArray()[0]!;

        var blob = Binding(TriggerFunctions.UploadFunction);
        Assert.Equal("blobTrigger", (string)blob["type"]!);
        Assert.Equal("uploads/datasets/mnist/{batch}/_SUCCESS", (string)blob["path"]!);
        Assert.Equal("AzureWebJobsStorage", (string)blob["connection"]!);

        var timer = Binding(TriggerFunctions.ScheduleFunction);
        Assert.Equal("timerTrigger", (string)timer["type"]!);
        Assert.Equal("%Pipelines:Mnist:Schedule%", (string)timer["schedule"]!);

        // The sample settings carry the schedule, disabled, so `func start` indexes the timer without running it.
        var sample = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoPaths.Root, "local.settings.sample.json")))!["Values"]!;
        Assert.NotNull(PipelineSchedule.Parse((string)sample["Pipelines__Mnist__Schedule"]!));
        Assert.Equal("true", (string?)sample[$"AzureWebJobs.{TriggerFunctions.ScheduleFunction}.Disabled"]);
    }

    [Theory]
    [InlineData("datasets/mnist/2024-06-01/_SUCCESS", true, "datasets/mnist/2024-06-01")]
    [InlineData("datasets/mnist/_SUCCESS", false, "")]
    [InlineData("datasets/mnist/a/b/_SUCCESS", false, "")]
    [InlineData("datasets/mnist/a/train-images-idx3-ubyte", false, "")]
    [InlineData("datasets/fashion/a/_SUCCESS", false, "")]
    public void MarkerNamesParse(string name, bool isMarker, string prefix)
    {
        Assert.Equal(isMarker, PipelineTriggers.TryParseMarker(name, out var batchPrefix));
        Assert.Equal(prefix, batchPrefix);
    }
}
