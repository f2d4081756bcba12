using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MlFunctions.Activities;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;
using MlFunctions.Tests.Infrastructure;

namespace MlFunctions.Datasets.Tests;

/// <summary>The ct kind (#14) through the pipeline's dataset steps, against Azurite: simulate or read a folder → register → validate → transform.</summary>
public sealed class CtActivityTests
{
    private static readonly ActivityCall Call = new("test", "test-instance", CancellationToken.None);
    private static readonly IStorageClients Storage = new ConnectionStringStorageClients(_ => TestStorage.ConnectionStringAsync());

    private static readonly CtSimulationSpec Tiny = new()
    {
        Protocol = new CtProtocol { Size = 48, PixelSpacingMm = 5.0, Angles = 72, LowDoseFraction = 0.1 },
        Subjects = 4,
        SlicesPerSubject = 1,
        Seed = 9,
    };

    private static string UniqueName(string stem) => $"{stem}-{Guid.NewGuid():N}"[..(stem.Length + 9)];

    private static Task<RegisterDatasetResult> RegisterAsync(RegisterDatasetInput input) =>
        new RegisterDatasetActivity(Storage, Options.Create(new DatasetOptions()), NullLogger<RegisterDatasetActivity>.Instance).RunAsync(input, Call);

    private static Task<ValidationReport> ValidateAsync(DatasetRef dataset) =>
        new ValidateDatasetActivity(Storage, NullLogger<ValidateDatasetActivity>.Instance)
            .RunAsync(new ValidateDatasetInput(dataset, new DatasetValidationRules { Ct = new CtValidationRules { Patch = 32 } }), Call);

    [Fact]
    public async Task Simulated_slices_register_as_png16_pairs_validate_and_prepare_denoise_shards()
    {
        var name = UniqueName("ct");
        var registered = await RegisterAsync(new RegisterDatasetInput { Name = name, SimulateCt = Tiny, Recursive = true });
        Assert.Equal(12, registered.Files.Count);
        Assert.Contains(registered.Files, f => f.Name == "sim-000/000_low.png");
        var again = await RegisterAsync(new RegisterDatasetInput { Name = name, SimulateCt = Tiny, Recursive = true });
        Assert.True(again.AlreadyRegistered);
        Assert.Equal(registered.Dataset, again.Dataset);

        var report = await ValidateAsync(registered.Dataset);
        Assert.True(report.Passed, string.Join("; ", report.Violations));
        Assert.Contains(report.Checks, c => c.Detail.Contains("4 valid pairs of 4 subjects, 48×48", StringComparison.Ordinal));

        var prepared = await new TransformDatasetActivity(Storage, NullLogger<TransformDatasetActivity>.Instance)
            .RunAsync(new TransformDatasetInput(registered.Dataset, new PreparationRecipe { Source = "ct", Ct = new CtRecipe { Patch = 32, Patches = 20, ValidationFraction = 0.25, TestFraction = 0.25 } }), Call);
        var manifest = await new PreparedDatasetReader(await Storage.BlobsAsync()).ReadManifestAsync(prepared.Data);
        Assert.Equal(TrainingObjectives.Denoise, manifest.Objective);
        Assert.Equal(TransformSpec.CtKind, manifest.Transform.Kind);
        Assert.Equal(20, manifest.Split("train").Count);
        Assert.Equal(1, manifest.Split("test").Count);
    }

    [Fact]
    public async Task A_corrupt_png_and_a_missing_sidecar_fail_validation_naming_each_file()
    {
        var folder = Directory.CreateTempSubdirectory("ct-broken-");
        CtSliceDataset.WriteFolder(folder.FullName, CtSimulator.Simulate(Tiny, noiseless: false).Select(s => s.Pair));
        File.Delete(Path.Combine(folder.FullName, "sim-001", "000.json"));
        await File.WriteAllBytesAsync(Path.Combine(folder.FullName, "sim-002", "000_low.png"), [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
        var registered = await RegisterAsync(new RegisterDatasetInput { Name = UniqueName("ctbad"), SourceDirectories = [folder.FullName], Recursive = true });

        var e = await Assert.ThrowsAsync<DatasetValidationException>(() => ValidateAsync(registered.Dataset));
        Assert.Contains("sim-001/000: no sidecar 000.json", e.Message);
        Assert.Contains("sim-002/000_low.png:", e.Message);
        Console.WriteLine($"ct validation failure: {e.Message}");
    }
}
