using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MlFunctions.Activities;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Training;
using MlFunctions.Tests.Infrastructure;

namespace MlFunctions.Datasets.Tests;

/// <summary>The interactions kind through the pipeline's dataset steps, against Azurite: register → validate → transform.</summary>
public sealed class InteractionActivityTests
{
    private static readonly ActivityCall Call = new("test", "test-instance", CancellationToken.None);
    private static readonly IStorageClients Storage = new ConnectionStringStorageClients(_ => TestStorage.ConnectionStringAsync());
    private static readonly InteractionsRecipe Retail = new() { Columns = new InteractionColumns { Format = InteractionData.OnlineRetailFormat } };

    private static string UniqueName(string stem) => $"{stem}-{Guid.NewGuid():N}"[..(stem.Length + 9)];

    private static async Task<RegisterDatasetResult> RegisterAsync(string name, string directory) =>
        await new RegisterDatasetActivity(Storage, Options.Create(new DatasetOptions()), NullLogger<RegisterDatasetActivity>.Instance)
            .RunAsync(new RegisterDatasetInput { Name = name, SourceDirectories = [directory] }, Call);

    [Fact]
    public async Task Retail_days_validate_with_the_cleaning_profile_and_prepare_ranking_shards()
    {
        var folder = Directory.CreateTempSubdirectory("retail-");
        foreach (var day in new[] { "2010-12-01.csv", "2010-12-02.csv" })
            File.Copy(Path.Combine(TestData.Root, "recommender", "online-retail-by-day", day), Path.Combine(folder.FullName, day));
        var registered = await RegisterAsync(UniqueName("retail"), folder.FullName);

        var report = await new ValidateDatasetActivity(Storage, NullLogger<ValidateDatasetActivity>.Instance)
            .RunAsync(new ValidateDatasetInput(registered.Dataset, new DatasetValidationRules { Interactions = Retail }), Call);
        Assert.True(report.Passed, string.Join("; ", report.Violations));
        var profile = report.Interactions!;
        Assert.Equal(profile.RowsRead, profile.RowsKept + profile.Dropped.Values.Sum());
        Assert.Contains(report.Checks, c => c.Check == "dropped" && c.Detail.Contains("cancellation", StringComparison.Ordinal));

        var prepared = await new TransformDatasetActivity(Storage, NullLogger<TransformDatasetActivity>.Instance)
            .RunAsync(new TransformDatasetInput(registered.Dataset, new PreparationRecipe { Source = "interactions", Interactions = Retail }), Call);
        var reader = new PreparedDatasetReader(await Storage.BlobsAsync());
        var manifest = await reader.ReadManifestAsync(prepared.Data);
        Assert.Equal(TrainingObjectives.Ranking, manifest.Objective);
        Assert.Equal([3], manifest.SampleShape);
        Assert.Equal(manifest.Transform.Interactions!.Items.Count, manifest.NumClasses);
        Assert.Equal(profile.Pairs, manifest.Splits.Sum(s => (long)s.Count));
    }

    [Fact]
    public async Task A_broken_row_fails_validation_with_its_file_and_line()
    {
        var folder = Directory.CreateTempSubdirectory("broken-");
        await File.WriteAllTextAsync(Path.Combine(folder.FullName, "events.csv"), "user,item,weight,time\nu1,a,1,100\nu2,b,many,200\n");
        var registered = await RegisterAsync(UniqueName("broken"), folder.FullName);
        var e = await Assert.ThrowsAsync<DatasetValidationException>(() => new ValidateDatasetActivity(Storage, NullLogger<ValidateDatasetActivity>.Instance)
            .RunAsync(new ValidateDatasetInput(registered.Dataset, new DatasetValidationRules { Interactions = new InteractionsRecipe() }), Call));
        Assert.Contains("events.csv line 3", e.Message);
        Assert.Contains("'many' is not a number", e.Message);

        var header = Directory.CreateTempSubdirectory("header-");
        await File.WriteAllTextAsync(Path.Combine(header.FullName, "events.csv"), "customer,item,weight,time\nu1,a,1,100\n");
        var wrong = await RegisterAsync(UniqueName("header"), header.FullName);
        var h = await Assert.ThrowsAsync<DatasetValidationException>(() => new ValidateDatasetActivity(Storage, NullLogger<ValidateDatasetActivity>.Instance)
            .RunAsync(new ValidateDatasetInput(wrong.Dataset, new DatasetValidationRules { Interactions = new InteractionsRecipe() }), Call));
        Assert.Contains("no column 'user'", h.Message);
    }
}
