using System.Security.Cryptography;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MlFunctions.Activities;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Tests.Infrastructure;

namespace MlFunctions.Datasets.Tests;

/// <summary>The dataset activities against Azurite. Each test uses its own dataset name, so tests share the containers safely.</summary>
public sealed class DatasetActivityTests
{
    private static readonly ActivityCall Call = new("test", "test-instance", CancellationToken.None);

    private static readonly IStorageClients Storage = new ConnectionStringStorageClients(_ => TestStorage.ConnectionStringAsync());

    private static string UniqueName(string stem) => $"{stem}-{Guid.NewGuid():N}"[..(stem.Length + 9)];

    private static RegisterDatasetActivity Register() =>
        new(Storage, Options.Create(new DatasetOptions()), NullLogger<RegisterDatasetActivity>.Instance);

    private static ValidateDatasetActivity Validate() => new(Storage, NullLogger<ValidateDatasetActivity>.Instance);

    private static TransformDatasetActivity Transform() => new(Storage, NullLogger<TransformDatasetActivity>.Instance);

    private static async Task<BlobContainerClient> ContainerAsync(string name) => (await Storage.BlobsAsync()).GetBlobContainerClient(name);

    [Fact]
    public async Task Registering_the_same_content_twice_is_one_version()
    {
        var name = UniqueName("mnist");
        var input = new RegisterDatasetInput { Name = name, SourceDirectories = [TestData.MnistTest] };
        var first = await Register().RunAsync(input, Call);
        Assert.False(first.AlreadyRegistered);
        Assert.Equal(2, first.FilesUploaded);
        Assert.Equal(DatasetLayout.VersionOf(first.Dataset.ContentHash), first.Dataset.Version);
        Assert.Contains(first.Files, f => f is { Name: "t10k-labels-idx1-ubyte.gz", Bytes: 4542, Sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6" });

        var second = await Register().RunAsync(input, Call);
        Assert.True(second.AlreadyRegistered);
        Assert.Equal(0, second.FilesUploaded);
        Assert.Equal(first.Dataset, second.Dataset);

        var datasets = await ContainerAsync(DatasetLayout.Container);
        var blobs = new List<string>();
        await foreach (var b in datasets.GetBlobsAsync(new Azure.Storage.Blobs.Models.GetBlobsOptions { Prefix = name + "/" }))
        {
            blobs.Add(b.Name);
        }

        Assert.Equal(
            [$"{name}/{first.Dataset.Version}/manifest.json", $"{name}/{first.Dataset.Version}/t10k-images-idx3-ubyte.gz", $"{name}/{first.Dataset.Version}/t10k-labels-idx1-ubyte.gz"],
            blobs.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Blobs_already_in_storage_register_as_the_same_version_as_files_on_disk()
    {
        var dir = TestData.MnistSlice(train: 200, test: 50);
        var name = UniqueName("slice");
        var fromDisk = await Register().RunAsync(new RegisterDatasetInput { Name = name, SourceDirectories = [dir] }, Call);

        var uploads = await ContainerAsync("uploads");
        await uploads.CreateIfNotExistsAsync();
        var prefix = Guid.NewGuid().ToString("N");
        foreach (var f in Directory.GetFiles(dir))
        {
            await uploads.GetBlobClient($"{prefix}/{Path.GetFileName(f)}").UploadAsync(f);
        }

        var fromBlobs = await Register().RunAsync(new RegisterDatasetInput { Name = name, SourceContainer = "uploads", SourcePrefix = prefix }, Call);
        Assert.Equal(fromDisk.Dataset, fromBlobs.Dataset);
        Assert.True(fromBlobs.AlreadyRegistered);
    }

    [Fact]
    public async Task Validation_writes_its_report_next_to_the_dataset()
    {
        var dir = TestData.MnistSlice(train: 1000, test: 1000);
        var registered = await Register().RunAsync(new RegisterDatasetInput { Name = UniqueName("valid"), SourceDirectories = [dir] }, Call);
        var report = await Validate().RunAsync(new ValidateDatasetInput(registered.Dataset, DatasetValidationRules.Mnist), Call);
        Assert.True(report.Passed, string.Join("; ", report.Violations));
        Assert.Equal(["t10k", "train"], report.Parts.Select(p => p.Name));
        Assert.Equal(1000, report.Parts.Single(p => p.Name == "train").Count);

        var stored = await (await ContainerAsync(DatasetLayout.Container)).GetBlobClient(DatasetLayout.ValidationBlob(registered.Dataset)).DownloadContentAsync();
        Assert.Contains("\"passed\":true", stored.Value.Content.ToString());
    }

    [Fact]
    public async Task A_violation_fails_the_step_with_a_reason_and_still_stores_the_report()
    {
        var dir = TestData.TempDir();
        var images = new byte[6 * 28 * 28];
        TestData.WriteIdx(Path.Combine(dir, "train-images-idx3-ubyte.gz"), [6, 28, 28], images);
        TestData.WriteLabels(Path.Combine(dir, "train-labels-idx1-ubyte.gz"), [0, 1, 2, 12, 4, 5]);
        var registered = await Register().RunAsync(new RegisterDatasetInput { Name = UniqueName("bad"), SourceDirectories = [dir] }, Call);

        var e = await Assert.ThrowsAsync<DatasetValidationException>(() =>
            Validate().RunAsync(new ValidateDatasetInput(registered.Dataset, DatasetValidationRules.Mnist with { MaxClassImbalance = null }), Call));
        Assert.Contains("1 labels outside [0, 9] (values 12)", e.Message);
        Assert.Contains("class(es) 3, 6, 7, 8, 9 never occur", e.Message);

        var stored = await (await ContainerAsync(DatasetLayout.Container)).GetBlobClient(DatasetLayout.ValidationBlob(registered.Dataset)).DownloadContentAsync();
        Assert.Contains("\"passed\":false", stored.Value.Content.ToString());
    }

    [Fact]
    public async Task A_truncated_file_fails_validation_with_truncated_gzip()
    {
        var dir = TestData.MnistSlice(train: 200, test: 20, parts: 2);
        var part = Path.Combine(dir, "train-images-idx3-ubyte.part1-of-2.gz");
        var bytes = File.ReadAllBytes(part);
        File.WriteAllBytes(part, bytes[..(bytes.Length * 2 / 3)]);
        var registered = await Register().RunAsync(new RegisterDatasetInput { Name = UniqueName("cut"), SourceDirectories = [dir] }, Call);

        var e = await Assert.ThrowsAsync<DatasetValidationException>(() => Validate().RunAsync(new ValidateDatasetInput(registered.Dataset), Call));
        Assert.Contains("gzip", e.Message);
        Assert.Contains("train-images-idx3-ubyte.part1-of-2.gz", e.Message);
    }

    [Fact]
    public async Task Transform_writes_shards_whose_sha256_match_the_manifest_and_is_idempotent()
    {
        var dir = TestData.MnistSlice(train: 1000, test: 100);
        var registered = await Register().RunAsync(new RegisterDatasetInput { Name = UniqueName("prep"), SourceDirectories = [dir] }, Call);
        var recipe = new PreparationRecipe { TrainFraction = 0.7, ValFraction = 0.15, TestFraction = 0.15, Seed = 3 };
        var result = await Transform().RunAsync(new TransformDatasetInput(registered.Dataset, recipe), Call);

        Assert.False(result.AlreadyPrepared);
        Assert.Equal(PreparedLayout.Container, result.Data.Container);
        Assert.Equal($"{registered.Dataset.Name}/{registered.Dataset.Version}/{recipe.Hash()}", result.Data.Prefix);
        Assert.Equal(1000, result.Splits.Sum(s => s.Count));
        Assert.InRange(result.Splits.Single(s => s.Name == "val").Count, 140, 160);

        // Statistics from the train split only, and close to MNIST's.
        Assert.InRange(result.Transform.Mean[0], 0.11, 0.15);
        Assert.InRange(result.Transform.Std[0], 0.29, 0.33);

        var prepared = await ContainerAsync(PreparedLayout.Container);
        foreach (var split in result.Splits)
        {
            var content = (await prepared.GetBlobClient(split.Blob).DownloadContentAsync()).Value.Content;
            Assert.Equal(split.Sha256, Convert.ToHexStringLower(SHA256.HashData(content.ToArray())));
        }

        var reader = new PreparedDatasetReader(await Storage.BlobsAsync());
        var manifest = await reader.ReadManifestAsync(result.Data);
        Assert.Equal(registered.Dataset, manifest.Source);
        Assert.Equal(10, manifest.NumClasses);
        var train = await reader.ReadSplitAsync(result.Data, manifest, "train");
        Assert.Equal([1, 28, 28], train.SampleShape);
        Assert.Equal(manifest.Split("train").Count, train.Count);
        Assert.Equal(manifest.Transform.Mean, NormalizationStats.Compute(train).Mean);

        var again = await Transform().RunAsync(new TransformDatasetInput(registered.Dataset, recipe), Call);
        Assert.True(again.AlreadyPrepared);
        Assert.Equal(result.Data, again.Data);
    }

    [Fact]
    public async Task The_official_test_set_can_be_the_test_split()
    {
        var dir = TestData.MnistSlice(train: 600, test: 120);
        var registered = await Register().RunAsync(new RegisterDatasetInput { Name = UniqueName("official"), SourceDirectories = [dir] }, Call);
        var recipe = new PreparationRecipe { TestSource = "t10k", TrainFraction = 0.9, ValFraction = 0.1, TestFraction = 0 };
        var result = await Transform().RunAsync(new TransformDatasetInput(registered.Dataset, recipe), Call);

        Assert.Equal(120, result.Splits.Single(s => s.Name == "test").Count);
        Assert.Equal(600, result.Splits.Where(s => s.Name != "test").Sum(s => s.Count));
        var test = await new PreparedDatasetReader(await Storage.BlobsAsync()).ReadSplitAsync(result.Data, "test");
        Assert.Equal([7, 2, 1, 0, 4], test.Labels.Take(5));
    }

    [Fact]
    public async Task A_tampered_shard_is_refused_by_the_reader()
    {
        var dir = TestData.MnistSlice(train: 200, test: 20);
        var registered = await Register().RunAsync(new RegisterDatasetInput { Name = UniqueName("tamper"), SourceDirectories = [dir] }, Call);
        var result = await Transform().RunAsync(new TransformDatasetInput(registered.Dataset, new PreparationRecipe()), Call);
        var val = result.Splits.Single(s => s.Name == "val");
        var blob = (await ContainerAsync(PreparedLayout.Container)).GetBlobClient(val.Blob);
        var bytes = (await blob.DownloadContentAsync()).Value.Content.ToArray();
        bytes[^1] ^= 1;
        await blob.UploadAsync(new BinaryData(bytes), overwrite: true);

        var reader = new PreparedDatasetReader(await Storage.BlobsAsync());
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => reader.ReadSplitAsync(result.Data, "val"));
        Assert.Contains("the manifest says", e.Message);
    }

    [Fact]
    public void The_catalog_lists_the_dataset_activities()
    {
        Assert.Contains(ActivityNames.RegisterDataset, ActivityCatalog.Names);
        Assert.Contains(ActivityNames.ValidateDataset, ActivityCatalog.Names);
        Assert.Contains(ActivityNames.TransformDataset, ActivityCatalog.Names);
    }
}
