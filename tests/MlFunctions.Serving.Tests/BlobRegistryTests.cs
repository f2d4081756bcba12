using MlFunctions.Activities.Registry;
using MlFunctions.Core.Registry;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class BlobRegistryTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Versions_are_numbered_atomically_and_registration_is_idempotent()
    {
        var registry = new BlobModelRegistry(await azurite.NewContainerAsync());
        await RegistryContract.VersionsAreNumberedAndIdempotentAsync(registry, "mnist");
    }

    [Fact]
    public async Task Alias_moves_under_concurrent_writers_use_etags()
    {
        var registry = new BlobModelRegistry(await azurite.NewContainerAsync());
        await RegistryContract.AliasMovesUnderConcurrentWritersAsync(registry, "mnist", writers: 8, movesEach: 5);
    }

    [Fact]
    public async Task Two_registry_instances_on_one_container_do_not_corrupt_each_other()
    {
        // Two processes = two instances with their own clients; nothing is shared but the container.
        var container = await azurite.NewContainerAsync();
        var a = new BlobModelRegistry(azurite.Service.GetBlobContainerClient(container.Name));
        var b = new BlobModelRegistry(azurite.Service.GetBlobContainerClient(container.Name));
        var registered = await Task.WhenAll(Enumerable.Range(0, 6).Select(i =>
            (i % 2 == 0 ? a : b).RegisterVersionAsync("m", RegistryContract.Draft(RegistryContract.Sha(i), "run" + i))));
        Assert.Equal(Enumerable.Range(1, 6), registered.Select(v => v.Version).Order());
        await Task.WhenAll(Enumerable.Range(0, 10).Select(i => (i % 2 == 0 ? a : b).SetAliasAsync("m", "champion", 1 + i % 6)));
        Assert.Equal(10, (await a.GetAliasAsync("m", "champion"))!.Revision);
    }

    [Fact]
    public async Task Layout_is_the_documented_one()
    {
        var container = await azurite.NewContainerAsync();
        var registry = new BlobModelRegistry(container);
        await registry.RegisterVersionAsync("m", RegistryContract.Draft(RegistryContract.Sha(1)));
        await registry.SetAliasAsync("m", "champion", 1);
        var names = new List<string>();
        await foreach (var blob in container.GetBlobsAsync())
            names.Add(blob.Name);
        Assert.Equal(["m/aliases/champion.json", "m/versions/0000000001.json"], names.Order());
    }

    [Fact]
    public async Task Dataplane_serves_a_model_from_blob_registry_and_blob_artifacts()
    {
        var container = await azurite.NewContainerAsync();
        var registry = new BlobModelRegistry(container);
        var onnx = OnnxModels.Mlp(seed: 21);
        await container.GetBlobClient("mlp/artifacts/model.onnx").UploadAsync(BinaryData.FromBytes(onnx));
        var v = await registry.RegisterVersionAsync("mlp", RegistryContract.Draft(OnnxModels.Sha256(onnx)) with { ArtifactUri = $"{container.Name}/mlp/artifacts/model.onnx" });
        await registry.SetAliasAsync("mlp", "champion", v.Version);
        // A second version recorded by absolute URL, the other accepted form.
        var v2 = await registry.RegisterVersionAsync("mlp", RegistryContract.Draft(OnnxModels.Sha256(onnx)) with { ArtifactUri = container.GetBlobClient("mlp/artifacts/model.onnx").Uri.ToString() });

        await using var h = new Harness(registry: registry, artifacts: new BlobArtifactStore(azurite.Service));
        float[] data = [0.5f, -1, 2, 3];
        var expected = OnnxModels.RunDirect(onnx, "input", data, [1, 4], "output");
        foreach (var version in new string?[] { null, v2.Version.ToString() })
        {
            var r = await h.Dataplane.InferAsync("mlp", version, new InferRequest { Inputs = [new InferTensor("input", Datatype.FP32, [1, 4], (float[])data.Clone())] });
            Assert.Equal(expected, (float[])r.Outputs[0].Data);
        }

        var list = await h.SendAsync("GET", "api/registry/models");
        Assert.Equal(200, list.Status);
        Assert.Contains("\"aliases\":{\"champion\":1}", list.Text);
    }
}
