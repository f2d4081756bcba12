using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Api.Pipelines;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Tests.Triggers;

/// <summary>A clock tests move by hand: no test waits on wall-clock time.</summary>
internal sealed class ManualClock(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;
}

internal sealed class MemorySpecStore : IPipelineSpecStore
{
    public ConcurrentDictionary<string, PipelineSpec> Specs { get; } = new();

    public Task<PipelineSpec?> GetAsync(string name, CancellationToken ct = default) => Task.FromResult(Specs.GetValueOrDefault(name));

    public Task PutAsync(PipelineSpec spec, CancellationToken ct = default)
    {
        Specs[spec.Name] = spec;
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<string>> ListAsync(CancellationToken ct = default) => Task.FromResult<IReadOnlyList<string>>([.. Specs.Keys]);
}

/// <summary>The shared automation classes over their own Azurite containers, as a host wires them.</summary>
internal sealed class Automation(BlobServiceClient blobs, TimeProvider clock)
{
    public string SchedulesContainer { get; } = "sched-" + Guid.NewGuid().ToString("N")[..12];

    public string RecordsContainer { get; } = "trig-" + Guid.NewGuid().ToString("N")[..12];

    public MemorySpecStore Specs { get; } = new();

    /// <summary>A fresh set of objects over the same storage: what a restarted host has.</summary>
    public PipelineScheduleStore Store() => new(new BlobRecordStore<PipelineScheduleRecord>(() => blobs, SchedulesContainer));

    public PipelineTriggerRecords Records() => new(new BlobRecordStore<PipelineTriggerRecord>(() => blobs, RecordsContainer));

    public PipelineScheduleHandlers Handlers() => new(Store(), Specs, Records(), clock);

    public string UploadsContainer { get; } = "uploads-" + Guid.NewGuid().ToString("N")[..12];

    public PipelineScheduleRunner Runner() => new(Store(), Specs, () => blobs, UploadsContainer, NullLogger<PipelineScheduleRunner>.Instance);

    public PipelineUploadTriggers Uploads() => new(Specs, Records(), clock, NullLogger<PipelineUploadTriggers>.Instance);

    public async Task DisposeAsync()
    {
        await blobs.GetBlobContainerClient(SchedulesContainer).DeleteIfExistsAsync();
        await blobs.GetBlobContainerClient(RecordsContainer).DeleteIfExistsAsync();
        await blobs.GetBlobContainerClient(UploadsContainer).DeleteIfExistsAsync();
    }

    public static PipelineSpec TabularSpec(string name) => new()
    {
        Name = name,
        Dataset = new PipelineDataset { Kind = DatasetKinds.Tabular, SourceContainer = "uploads", SourcePrefix = $"datasets/{name}/seed" },
        Columns = new() { Label = "approved" },
        Sweep = new PipelineSweep { MaxTrials = 3, Epochs = 2 },
    };

    /// <summary>Calls a handler as a host would: route values, headers and a JSON body; returns the status, body and ETag.</summary>
    public static async Task<(int Status, JsonNode? Body, string? ETag)> CallAsync(
        Func<HttpContext, Task> handler, string method, object? body = null, (string Key, string Value)[]? route = null, params (string Name, string Value)[] headers)
    {
        var http = new DefaultHttpContext();
        http.Request.Method = method;
        foreach (var (key, value) in route ?? [])
            http.Request.RouteValues[key] = value;
        foreach (var (name, value) in headers)
            http.Request.Headers[name] = value;
        var bytes = body is null ? [] : body is string text ? Encoding.UTF8.GetBytes(text) : JsonSerializer.SerializeToUtf8Bytes(body, MlJson.Options);
        http.Request.Body = new MemoryStream(bytes);
        http.Request.ContentLength = bytes.Length;
        http.Response.Body = new MemoryStream();
        await Api.ApiGuard.RunAsync(http, NullLogger.Instance, () => handler(http));
        http.Response.Body.Position = 0;
        var answer = await new StreamReader(http.Response.Body).ReadToEndAsync();
        return (http.Response.StatusCode, answer.Length == 0 ? null : JsonNode.Parse(answer), http.Response.Headers.ETag.ToString() is { Length: > 0 } etag ? etag : null);
    }

    public static (string, string)[] Route(string pipeline, string? schedule = null) =>
        schedule is null ? [("name", pipeline)] : [("name", pipeline), ("schedule", schedule)];
}
