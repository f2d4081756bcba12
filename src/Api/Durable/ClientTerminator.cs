using Microsoft.DurableTask.Client;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Api.Durable;

/// <summary><see cref="IInstanceTerminator"/> over a <see cref="DurableTaskClient"/>, for both hosts.</summary>
public sealed class ClientTerminator(DurableTaskClient client) : IInstanceTerminator
{
    public async Task<bool> TerminateAsync(string instanceId, string reason, CancellationToken ct)
    {
        var instance = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: false, ct);
        if (instance is null || instance.IsCompleted)
            return false;
        await client.TerminateInstanceAsync(instanceId, new TerminateInstanceOptions { Output = reason }, ct);
        return true;
    }
}
