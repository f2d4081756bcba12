using System.Collections.Concurrent;
using MlFunctions.Core.Registry;

namespace MlFunctions.Serving.Tests;

/// <summary>The registry contract, run against every implementation (in-memory and blob).</summary>
internal static class RegistryContract
{
    public static ModelVersionDraft Draft(string sha, string? runId = null) => new()
    {
        ArtifactUri = "models/x/artifacts/" + sha + ".onnx",
        Sha256 = sha,
        Signature = new ModelSignature([new TensorSignature("input", "FP32", [-1, 4])], [new TensorSignature("output", "FP32", [-1, 3])]),
        Lineage = new ModelLineage { PipelineRunId = runId },
    };

    public static string Sha(int i) => OnnxModels.Sha256(BitConverter.GetBytes(i));

    public static async Task VersionsAreNumberedAndIdempotentAsync(IModelRegistry registry, string model)
    {
        // Concurrent registrations get distinct, gapless numbers.
        var versions = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() => registry.RegisterVersionAsync(model, Draft(Sha(i), "run-" + i)))));
        Assert.Equal(Enumerable.Range(1, 8), versions.Select(v => v.Version).Order());

        // A retried registration (same run, same bytes) returns the existing version.
        var again = await registry.RegisterVersionAsync(model, Draft(Sha(3), "run-3"));
        Assert.Equal(versions.Single(v => v.Sha256 == Sha(3)).Version, again.Version);
        // Same bytes from another run is a new version.
        Assert.Equal(9, (await registry.RegisterVersionAsync(model, Draft(Sha(3), "run-other"))).Version);

        var listed = await registry.ListVersionsAsync(model);
        Assert.Equal(Enumerable.Range(1, 9), listed.Select(v => v.Version));
        Assert.Null(await registry.GetVersionAsync(model, 10));
        Assert.Null(await registry.GetVersionAsync("nope", 1));
        Assert.Empty(await registry.ListVersionsAsync("nope"));

        await registry.SetAliasAsync(model, "champion", 2);
        var models = await registry.ListModelsAsync();
        var entry = Assert.Single(models, m => m.Name == model);
        Assert.Equal(9, entry.LatestVersion);
        Assert.Equal(2, entry.Aliases["champion"]);

        var bad = await Assert.ThrowsAsync<RegistryException>(() => registry.RegisterVersionAsync("bad/name", Draft(Sha(1))));
        Assert.Equal(RegistryErrorKind.Invalid, bad.Kind);
        var badSha = await Assert.ThrowsAsync<RegistryException>(() => registry.RegisterVersionAsync(model, Draft("xyz")));
        Assert.Equal(RegistryErrorKind.Invalid, badSha.Kind);
    }

    public static async Task AliasMovesUnderConcurrentWritersAsync(IModelRegistry registry, string model, int writers, int movesEach)
    {
        for (int i = 1; i <= 3; i++)
            await registry.RegisterVersionAsync(model, Draft(Sha(100 + i), "r" + i));

        // Unconditional moves: every one must land, none may be lost (revision counts them all).
        var revisions = new ConcurrentBag<long>();
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            for (int k = 0; k < movesEach; k++)
                revisions.Add((await registry.SetAliasAsync(model, "champion", 1 + (w + k) % 3)).Revision);
        })));
        var final = (await registry.GetAliasAsync(model, "champion"))!;
        Assert.Equal(writers * movesEach, final.Revision);
        Assert.Equal(Enumerable.Range(1, writers * movesEach).Select(r => (long)r), revisions.Order());
        Assert.InRange(final.Version, 1, 3);

        // Conditional moves from the same ETag: exactly one writer wins, the rest get Conflict.
        var outcomes = await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            try
            {
                await registry.SetAliasAsync(model, "champion", 1 + w % 3, final.ETag);
                return true;
            }
            catch (RegistryException e) when (e.Kind == RegistryErrorKind.Conflict)
            {
                return false;
            }
        })));
        Assert.Equal(1, outcomes.Count(x => x));
        var after = (await registry.GetAliasAsync(model, "champion"))!;
        Assert.Equal(final.Revision + 1, after.Revision);
        Assert.Equal(final.Version, after.PreviousVersion);

        // Create-only ("") and delete with a stale ETag.
        await Assert.ThrowsAsync<RegistryException>(() => registry.SetAliasAsync(model, "champion", 1, ""));
        Assert.Equal(1, (await registry.SetAliasAsync(model, "challenger", 2, "")).Revision);
        var stale = await Assert.ThrowsAsync<RegistryException>(() => registry.DeleteAliasAsync(model, "champion", final.ETag));
        Assert.Equal(RegistryErrorKind.Conflict, stale.Kind);
        Assert.True(await registry.DeleteAliasAsync(model, "champion", after.ETag));
        Assert.False(await registry.DeleteAliasAsync(model, "champion"));
        Assert.Null(await registry.GetAliasAsync(model, "champion"));
        var missing = await Assert.ThrowsAsync<RegistryException>(() => registry.SetAliasAsync(model, "champion", 42));
        Assert.Equal(RegistryErrorKind.NotFound, missing.Kind);
    }
}
