using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;

namespace MlFunctions.GpuWorker.Storage;

/// <summary>What a checkpoint holds besides the two state blobs; written last, so its presence commits the checkpoint.</summary>
public sealed record CheckpointInfo
{
    public const int CurrentSchemaVersion = 1;

    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    public required string JobId { get; init; }

    public required string Model { get; init; }

    /// <summary>The last finished epoch (1-based); training resumes at Epoch + 1.</summary>
    public required int Epoch { get; init; }

    public required long Seed { get; init; }

    /// <summary>How each epoch's RNG derives from the seed (no RNG state carries across epochs; see Seeds).</summary>
    public required string RngScheme { get; init; }

    public required HyperParameters Hyperparameters { get; init; }

    public required IReadOnlyList<EpochMetrics> History { get; init; }

    public required string Device { get; init; }

    public required string Optimizer { get; init; }

    public required string ModelBlob { get; init; }

    public required string ModelSha256 { get; init; }

    public required string OptimizerBlob { get; init; }

    public required string OptimizerSha256 { get; init; }

    public DateTimeOffset CreatedAt { get; init; } = DateTimeOffset.UtcNow;
}

/// <summary>A loaded checkpoint: its info and the verified model and optimizer state bytes.</summary>
public sealed record Checkpoint(CheckpointInfo Info, byte[] ModelState, byte[] OptimizerState, Uri Uri);

/// <summary>
/// The per-job folder in the <c>checkpoints</c> container:
/// <c>jobs/{jobId}/epoch-0001/{model.bin, optimizer.bin, checkpoint.json}</c>, <c>status.json</c>, <c>stop</c> and
/// <c>journal.log</c> (an append blob: one JSON line per job/epoch start and end, the audit trail that shows no
/// finished epoch ran twice).
/// </summary>
public sealed class JobStore(BlobServiceClient blobs)
{
    private readonly BlobContainerClient checkpoints = blobs.GetBlobContainerClient(TrainingStorage.CheckpointsContainer);
    private readonly BlobContainerClient models = blobs.GetBlobContainerClient(TrainingStorage.ModelsContainer);
    private int containersReady;

    public BlobServiceClient Blobs => blobs;

    public static string EpochFolder(string jobId, int epoch) => $"{TrainingStorage.JobFolder(jobId)}/epoch-{epoch:D4}";

    public static string JournalBlob(string jobId) => $"{TrainingStorage.JobFolder(jobId)}/journal.log";

    public static string OnnxBlob(string jobId) => $"artifacts/{jobId}/model.onnx";

    public static string TransformBlob(string jobId) => $"artifacts/{jobId}/transform.json";

    public async Task EnsureContainersAsync(CancellationToken cancellation)
    {
        if (Volatile.Read(ref containersReady) == 1)
            return;
        await checkpoints.CreateIfNotExistsAsync(cancellationToken: cancellation);
        await models.CreateIfNotExistsAsync(cancellationToken: cancellation);
        Volatile.Write(ref containersReady, 1);
    }

    public async Task<Uri> SaveCheckpointAsync(CheckpointInfo info, byte[] modelState, byte[] optimizerState, CancellationToken cancellation)
    {
        var folder = EpochFolder(info.JobId, info.Epoch);
        await checkpoints.GetBlobClient($"{folder}/model.bin").UploadAsync(new BinaryData(modelState), overwrite: true, cancellation);
        await checkpoints.GetBlobClient($"{folder}/optimizer.bin").UploadAsync(new BinaryData(optimizerState), overwrite: true, cancellation);
        var infoBlob = checkpoints.GetBlobClient($"{folder}/checkpoint.json");
        await infoBlob.UploadAsync(BinaryData.FromObjectAsJson(info, MlJson.Options), overwrite: true, cancellation);
        return infoBlob.Uri;
    }

