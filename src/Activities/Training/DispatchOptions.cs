namespace MlFunctions.Activities.Training;

/// <summary>How training jobs reach the worker deployment (configuration section <c>Dispatch</c>).</summary>
public sealed class DispatchOptions
{
    public const string QueueMode = "Queue";
    public const string KubernetesJobMode = "KubernetesJob";

    /// <summary>
    /// <c>Queue</c> (default): a message on training-jobs for the long-running, KEDA-scaled worker.
    /// <c>KubernetesJob</c>: one batch/v1 Job per dispatch, running the worker image in single-job mode.
    /// </summary>
    public string Mode { get; set; } = QueueMode;

    /// <summary>The queue in Queue mode; the embedded workers are pointed at the same one.</summary>
    public string JobsQueue { get; set; } = Core.Training.TrainingStorage.JobsQueue;

    public KubernetesJobOptions Kubernetes { get; set; } = new();
}

public sealed class KubernetesJobOptions
{
    /// <summary>API server URL; empty means in-cluster configuration (the pod's service account).</summary>
    public string? ApiServer { get; set; }

    public string Namespace { get; set; } = "mlfunctions";

    public string Image { get; set; } = "mlfunctions/gpu-worker:latest";

    /// <summary>GPUs per job (<c>nvidia.com/gpu</c> limit); 0 runs on CPU nodes.</summary>
    public int Gpus { get; set; } = 1;

    public string ServiceAccount { get; set; } = "mlfunctions-trainer";

    /// <summary>The Secret holding the storage connection string; referenced, never copied into the Job.</summary>
    public string StorageSecretName { get; set; } = "mlfunctions-storage";

    public string StorageSecretKey { get; set; } = "AzureWebJobsStorage";

    public int TtlSecondsAfterFinished { get; set; } = 3600;

    /// <summary>Node labels a GPU job must land on (e.g. an AKS GPU pool's label); empty: no constraint.</summary>
    public Dictionary<string, string> NodeSelector { get; set; } = [];

    /// <summary>
    /// Tolerate the <c>nvidia.com/gpu</c> taint that GPU node pools carry, so a GPU job is not left
    /// pending on tainted nodes. Applied only when <see cref="Gpus"/> is above 0.
    /// </summary>
    public bool TolerateGpuTaint { get; set; } = true;

    public string CpuRequest { get; set; } = "2";

    public string MemoryRequest { get; set; } = "4Gi";

    public string MemoryLimit { get; set; } = "8Gi";
}
