using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Api.Pipelines;

/// <summary>
/// Settings of the generic pipeline triggers and schedules (section <c>Pipelines:Triggers</c>), read by both
/// hosts. The Functions blob trigger's path is an attribute, so there the uploads container is fixed at
/// <see cref="PipelineTriggers.DefaultUploadsContainer"/>; the timer that fires schedules runs every minute.
/// </summary>
public sealed class PipelineAutomationOptions
{
    public const string Section = "Pipelines:Triggers";

    /// <summary>Container the upload batches land in, <c>{container}/datasets/{pipeline}/{batch}/</c>.</summary>
    public string UploadsContainer { get; set; } = PipelineTriggers.DefaultUploadsContainer;

    /// <summary>Local host: poll the uploads container for markers of any pipeline.</summary>
    public bool WatchUploads { get; set; } = true;

    /// <summary>Local host: seconds between two polls of the uploads container.</summary>
    public double UploadPollSeconds { get; set; } = 10;

    /// <summary>Container of the schedules, <c>{pipeline}/{id}.json</c>.</summary>
    public string SchedulesContainer { get; set; } = "pipeline-schedules";

    /// <summary>Container of the trigger records (what each marker led to), <c>{pipeline}/{batch}.json</c>.</summary>
    public string RecordsContainer { get; set; } = "pipeline-triggers";

    /// <summary>Local host: fire due schedules (a timer loop).</summary>
    public bool FireSchedules { get; set; } = true;

    /// <summary>Local host: seconds between two checks for due schedules (Functions: every minute).</summary>
    public double SchedulePollSeconds { get; set; } = 15;
}

/// <summary>A stored value and the blob's ETag, for conditional writes.</summary>
public sealed record Stored<T>(T Value, ETag ETag);

/// <summary>
/// JSON records in one blob container, one blob per key, with ETag-conditional writes and deletes. The blob
/// client is resolved on first use (both hosts know their storage only once they have started).
/// </summary>
public sealed class BlobRecordStore<T>(Func<BlobServiceClient> blobs, string containerName)
    where T : class
{
    private BlobContainerClient Container => blobs().GetBlobContainerClient(containerName);

    public async Task<Stored<T>?> GetAsync(string key, CancellationToken ct = default)
    {
        try
        {
            var content = await Container.GetBlobClient(key).DownloadContentAsync(ct);
            return new Stored<T>(content.Value.Content.ToObjectFromJson<T>(MlJson.Options)!, content.Value.Details.ETag);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Every record whose key starts with <paramref name="prefix"/>; a missing container lists nothing.</summary>
    public async Task<IReadOnlyList<Stored<T>>> ListAsync(string prefix = "", CancellationToken ct = default)
    {
        var names = new List<string>();
        try
        {
            await foreach (var item in Container.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix }, ct))
                names.Add(item.Name);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return [];
        }

        var records = await Task.WhenAll(names.Select(n => GetAsync(n, ct)));
        return records.OfType<Stored<T>>().ToList();
    }

    /// <summary>
    /// Writes the record if the blob still has <paramref name="ifMatch"/> (null: unconditionally; <see cref="ETag.All"/>
    /// with <paramref name="createOnly"/>: only when none exists). Returns the new ETag, or null when the condition failed.
    /// </summary>
    public async Task<ETag?> TryWriteAsync(string key, T record, ETag? ifMatch = null, bool createOnly = false, CancellationToken ct = default)
    {
        var conditions = createOnly ? new BlobRequestConditions { IfNoneMatch = ETag.All } : ifMatch is { } tag ? new BlobRequestConditions { IfMatch = tag } : null;
        var options = new BlobUploadOptions { Conditions = conditions, HttpHeaders = new BlobHttpHeaders { ContentType = "application/json" } };
        var data = BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(record, MlJson.Options));
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var response = await Container.GetBlobClient(key).UploadAsync(data, options, ct);
                return response.Value.ETag;
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412)
            {
                return null;
            }
            catch (RequestFailedException e) when (e.Status == 404 && attempt == 0)
            {
                await Container.CreateIfNotExistsAsync(cancellationToken: ct);
            }
        }
    }

    /// <summary>Deletes the record (if it still has <paramref name="ifMatch"/>); false when it is gone or changed.</summary>
    public async Task<bool> TryDeleteAsync(string key, ETag? ifMatch = null, CancellationToken ct = default)
    {
        try
        {
            var response = await Container.GetBlobClient(key).DeleteIfExistsAsync(conditions: ifMatch is { } tag ? new BlobRequestConditions { IfMatch = tag } : null, cancellationToken: ct);
            return response.Value;
        }
        catch (RequestFailedException e) when (e.Status is 404 or 412)
        {
            return false;
        }
    }
}