    /// <summary>
    /// The newest committed checkpoint (checkpoint.json present and both state blobs matching their sha256), or null.
    /// A torn checkpoint (killed mid-upload) is skipped in favour of the previous epoch's.
    /// </summary>
    public async Task<Checkpoint?> LoadNewestCheckpointAsync(string jobId, CancellationToken cancellation)
    {
        var epochs = new SortedSet<int>();
        var prefix = TrainingStorage.JobFolder(jobId) + "/epoch-";
        await foreach (var blob in checkpoints.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, cancellation))
        {
            if (blob.Name.EndsWith("/checkpoint.json", StringComparison.Ordinal)
                && int.TryParse(blob.Name.AsSpan(prefix.Length, 4), out var epoch))
            {
                epochs.Add(epoch);
            }
        }

        foreach (var epoch in epochs.Reverse())
        {
            var folder = EpochFolder(jobId, epoch);
            var infoBlob = checkpoints.GetBlobClient($"{folder}/checkpoint.json");
            var info = (await infoBlob.DownloadContentAsync(cancellation)).Value.Content.ToObjectFromJson<CheckpointInfo>(MlJson.Options);
            if (info is null)
                continue;
            var model = await TryDownloadAsync(checkpoints.GetBlobClient(info.ModelBlob), cancellation);
            var optimizer = await TryDownloadAsync(checkpoints.GetBlobClient(info.OptimizerBlob), cancellation);
            if (model is not null && optimizer is not null && Sha256(model) == info.ModelSha256 && Sha256(optimizer) == info.OptimizerSha256)
                return new Checkpoint(info, model, optimizer, infoBlob.Uri);
        }

        return null;
    }

    public async Task<TrainingJobStatus?> ReadStatusAsync(string jobId, CancellationToken cancellation)
    {
        var bytes = await TryDownloadAsync(checkpoints.GetBlobClient(TrainingStorage.StatusBlob(jobId)), cancellation);
        return bytes is null ? null : JsonSerializer.Deserialize<TrainingJobStatus>(bytes, MlJson.Options);
    }

    public Task WriteStatusAsync(TrainingJobStatus status, CancellationToken cancellation) =>
        checkpoints.GetBlobClient(TrainingStorage.StatusBlob(status.JobId))
            .UploadAsync(BinaryData.FromObjectAsJson(status, MlJson.Options), overwrite: true, cancellation);

    public async Task<bool> StopRequestedAsync(string jobId, CancellationToken cancellation) =>
        (await checkpoints.GetBlobClient(TrainingStorage.StopBlob(jobId)).ExistsAsync(cancellation)).Value;

    /// <summary>Appends one JSON line to the job's journal.</summary>
    public async Task AppendJournalAsync(string jobId, object entry, CancellationToken cancellation)
    {
        var journal = checkpoints.GetAppendBlobClient(JournalBlob(jobId));
        await journal.CreateIfNotExistsAsync(cancellationToken: cancellation);
        var line = JsonSerializer.Serialize(entry, MlJson.Options) + "\n";
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(line));
        await journal.AppendBlockAsync(stream, cancellationToken: cancellation);
    }

    public async Task<string> ReadJournalAsync(string jobId, CancellationToken cancellation)
    {
        var bytes = await TryDownloadAsync(checkpoints.GetBlobClient(JournalBlob(jobId)), cancellation);
        return bytes is null ? "" : Encoding.UTF8.GetString(bytes);
    }

    /// <summary>Uploads the ONNX model (and its transform next to it); returns the model's blob URI.</summary>
    public async Task<Uri> UploadOnnxAsync(string jobId, byte[] onnx, BinaryData transformJson, CancellationToken cancellation)
    {
        var blob = models.GetBlobClient(OnnxBlob(jobId));
        await blob.UploadAsync(new BinaryData(onnx), overwrite: true, cancellation);
        await models.GetBlobClient(TransformBlob(jobId)).UploadAsync(transformJson, overwrite: true, cancellation);
        return blob.Uri;
    }

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static async Task<byte[]?> TryDownloadAsync(BlobClient blob, CancellationToken cancellation)
    {
        try
        {
            return (await blob.DownloadContentAsync(cancellation)).Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }
}
