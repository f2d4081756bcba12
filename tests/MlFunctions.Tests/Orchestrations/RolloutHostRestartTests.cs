using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using MlFunctions.Core.Registry;
using MlFunctions.Local;
using MlFunctions.Local.Cli;
using MlFunctions.Serving.Online;
using MlFunctions.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Orchestrations;

/// <summary>
/// A rollout started over HTTP on the local host survives the host going away mid-stage: a new host on the same task
/// hub resumes it from its durable timer and promotes the challenger. Its own model name on the shared Azurite.
/// </summary>
[Collection(nameof(Engine.MultiProcessCollection))]
public sealed class RolloutHostRestartTests(ITestOutputHelper output)
{
    private const string Key = "rollout-key";
    private readonly string model = "rollout-" + Guid.NewGuid().ToString("N")[..10];
    private readonly string hub = TestStorage.NewTaskHub("rollout");
    private readonly string data = Directory.CreateTempSubdirectory("mlf-rollout-").FullName;

    [Fact]
    public async Task A_rollout_resumes_on_a_new_host_after_the_first_one_stops_mid_stage_and_promotes()
    {
        var first = await StartHostAsync();
        string id;
        await using (first)
        {
            var registry = first.Services.GetRequiredService<IModelRegistry>();
            var v1 = await RegisterAsync(registry, "a");
            var v2 = await RegisterAsync(registry, "b");
            await registry.SetAliasAsync(model, RegistryNames.Champion, v1);
            await registry.SetAliasAsync(model, "challenger", v2);

            using var api = new ApiClient(Commands.BaseUrl(first), Key);
            var bad = await api.Http.PostAsJsonAsync($"/api/serving/{model}/rollouts", new { challenger = "ghost", stages = new[] { 50, 25 }, holdSeconds = 0 });
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            var problems = (await bad.Content.ReadFromJsonAsync<JsonObject>())!["problems"]!.AsArray().Select(p => (string)p!).ToList();
            output.WriteLine(string.Join("\n", problems));
            Assert.Equal(4, problems.Count); // unknown alias, decreasing stages, last not 100, hold 0
            Assert.Equal(HttpStatusCode.NotFound, (await api.Http.PostAsJsonAsync("/api/serving/no-such-model/rollouts", new { challenger = "challenger" })).StatusCode);

            // No traffic: minimums of 0 let each stage advance on its hold time alone.
            var start = await api.Http.PostAsJsonAsync($"/api/serving/{model}/rollouts", new
            {
                challenger = "challenger",
                stages = new[] { 50, 100 },
                holdSeconds = 10,
                pollSeconds = 1,
                criteria = new { minRequests = 0, minFeedback = 0 },
            });
            Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
            id = (string)(await start.Content.ReadFromJsonAsync<JsonObject>())!["id"]!;
            Assert.StartsWith($"rollout-{model}-", id);
            Assert.Equal(HttpStatusCode.Conflict, (await api.Http.PostAsJsonAsync($"/api/serving/{model}/rollouts", new { challenger = "challenger" })).StatusCode);

            var running = await Eventually.GetAsync(
                () => api.Http.GetFromJsonAsync<JsonObject>($"/api/serving/{model}/rollouts/{id}"),
                s => (double?)s?["rollout"]?["percent"] == 50,
                TimeSpan.FromSeconds(60),
                "the 50% stage");
            Assert.Equal("Running", (string?)running!["runtimeStatus"]);
            var policy = await first.Services.GetRequiredService<BlobServingStore>().GetPolicyAsync(model);
            Assert.Equal(50, policy!.Policy.Weights!["challenger"]);
            await first.StopAsync();
        }

        // A new host object on the same task hub and storage: the stage's timer fires there and the rollout ends.
        await using var second = await StartHostAsync();
        using var again = new ApiClient(Commands.BaseUrl(second), Key);
        var done = await Eventually.GetAsync(
            () => again.Http.GetFromJsonAsync<JsonObject>($"/api/serving/{model}/rollouts/{id}"),
            s => (string?)s?["runtimeStatus"] is "Completed" or "Failed",
            TimeSpan.FromSeconds(120),
            "the rollout's end");
        output.WriteLine(done!.ToJsonString());
        Assert.Equal("promoted", (string?)done["rollout"]!["outcome"]);
        var registryAfter = second.Services.GetRequiredService<IModelRegistry>();
        Assert.Equal((await registryAfter.GetAliasAsync(model, "challenger"))!.Version, (await registryAfter.GetAliasAsync(model, RegistryNames.Champion))!.Version);
        var final = await second.Services.GetRequiredService<BlobServingStore>().GetPolicyAsync(model);
        Assert.Equal(("fixed", "champion"), (final!.Policy.Kind, final.Policy.Alias));
        Assert.Equal(HttpStatusCode.Conflict, (await again.Http.PostAsync($"/api/serving/{model}/rollouts/{id}/cancel", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await again.Http.GetAsync($"/api/serving/{model}/rollouts/rollout-{model}-nope")).StatusCode);
        await second.StopAsync();
    }

    [Fact]
    public async Task A_rollout_whose_host_is_killed_with_sigkill_mid_stage_resumes_in_a_new_process_and_promotes()
    {
        var storage = await TestStorage.ConnectionStringAsync();
        var models = new Azure.Storage.Blobs.BlobServiceClient(storage).GetBlobContainerClient(Activities.Registry.BlobModelRegistry.DefaultContainerName);
        await models.CreateIfNotExistsAsync();
        var registry = new Activities.Registry.BlobModelRegistry(models);
        var v1 = await RegisterAsync(registry, "a");
        var v2 = await RegisterAsync(registry, "b");
        await registry.SetAliasAsync(model, RegistryNames.Champion, v1);
        await registry.SetAliasAsync(model, "challenger", v2);

        string id;
        await using (var first = await HostProcess.StartAsync(storage, hub, Key, Path.Combine(data, "a")))
        {
            using var api = new ApiClient(first.BaseUrl, Key);
            var start = await api.Http.PostAsJsonAsync($"/api/serving/{model}/rollouts", new
            {
                challenger = "challenger",
                stages = new[] { 50, 100 },
                holdSeconds = 10,
                pollSeconds = 1,
                criteria = new { minRequests = 0, minFeedback = 0 },
            });
            Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
            id = (string)(await start.Content.ReadFromJsonAsync<JsonObject>())!["id"]!;
            await Eventually.GetAsync(
                () => api.Http.GetFromJsonAsync<JsonObject>($"/api/serving/{model}/rollouts/{id}"),
                s => (double?)s?["rollout"]?["percent"] == 50,
                TimeSpan.FromSeconds(60),
                "the 50% stage");
            first.KillHard();
            output.WriteLine($"killed pid {first.Pid} in the 50% stage of {id}");
        }

        // Another process on the same task hub: the orchestration replays from its history and the stage's timer fires there.
        await using var second = await HostProcess.StartAsync(storage, hub, Key, Path.Combine(data, "b"));
        using var again = new ApiClient(second.BaseUrl, Key);
        var done = await Eventually.GetAsync(
            () => again.Http.GetFromJsonAsync<JsonObject>($"/api/serving/{model}/rollouts/{id}"),
            s => (string?)s?["runtimeStatus"] is "Completed" or "Failed",
            TimeSpan.FromSeconds(180),
            "the rollout's end after the kill");
        output.WriteLine(done!.ToJsonString());
        Assert.Equal("promoted", (string?)done["rollout"]!["outcome"]);
        Assert.Equal(v2, (await registry.GetAliasAsync(model, RegistryNames.Champion))!.Version);
    }

    private async Task<int> RegisterAsync(IModelRegistry registry, string tag)
    {
        var v = await registry.RegisterVersionAsync(model, new ModelVersionDraft
        {
            ArtifactUri = $"models/{model}/artifacts/{tag}.onnx",
            Sha256 = new string(tag[0], 64).Replace(tag[0], tag == "a" ? 'a' : 'b'),
            Signature = new ModelSignature([new TensorSignature("input", "FP32", [-1, 4])], [new TensorSignature("output", "FP32", [-1, 2])]),
            Lineage = new ModelLineage { PipelineRunId = "rollout-test-" + tag },
        });
        return v.Version;
    }

    private async Task<WebApplication> StartHostAsync()
    {
        var host = LocalHost.Build(
        [
            "--urls", "http://127.0.0.1:0", "--AzureWebJobsStorage", await TestStorage.ConnectionStringAsync(), "--Local:TaskHub", hub,
            "--Local:ApiKey", Key, "--Local:DataPath", data, "--Logging:LogLevel:Default", "Warning", "--Local:Workers", "0",
        ]);
        await host.StartAsync();
        return host;
    }
}
