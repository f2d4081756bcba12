using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Registry;

namespace MlFunctions.Activities.Models;

/// <summary>The version an alias points at, or null when the model or the alias does not exist (e.g. no champion yet).</summary>
public sealed class GetModelAliasActivity(IModelRegistry registry) : IActivity<GetModelAliasInput, ModelVersion?>
{
    public async Task<ModelVersion?> RunAsync(GetModelAliasInput input, ActivityCall call)
    {
        RegistryNames.Validate(input.Model, "model");
        RegistryNames.Validate(input.Alias, "alias");
        var alias = await registry.GetAliasAsync(input.Model, input.Alias, call.Cancellation);
        return alias is null ? null : await registry.GetVersionAsync(input.Model, alias.Version, call.Cancellation);
    }
}

/// <summary>
/// Registers a model version. Idempotent under retries through the registry's own contract: a version with the same
/// sha256 and the same lineage run id is returned instead of a new one. That needs a run id, so one is required.
/// </summary>
public sealed class RegisterModelVersionActivity(IModelRegistry registry) : IActivity<RegisterModelVersionInput, ModelVersion>
{
    public Task<ModelVersion> RunAsync(RegisterModelVersionInput input, ActivityCall call)
    {
        if (string.IsNullOrWhiteSpace(input.Draft.Lineage.PipelineRunId))
            throw new ArgumentException(
                $"RegisterModelVersion for '{input.Model}' needs draft.lineage.pipelineRunId: without it a retried activity would register a second version.");
        return registry.RegisterVersionAsync(input.Model, input.Draft, call.Cancellation);
    }
}

/// <summary>
/// Points an alias at a version with the registry's ETag-checked move (no lost update under concurrent writers).
/// An alias already at the version is left alone, so a retry does not count a second move.
/// </summary>
public sealed class MoveModelAliasActivity(IModelRegistry registry) : IActivity<MoveModelAliasInput, ModelAlias>
{
    public async Task<ModelAlias> RunAsync(MoveModelAliasInput input, ActivityCall call)
    {
        RegistryNames.Validate(input.Model, "model");
        RegistryNames.Validate(input.Alias, "alias");
        var current = await registry.GetAliasAsync(input.Model, input.Alias, call.Cancellation);
        if (current is not null && current.Version == input.Version)
            return current;

        // Unconditional: the registry's compare-and-swap loop retries on concurrent writers, so this move lands
        // as one whole revision and none is lost.
        return await registry.SetAliasAsync(input.Model, input.Alias, input.Version, cancellationToken: call.Cancellation);
    }
}
