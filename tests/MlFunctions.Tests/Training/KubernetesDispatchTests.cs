using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MlFunctions.Activities;
using MlFunctions.Activities.Storage;
using MlFunctions.Activities.Training;
using MlFunctions.Core.Training;
using Moq;
using Xunit;

namespace MlFunctions.Tests.Training;

/// <summary>Dispatch:Mode=KubernetesJob against a fake API server that records the request.</summary>
public sealed class KubernetesDispatchTests
{
    [Fact]
    public async Task CreatesOneBatchV1JobWithGpuLimitsLabelsTtlAndTheSecretReferenced()
    {
        using var api = new FakeKubernetesApiServer();
        var options = new DispatchOptions
        {
            Mode = DispatchOptions.KubernetesJobMode,
            Kubernetes = new KubernetesJobOptions
            {
                ApiServer = api.Url, Namespace = "ml", Image = "registry/worker:1", Gpus = 1, TtlSecondsAfterFinished = 600,
                NodeSelector = new Dictionary<string, string> { ["agentpool"] = "gpu" },
            },
        };
        var activity = new DispatchTrainingActivity(Mock.Of<IStorageClients>(MockBehavior.Strict), Options.Create(options), NullLogger<DispatchTrainingActivity>.Instance);
        var job = Job() with { Attempt = 2, Labels = new Dictionary<string, string> { ["run"] = "run/42", ["trial"] = "t-7" } };

        var result = await activity.RunAsync(new DispatchTrainingInput(job, "parent"), new ActivityCall("DispatchTraining", "parent", default, "http://h/raiseEvent/{eventName}?code=k"));

        Assert.Equal(DispatchOptions.KubernetesJobMode, result.Mode);
        // Attempt 2 first deletes attempt 1's Job (404 here: this server never created it), then creates its own.
        Assert.Equal(("DELETE", $"/apis/batch/v1/namespaces/ml/jobs/{DispatchTrainingActivity.JobName(job with { Attempt = 1 })}"), (api.Requests[0].Method, api.Requests[0].Path));
        var (method, path, body) = api.Requests[1];
        Assert.Equal("POST", method);
        Assert.Equal("/apis/batch/v1/namespaces/ml/jobs", path);
        Assert.Equal("Job", (string?)body!["kind"]);
        Assert.Equal("batch/v1", (string?)body["apiVersion"]);
        Assert.Equal(result.Target, (string?)body["metadata"]!["name"]);
        Assert.Matches("^train-[0-9a-f]{10}-2$", result.Target);
        Assert.Equal(600, (int)body["spec"]!["ttlSecondsAfterFinished"]!);
        Assert.Equal(0, (int)body["spec"]!["backoffLimit"]!);

        var pod = body["spec"]!["template"]!["spec"]!;
        Assert.Equal("Never", (string?)pod["restartPolicy"]);
        Assert.Equal("gpu", (string?)pod["nodeSelector"]!["agentpool"]);
        var toleration = pod["tolerations"]![0]!;
        Assert.Equal("nvidia.com/gpu", (string?)toleration["key"]);
        Assert.Equal("NoSchedule", (string?)toleration["effect"]);
        var labels = body["spec"]!["template"]!["metadata"]!["labels"]!;
        Assert.Equal("run-42", (string?)labels["mlfunctions.io/run"]);
        Assert.Equal("t-7", (string?)labels["mlfunctions.io/trial"]);
        Assert.Equal("job-1", (string?)labels["mlfunctions.io/job-id"]);

        var container = pod["containers"]![0]!;
        Assert.Equal("registry/worker:1", (string?)container["image"]);
        Assert.Equal("1", (string?)container["resources"]!["limits"]!["nvidia.com/gpu"]);
        var env = container["env"]!.AsArray();
        var jobJson = (string?)env.Single(e => (string?)e!["name"] == DispatchTrainingActivity.JobEnvironmentVariable)!["value"];
        Assert.Contains("\"callbackUri\":\"http://h/raiseEvent/{eventName}?code=k\"", jobJson);
        Assert.Contains("\"attempt\":2", jobJson);
        var storage = env.Single(e => (string?)e!["name"] == "AzureWebJobsStorage")!;
        Assert.Null(storage["value"]);
        Assert.Equal("mlfunctions-storage", (string?)storage["valueFrom"]!["secretKeyRef"]!["name"]);
    }

    [Fact]
    public async Task ARetriedDispatchOfTheSameAttemptIsIdempotent()
    {
        using var api = new FakeKubernetesApiServer();
        var options = new DispatchOptions { Mode = DispatchOptions.KubernetesJobMode, Kubernetes = new KubernetesJobOptions { ApiServer = api.Url, Gpus = 0 } };
        var activity = new DispatchTrainingActivity(Mock.Of<IStorageClients>(MockBehavior.Strict), Options.Create(options), NullLogger<DispatchTrainingActivity>.Instance);
        var call = new ActivityCall("DispatchTraining", "p", default);

        var first = await activity.RunAsync(new DispatchTrainingInput(Job(), "p"), call);
        var second = await activity.RunAsync(new DispatchTrainingInput(Job(), "p"), call);

        Assert.Equal(first.Target, second.Target);
        Assert.Equal(2, api.Requests.Count);
        var cpuPod = api.Requests[0].Body!["spec"]!["template"]!["spec"]!;
        Assert.Null(cpuPod["containers"]![0]!["resources"]!["limits"]!["nvidia.com/gpu"]);
        Assert.Null(cpuPod["tolerations"]);
    }

    [Fact]
    public async Task AnUnknownModeFailsTheStepWithTheChoices()
    {
        var activity = new DispatchTrainingActivity(
            Mock.Of<IStorageClients>(MockBehavior.Strict), Options.Create(new DispatchOptions { Mode = "Carrier pigeon" }), NullLogger<DispatchTrainingActivity>.Instance);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            activity.RunAsync(new DispatchTrainingInput(Job(), "p"), new ActivityCall("DispatchTraining", "p", default)));
        Assert.Contains("Queue, KubernetesJob", error.Message);
    }

    [Fact]
    public async Task ARedispatchDeletesThePreviousAttemptsJobFirst()
    {
        using var api = new FakeKubernetesApiServer();
        var options = new DispatchOptions { Mode = DispatchOptions.KubernetesJobMode, Kubernetes = new KubernetesJobOptions { ApiServer = api.Url, Namespace = "ml" } };
        var activity = new DispatchTrainingActivity(Mock.Of<IStorageClients>(MockBehavior.Strict), Options.Create(options), NullLogger<DispatchTrainingActivity>.Instance);

        await activity.RunAsync(new DispatchTrainingInput(Job() with { Attempt = 2 }, "p"), new ActivityCall("DispatchTraining", "p", default));

        Assert.Equal(2, api.Requests.Count);
        Assert.Equal("DELETE", api.Requests[0].Method);
        Assert.Equal($"/apis/batch/v1/namespaces/ml/jobs/{DispatchTrainingActivity.JobName(Job() with { Attempt = 1 })}", api.Requests[0].Path);
        Assert.Equal("POST", api.Requests[1].Method);
    }

    internal static TrainingJob Job() => new()
    {
        JobId = "job-1",
        Model = "mlp",
        Hyperparameters = new HyperParameters(),
        Data = new PreparedDataRef("prepared", "mnist/v1/t1", "abc"),
    };
}
