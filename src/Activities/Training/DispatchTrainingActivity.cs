using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;

namespace MlFunctions.Activities.Training;

/// <summary>
/// Gives the worker deployment a job: a queue message, or a Kubernetes Job. The callback (the calling
/// orchestration's sendEventPostUri) comes from the host through <see cref="ActivityCall.EventCallbackUri"/>.
/// </summary>
public sealed class DispatchTrainingActivity(
    IStorageClients storage,
    IOptions<DispatchOptions> options,
    ILogger<DispatchTrainingActivity> logger) : IActivity<DispatchTrainingInput, DispatchTrainingResult>
{
    /// <summary>The env var that carries the job in single-job mode (Kubernetes Jobs).</summary>
    public const string JobEnvironmentVariable = "MLF_TRAINING_JOB";

    public async Task<DispatchTrainingResult> RunAsync(DispatchTrainingInput input, ActivityCall call)
    {
        var job = input.Job with { CallbackUri = call.EventCallbackUri ?? input.Job.CallbackUri };
        if (job.CallbackUri is null)
        {
            logger.LogWarning("Job {JobId} has no callback URI: the worker cannot report progress to {Instance}", job.JobId, input.InstanceId);
        }

        var mode = options.Value.Mode;
        return mode switch
        {
            DispatchOptions.QueueMode => await EnqueueAsync(job, call.Cancellation),
            DispatchOptions.KubernetesJobMode => await CreateKubernetesJobAsync(job, options.Value.Kubernetes, call.Cancellation),
            _ => throw new InvalidOperationException($"Dispatch:Mode '{mode}' is not one of {DispatchOptions.QueueMode}, {DispatchOptions.KubernetesJobMode}"),
        };
    }

    private async Task<DispatchTrainingResult> EnqueueAsync(TrainingJob job, CancellationToken cancellation)
    {
        var queue = (await storage.QueuesAsync(cancellation)).GetQueueClient(options.Value.JobsQueue);
        await queue.CreateIfNotExistsAsync(cancellationToken: cancellation);
        var receipt = await queue.SendMessageAsync(JsonSerializer.Serialize(job, MlJson.Options), cancellation);
        logger.LogInformation("Queued training job {JobId} attempt {Attempt} as message {MessageId}", job.JobId, job.Attempt, receipt.Value.MessageId);
        return new DispatchTrainingResult(DispatchOptions.QueueMode, receipt.Value.MessageId);
    }

    private async Task<DispatchTrainingResult> CreateKubernetesJobAsync(TrainingJob job, KubernetesJobOptions k8sOptions, CancellationToken cancellation)
    {
        var config = string.IsNullOrEmpty(k8sOptions.ApiServer)
            ? KubernetesClientConfiguration.InClusterConfig()
            : new KubernetesClientConfiguration { Host = k8sOptions.ApiServer };
        using var client = new Kubernetes(config);
        if (job.Attempt > 1)
        {
            await DeleteSupersededAttemptAsync(client, job, k8sOptions.Namespace, cancellation);
        }

        var manifest = BuildJob(job, k8sOptions);
        try
        {
            await client.BatchV1.CreateNamespacedJobAsync(manifest, k8sOptions.Namespace, cancellationToken: cancellation);
            logger.LogInformation("Created Kubernetes Job {Name} for training job {JobId}", manifest.Metadata.Name, job.JobId);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Conflict)
        {
            // Activities run at least once: the Job of this attempt already exists, which is the goal.
            logger.LogInformation("Kubernetes Job {Name} already exists", manifest.Metadata.Name);
        }

        return new DispatchTrainingResult(DispatchOptions.KubernetesJobMode, manifest.Metadata.Name);
    }

    /// <summary>
    /// A re-dispatch means the previous attempt went silent (or failed); its pod may still be alive and
    /// holding a GPU, training the same job id into the same checkpoints. Deleting its Job (with its pods)
    /// before starting the next attempt keeps one writer per job. Gone already is fine.
    /// </summary>
    private async Task DeleteSupersededAttemptAsync(Kubernetes client, TrainingJob job, string ns, CancellationToken cancellation)
    {
        var previous = JobName(job with { Attempt = job.Attempt - 1 });
        try
        {
            await client.BatchV1.DeleteNamespacedJobAsync(previous, ns, propagationPolicy: "Foreground", cancellationToken: cancellation);
            logger.LogInformation("Deleted superseded Kubernetes Job {Name} of training job {JobId}", previous, job.JobId);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            // Already removed (TTL controller, or an earlier try of this activity).
        }
    }

    /// <summary>The batch/v1 Job for one attempt: the worker image in single-job mode.</summary>
    public static V1Job BuildJob(TrainingJob job, KubernetesJobOptions o)
    {
        var labels = new Dictionary<string, string>
        {
            ["app.kubernetes.io/name"] = "mlfunctions-gpu-worker",
            ["app.kubernetes.io/component"] = "training-job",
            ["mlfunctions.io/job-id"] = LabelValue(job.JobId),
            ["mlfunctions.io/attempt"] = job.Attempt.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        foreach (var key in new[] { "run", "trial" })
        {
            if (job.Labels.TryGetValue(key, out var value))
            {
                labels[$"mlfunctions.io/{key}"] = LabelValue(value);
            }
        }

        var limits = new Dictionary<string, ResourceQuantity> { ["memory"] = new(o.MemoryLimit) };
        if (o.Gpus > 0)
        {
            limits["nvidia.com/gpu"] = new ResourceQuantity(o.Gpus.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return new V1Job
        {
            ApiVersion = "batch/v1",
            Kind = "Job",
            Metadata = new V1ObjectMeta { Name = JobName(job), NamespaceProperty = o.Namespace, Labels = labels },
            Spec = new V1JobSpec
            {
                // Retries belong to the orchestration (bounded attempts, resume from checkpoint).
                BackoffLimit = 0,
                TtlSecondsAfterFinished = o.TtlSecondsAfterFinished,
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = labels },
                    Spec = new V1PodSpec
                    {
                        RestartPolicy = "Never",
                        ServiceAccountName = o.ServiceAccount,
                        NodeSelector = o.NodeSelector.Count > 0 ? new Dictionary<string, string>(o.NodeSelector) : null,
                        Tolerations = o.Gpus > 0 && o.TolerateGpuTaint
                            ? [new V1Toleration { Key = "nvidia.com/gpu", OperatorProperty = "Exists", Effect = "NoSchedule" }]
                            : null,
                        Containers =
                        [
                            new V1Container
                            {
                                Name = "worker",
                                Image = o.Image,
                                Args = ["--single-job"],
                                Env =
                                [
                                    new V1EnvVar { Name = JobEnvironmentVariable, Value = JsonSerializer.Serialize(job, MlJson.Options) },
                                    new V1EnvVar
                                    {
                                        Name = "AzureWebJobsStorage",
                                        ValueFrom = new V1EnvVarSource
                                        {
                                            SecretKeyRef = new V1SecretKeySelector { Name = o.StorageSecretName, Key = o.StorageSecretKey },
                                        },
                                    },
                                ],
                                Resources = new V1ResourceRequirements
                                {
                                    Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new(o.CpuRequest), ["memory"] = new(o.MemoryRequest) },
                                    Limits = limits,
                                },
                            },
                        ],
                    },
                },
            },
        };
    }

    /// <summary>DNS-1123 and at most 63 characters, stable per (job, attempt) so a retried create conflicts instead of duplicating.</summary>
    public static string JobName(TrainingJob job)
    {
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(job.JobId)))[..10].ToLowerInvariant();
        return $"train-{hash}-{job.Attempt}";
    }

    /// <summary>Label values: at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric.</summary>
    public static string LabelValue(string value)
    {
        var clean = new string(value.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '-').ToArray());
        clean = clean.Length > 63 ? clean[..63] : clean;
        return clean.Trim('-', '_', '.');
    }
}

/// <summary>Asks the worker to stop a job at its next epoch boundary (writes the stop marker blob).</summary>
public sealed class RequestTrainingStopActivity(IStorageClients storage) : IActivity<string, bool>
{
    public async Task<bool> RunAsync(string jobId, ActivityCall call)
    {
        var container = (await storage.BlobsAsync(call.Cancellation)).GetBlobContainerClient(TrainingStorage.CheckpointsContainer);
        await container.CreateIfNotExistsAsync(cancellationToken: call.Cancellation);
        await container.GetBlobClient(TrainingStorage.StopBlob(jobId))
            .UploadAsync(BinaryData.FromString($"stop requested at {DateTimeOffset.UtcNow:O}"), overwrite: true, call.Cancellation);
        return true;
    }
}
