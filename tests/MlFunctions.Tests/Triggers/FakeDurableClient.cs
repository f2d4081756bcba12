using System.Collections.Concurrent;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using MlFunctions.Core;
using Moq;

namespace MlFunctions.Tests.Triggers;

/// <summary>
/// A Moq DurableTaskClient with an in-memory instance table: schedules record the instance as Pending
/// (or throw already-running, as the local client does, when it is pending or running), and
/// <c>GetInstanceAsync</c> reads the table. The pipeline orchestration itself never runs.
/// </summary>
internal sealed class FakeDurableClient
{
    private readonly Mock<DurableTaskClient> mock = new("hub") { CallBase = true };

    public FakeDurableClient()
    {
        mock.Setup(c => c.ScheduleNewOrchestrationInstanceAsync(It.IsAny<TaskName>(), It.IsAny<object?>(), It.IsAny<StartOrchestrationOptions?>(), It.IsAny<CancellationToken>()))
            .Returns((TaskName name, object? input, StartOrchestrationOptions? options, CancellationToken _) =>
            {
                var id = options?.InstanceId ?? Guid.NewGuid().ToString("N");
                lock (Starts)
                {
                    if (Statuses.TryGetValue(id, out var s) && s is OrchestrationRuntimeStatus.Pending or OrchestrationRuntimeStatus.Running)
                    {
                        throw new Api.Durable.InstanceAlreadyRunningException(id, new InvalidOperationException());
                    }

                    Statuses[id] = OrchestrationRuntimeStatus.Pending;
                    Starts.Add((name.Name, id, input));
                }

                return Task.FromResult(id);
            });
        mock.Setup(c => c.GetInstancesAsync(It.IsAny<string>(), It.IsAny<bool>(), It.IsAny<CancellationToken>()))
            .Returns((string id, bool _, CancellationToken _) => Task.FromResult(
                Statuses.TryGetValue(id, out var s) ? new OrchestrationMetadata(OrchestrationNames.TrainingPipeline, id) { RuntimeStatus = s } : null));
    }

    public DurableTaskClient Client => mock.Object;

    public ConcurrentDictionary<string, OrchestrationRuntimeStatus> Statuses { get; } = new();

    public List<(string Name, string InstanceId, object? Input)> Starts { get; } = [];
}
