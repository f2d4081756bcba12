using DurableTask.AzureStorage;
using DurableTask.Core;
using DurableTask.Core.Exceptions;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using CoreQuery = DurableTask.Core.Query.OrchestrationQuery;
using SdkPurgeResult = Microsoft.DurableTask.Client.PurgeResult;

namespace MlFunctions.Local.Engine;

/// <summary>
/// The SDK's <see cref="DurableTaskClient"/> over DTFx's <see cref="TaskHubClient"/>, so the code that
/// Azure Functions gives a <c>[DurableClient]</c> (starters, status, events, terminate, purge,
/// queries) runs unchanged in the local host.
/// </summary>
public sealed class LocalDurableTaskClient(
    string name,
    TaskHubClient hub,
    AzureStorageOrchestrationService service,
    Microsoft.DurableTask.DataConverter converter) : DurableTaskClient(name)
{
    private readonly IOrchestrationServicePurgeClient purger = service;
    /// <summary>
    /// Starting an id that is still pending or running is refused, as in Durable Functions; a finished
    /// id may be reused. This is what makes content-hash instance ids idempotent.
    /// </summary>
    private static readonly OrchestrationStatus[] DedupeStatuses =
        [OrchestrationStatus.Pending, OrchestrationStatus.Running, OrchestrationStatus.ContinuedAsNew, OrchestrationStatus.Suspended];

    public string TaskHubName => Name;

    public override async Task<string> ScheduleNewOrchestrationInstanceAsync(
        TaskName orchestratorName,
        object? input = null,
        StartOrchestrationOptions? options = null,
        CancellationToken cancellation = default)
    {
        var instanceId = options?.InstanceId ?? Guid.NewGuid().ToString("N");
        var tags = options?.Tags?.ToDictionary(t => t.Key, t => t.Value);
        var startAt = options?.StartAt?.UtcDateTime;
        try
        {
            var instance = await hub.CreateOrchestrationInstanceAsync(
                orchestratorName.Name,
                version: string.Empty,
                instanceId,
                input,
                tags,
                DedupeStatuses,
                startAt ?? default);
            return instance.InstanceId;
        }
        catch (OrchestrationAlreadyExistsException e)
        {
            throw new Api.Durable.InstanceAlreadyRunningException(instanceId, e);
        }
    }

    public override Task RaiseEventAsync(string instanceId, string eventName, object? eventPayload = null, CancellationToken cancellation = default) =>
        hub.RaiseEventAsync(new OrchestrationInstance { InstanceId = instanceId }, eventName, eventPayload!);

    public override Task<OrchestrationMetadata> WaitForInstanceStartAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        PollAsync(instanceId, getInputsAndOutputs, m => m.RuntimeStatus != OrchestrationRuntimeStatus.Pending, cancellation);

    public override Task<OrchestrationMetadata> WaitForInstanceCompletionAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        PollAsync(instanceId, getInputsAndOutputs, m => m.IsCompleted, cancellation);

    public override Task TerminateInstanceAsync(string instanceId, TerminateInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        var reason = options?.Output switch
        {
            null => null,
            string s => s,
            var other => converter.Serialize(other),
        };
        return hub.TerminateInstanceAsync(new OrchestrationInstance { InstanceId = instanceId }, reason!);
    }

    public override Task SuspendInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
        hub.SuspendInstanceAsync(new OrchestrationInstance { InstanceId = instanceId }, reason);

    public override Task ResumeInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
        hub.ResumeInstanceAsync(new OrchestrationInstance { InstanceId = instanceId }, reason);

    public override async Task<OrchestrationMetadata?> GetInstancesAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default)
    {
        var state = await hub.GetOrchestrationStateAsync(instanceId);
        return state is null ? null : ToMetadata(state, getInputsAndOutputs);
    }

    public override AsyncPageable<OrchestrationMetadata> GetAllInstancesAsync(OrchestrationQuery? filter = null) =>
        Pageable.Create<OrchestrationMetadata>(async (continuation, pageSize, cancellation) =>
        {
            var query = new CoreQuery
            {
                RuntimeStatus = filter?.Statuses?.Select(s => (OrchestrationStatus)s).ToList(),
                CreatedTimeFrom = filter?.CreatedFrom?.UtcDateTime,
                CreatedTimeTo = filter?.CreatedTo?.UtcDateTime,
                InstanceIdPrefix = filter?.InstanceIdPrefix,
                PageSize = pageSize ?? filter?.PageSize ?? OrchestrationQuery.DefaultPageSize,
                ContinuationToken = continuation ?? filter?.ContinuationToken,
                FetchInputsAndOutputs = filter?.FetchInputsAndOutputs ?? false,
            };
            var result = await service.GetOrchestrationWithQueryAsync(query, cancellation);
            var fetch = filter?.FetchInputsAndOutputs ?? false;
            return new Page<OrchestrationMetadata>(
                result.OrchestrationState.Select(s => ToMetadata(s, fetch)).ToList(),
                result.ContinuationToken);
        });

    public override async Task<SdkPurgeResult> PurgeInstanceAsync(string instanceId, PurgeInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        var result = await purger.PurgeInstanceStateAsync(instanceId);
        return new SdkPurgeResult(result.DeletedInstanceCount);
    }

    public override async Task<SdkPurgeResult> PurgeAllInstancesAsync(PurgeInstancesFilter filter, PurgeInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        var coreFilter = new PurgeInstanceFilter(
            filter.CreatedFrom?.UtcDateTime ?? DateTime.MinValue,
            filter.CreatedTo?.UtcDateTime,
            filter.Statuses?.Select(s => (OrchestrationStatus)s));
        var result = await purger.PurgeInstanceStateAsync(coreFilter);
        return new SdkPurgeResult(result.DeletedInstanceCount);
    }

    /// <summary>The DTFx history of the latest execution as JSON, for the management API's showHistory.</summary>
    public async Task<string?> GetHistoryJsonAsync(string instanceId)
    {
        var state = await hub.GetOrchestrationStateAsync(instanceId);
        return state is null ? null : await service.GetOrchestrationHistoryAsync(instanceId, state.OrchestrationInstance.ExecutionId);
    }

    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private async Task<OrchestrationMetadata> PollAsync(
        string instanceId, bool getInputsAndOutputs, Func<OrchestrationMetadata, bool> done, CancellationToken cancellation)
    {
        // Polling, as the Azure Storage backend has no push notification for clients, every tenth of the time
        // waited so far (50 ms to 1 s): a waiter learns of the end at most ~10 % late. Doubling up to 1 s
        // reported a 1.9 s sweep after 2.55 s (polls at 0.05, 0.15, 0.35, 0.75, 1.55, 2.55 s).
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var metadata = await GetInstancesAsync(instanceId, getInputsAndOutputs, cancellation);
            if (metadata is not null && done(metadata))
            {
                return metadata;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Math.Clamp(clock.Elapsed.TotalMilliseconds / 10, 50, 1000)), cancellation);
        }
    }

    private OrchestrationMetadata ToMetadata(OrchestrationState state, bool withData) =>
        new(state.Name, state.OrchestrationInstance.InstanceId)
        {
            RuntimeStatus = (OrchestrationRuntimeStatus)state.OrchestrationStatus,
            CreatedAt = new DateTimeOffset(DateTime.SpecifyKind(state.CreatedTime, DateTimeKind.Utc)),
            LastUpdatedAt = new DateTimeOffset(DateTime.SpecifyKind(state.LastUpdatedTime, DateTimeKind.Utc)),
            SerializedInput = withData ? state.Input : null,
            SerializedOutput = withData ? state.Output : null,
            SerializedCustomStatus = withData ? state.Status : null,
            Tags = state.Tags is null ? new Dictionary<string, string>() : new Dictionary<string, string>(state.Tags),
            FailureDetails = ToFailure(state.FailureDetails) ?? FailureFromOutput(state),
            DataConverter = converter,
        };

    /// <summary>
    /// The Azure Storage backend's instance table keeps a failed instance's reason only as its output
    /// text ("Type: message"), not its FailureDetails; rebuild the details from that text.
    /// </summary>
    private static TaskFailureDetails? FailureFromOutput(OrchestrationState state)
    {
        if (state.OrchestrationStatus != OrchestrationStatus.Failed || string.IsNullOrEmpty(state.Output))
        {
            return null;
        }

        var split = state.Output.IndexOf(": ", StringComparison.Ordinal);
        var looksLikeType = split > 0 && !state.Output[..split].Contains(' ');
        return looksLikeType
            ? new TaskFailureDetails(state.Output[..split], state.Output[(split + 2)..], null, null, null)
            : new TaskFailureDetails("Unknown", state.Output, null, null, null);
    }

    private static TaskFailureDetails? ToFailure(FailureDetails? details) =>
        details is null
            ? null
            : new TaskFailureDetails(details.ErrorType, details.ErrorMessage, details.StackTrace, ToFailure(details.InnerFailure), null);
}
