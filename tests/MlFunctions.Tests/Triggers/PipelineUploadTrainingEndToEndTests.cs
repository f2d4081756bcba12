using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Builder;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Local.Cli;
using MlFunctions.Tests.Infrastructure;
using MlFunctions.Tests.Pipelines;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Triggers;

/// <summary>
/// As a user would: store a tabular spec, upload a CSV batch and its <c>_SUCCESS</c> marker, and get a served model,
/// with no HTTP call to start the run. The host has a real training worker and its own uploads container.
/// </summary>
public sealed class PipelineUploadTrainingEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Key = "upload-e2e-key";
    private readonly string uploads = "uploads-" + Guid.NewGuid().ToString("N")[..10];
    private readonly string data = Directory.CreateTempSubdirectory("mlf-upload-e2e-").FullName;
    private WebApplication? app;

    public async Task InitializeAsync() => app = await WorkerHost.StartAsync(
        "uploade2e", Key, data, "--Pipelines:Triggers:UploadsContainer", uploads, "--Pipelines:Triggers:UploadPollSeconds", "0.5",
        "--Pipelines:Triggers:RecordsContainer", "trig-" + uploads[^10..], "--Pipelines:Triggers:FireSchedules", "false");

    public async Task DisposeAsync()
    {
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task AnUploadedBatchWithItsMarkerBecomesAServedModel()
    {
        var pipeline = "upl-" + Guid.NewGuid().ToString("N")[..6];
        using var api = new ApiClient(Commands.BaseUrl(app!), Key);
        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { Kind = DatasetKinds.Tabular, SourceContainer = uploads, SourcePrefix = $"datasets/{pipeline}/seed" },
            Columns = new() { Label = "approved", Ignore = ["applicant"] },
            Sweep = new PipelineSweep { Algorithm = "random", MaxTrials = 1, ParallelTrials = 1, Epochs = 8 },
            RetrainEpochs = 10,
        };
        Assert.Equal(HttpStatusCode.OK, (await api.Http.PutAsJsonAsync($"/api/pipelines/{pipeline}", spec, MlJson.Options)).StatusCode);

        var container = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient(uploads);
        await container.CreateIfNotExistsAsync();
        await container.GetBlobClient($"datasets/{pipeline}/2025-03-01/loans.csv").UploadAsync(BinaryData.FromString(TabularPipelineEndToEndTests.LoansCsv(400, 11)));
        await container.GetBlobClient($"datasets/{pipeline}/2025-03-01/_SUCCESS").UploadAsync(BinaryData.Empty);

        var record = await Eventually.GetAsync(
            async () => (await api.Http.GetFromJsonAsync<JsonObject>($"/api/pipelines/{pipeline}/triggers"))!["triggers"]!.AsArray(),
            t => t.Count == 1,
            TimeSpan.FromSeconds(60),
            "the trigger record");
        var runId = (string)record[0]!["runId"]!;
        var (_, final) = await api.WaitDoneAsync(runId, TimeSpan.FromMinutes(8));
        Assert.True((string?)final!["runtimeStatus"] == "Completed", final.ToJsonString());
        var result = final["output"]!.Deserialize<PipelineRunResult>(MlJson.Options)!;
        output.WriteLine(JsonSerializer.Serialize(result.Metrics));
        Assert.Equal(MnistPipelineOutcomes.Promoted, result.Outcome);
        Assert.Equal(("blob", $"datasets/{pipeline}/2025-03-01"), ((string?)final["input"]!["trigger"], (string?)final["input"]!["dataset"]!["sourcePrefix"]));

        var infer = await api.Http.PostAsJsonAsync($"/v2/models/{pipeline}/infer", new
        {
            inputs = new object[]
            {
                new { name = "income", shape = new[] { 1 }, datatype = "BYTES", data = new[] { "110.0" } },
                new { name = "debt", shape = new[] { 1 }, datatype = "FP32", data = new[] { 2.0 } },
                new { name = "employed", shape = new[] { 1 }, datatype = "BYTES", data = new[] { "yes" } },
                new { name = "city", shape = new[] { 1 }, datatype = "BYTES", data = new[] { "Lyon" } },
            },
        });
        var text = await infer.Content.ReadAsStringAsync();
        output.WriteLine(text);
        Assert.True(infer.IsSuccessStatusCode, text);

        // The marker written again (same files, same spec) is the same run: no second training.
        await container.GetBlobClient($"datasets/{pipeline}/2025-03-01/_SUCCESS").UploadAsync(BinaryData.Empty, overwrite: true);
        var again = await Eventually.GetAsync(
            async () => (await api.Http.GetFromJsonAsync<JsonObject>($"/api/pipelines/{pipeline}/triggers"))!["triggers"]!.AsArray(),
            t => (string?)t[0]!["outcome"] == "duplicate",
            TimeSpan.FromSeconds(60),
            "the second marker's record");
        Assert.Equal(runId, (string?)again[0]!["runId"]);
    }
}