/// <summary>Schedules at <c>{pipeline}/{id}.json</c> in <see cref="PipelineAutomationOptions.SchedulesContainer"/>.</summary>
public sealed class PipelineScheduleStore(BlobRecordStore<PipelineScheduleRecord> records)
{
    public static string Key(string pipeline, string id) => $"{pipeline}/{id}.json";

    public Task<Stored<PipelineScheduleRecord>?> GetAsync(string pipeline, string id, CancellationToken ct = default) => records.GetAsync(Key(pipeline, id), ct);

    /// <summary>One pipeline's schedules, or every pipeline's when <paramref name="pipeline"/> is null.</summary>
    public Task<IReadOnlyList<Stored<PipelineScheduleRecord>>> ListAsync(string? pipeline, CancellationToken ct = default) =>
        records.ListAsync(pipeline is null ? string.Empty : pipeline + "/", ct);

    public Task<ETag?> TryWriteAsync(PipelineScheduleRecord record, ETag? ifMatch, bool createOnly = false, CancellationToken ct = default) =>
        records.TryWriteAsync(Key(record.Pipeline, record.Id), record, ifMatch, createOnly, ct);

    public Task<bool> TryDeleteAsync(string pipeline, string id, ETag? ifMatch, CancellationToken ct = default) => records.TryDeleteAsync(Key(pipeline, id), ifMatch, ct);
}

/// <summary>Trigger records at <c>{pipeline}/{batch}.json</c> in <see cref="PipelineAutomationOptions.RecordsContainer"/>: the latest per batch.</summary>
public sealed class PipelineTriggerRecords(BlobRecordStore<PipelineTriggerRecord> records)
{
    public static string Key(string pipeline, string batch) => $"{pipeline}/{batch}.json";

    public Task RecordAsync(PipelineTriggerRecord record, CancellationToken ct = default) => records.TryWriteAsync(Key(record.Pipeline, record.Batch), record, ct: ct);

    public async Task<IReadOnlyList<PipelineTriggerRecord>> ListAsync(string pipeline, CancellationToken ct = default) =>
        (await records.ListAsync(pipeline + "/", ct)).Select(r => r.Value).OrderByDescending(r => r.At).ToList();
}

public static class PipelineAutomationServiceCollectionExtensions
{
    /// <summary>
    /// The generic upload triggers, schedules and their handlers, over the host's <see cref="BlobServiceClient"/>
    /// (resolved on first use) and <see cref="IPipelineSpecStore"/>. Both hosts call this.
    /// </summary>
    public static IServiceCollection AddPipelineAutomation(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<PipelineAutomationOptions>(configuration.GetSection(PipelineAutomationOptions.Section));
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new PipelineScheduleStore(new BlobRecordStore<PipelineScheduleRecord>(
            () => sp.GetRequiredService<BlobServiceClient>(), sp.GetRequiredService<IOptions<PipelineAutomationOptions>>().Value.SchedulesContainer)));
        services.AddSingleton(sp => new PipelineTriggerRecords(new BlobRecordStore<PipelineTriggerRecord>(
            () => sp.GetRequiredService<BlobServiceClient>(), sp.GetRequiredService<IOptions<PipelineAutomationOptions>>().Value.RecordsContainer)));
        services.AddSingleton<PipelineUploadTriggers>();
        services.AddSingleton(sp => new PipelineScheduleRunner(
            sp.GetRequiredService<PipelineScheduleStore>(),
            sp.GetRequiredService<IPipelineSpecStore>(),
            () => sp.GetRequiredService<BlobServiceClient>(),
            sp.GetRequiredService<IOptions<PipelineAutomationOptions>>().Value.UploadsContainer,
            sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<PipelineScheduleRunner>>()));
        services.AddSingleton<PipelineScheduleHandlers>();
        return services;
    }
}
