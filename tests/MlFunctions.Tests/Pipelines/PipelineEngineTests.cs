using Microsoft.DurableTask.Client;
using MlFunctions.Activities.Pipelines;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Pipelines;
using MlFunctions.Tests.Engine;
using MlFunctions.Tests.Infrastructure;
using Xunit;

namespace MlFunctions.Tests.Pipelines;

/// <summary>
/// A pipeline on the embedded Durable engine over Azurite: the cache and lineage activities run for real,
/// and every contract crosses the engine's serializer and replay.
/// </summary>
[Collection(nameof(EngineCollection))]
public sealed class PipelineEngineTests(EngineFixture fixture)
{
    [Fact]
    public async Task A_second_run_on_the_same_content_is_served_from_the_cache_and_both_runs_have_lineage()
    {
        var hash = ContentDigest.Sha256Hex(Guid.NewGuid().ToString());
        var first = await RunAsync(new EngineFixture.PipelineInput("datasets/a", hash, 21));
        var second = await RunAsync(new EngineFixture.PipelineInput("uploads/renamed", hash, 21));

        Assert.Equal(1, fixture.PipelineExecutions[hash]);
        Assert.Equal("42", first.Status.SerializedCustomStatus);
        Assert.Equal("42", second.Status.SerializedCustomStatus);
        Assert.Equal((1, 0), (first.Summary.Executed, first.Summary.Cached));
        Assert.Equal((0, 1), (second.Summary.Executed, second.Summary.Cached));

        var lineage = new BlobLineageStore(new ConnectionStringStorageClients(_ => TestStorage.ConnectionStringAsync()));
        var stored = Assert.Single(await lineage.ReadRunAsync(second.Status.InstanceId));
        Assert.True(stored.Cached);
        Assert.Equal(first.Status.InstanceId, stored.CachedFromRunId);
        Assert.Equal(first.Summary.Steps[0].OutputDigest, stored.OutputDigest);
        Assert.Equal(ContentDigest.Of(42), stored.OutputDigest);
        Assert.Equal(1, Assert.Single(await lineage.ReadRunAsync(first.Status.InstanceId)).Attempts);
    }

    private async Task<(OrchestrationMetadata Status, PipelineRunRecord Summary)> RunAsync(EngineFixture.PipelineInput input)
    {
        var id = await fixture.Engine.Client.ScheduleNewOrchestrationInstanceAsync(EngineFixture.Pipeline, input);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var done = await fixture.Engine.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, cts.Token);
        Assert.True(done.RuntimeStatus == OrchestrationRuntimeStatus.Completed, done.FailureDetails?.ToString() ?? done.RuntimeStatus.ToString());
        return (done, done.ReadOutputAs<PipelineRunRecord>()!);
    }
}
