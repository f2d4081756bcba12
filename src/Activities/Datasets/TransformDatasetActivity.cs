using System.Security.Cryptography;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Logging;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Activities.Datasets;

/// <summary>
/// Prepares a registered dataset for training (IDX, PNG folders, pixel CSVs, tables, interactions, CT): a seeded stratified train/val/test split (or train/val
/// plus the official test set), normalization statistics from the train split only, one
/// <see cref="PreparedShard"/> blob per split and a manifest under
/// <c>prepared/{name}/{datasetVersion}/{recipeHash}/</c>. The manifest is written last and once, so the
/// same recipe on the same dataset version is prepared once and a re-run returns it.
/// </summary>
/// <remarks>
/// The pool is held in memory while it is split (MNIST train: 47 MB of pixels); the files are still read
/// as streams, never as one downloaded blob.
/// </remarks>
public sealed class TransformDatasetActivity(IStorageClients storage, ILogger<TransformDatasetActivity> logger)
    : IActivity<TransformDatasetInput, TransformDatasetResult>
{
    public async Task<TransformDatasetResult> RunAsync(TransformDatasetInput input, ActivityCall call)
    {
        var ct = call.Cancellation;
        var recipe = input.Recipe;
        var recipeHash = recipe.Hash();
        var prefix = PreparedLayout.Prefix(input.Dataset, recipeHash);
        var service = await storage.BlobsAsync(ct);
        var container = await DatasetBlobs.ContainerAsync(service, PreparedLayout.Container, ct);
        var manifestBlob = container.GetBlobClient(PreparedLayout.ManifestBlob(prefix));
        if (await DatasetBlobs.ReadJsonAsync<PreparedDatasetManifest>(manifestBlob, ct) is { } done)
        {
            return Result(prefix, done, alreadyPrepared: true);
        }

        var dataset = await RegisteredDataset.LoadAsync(service, input.Dataset, ct);
        Dictionary<string, PreparedShard> splits;
        int numClasses;
        TransformSpec transform;
        string? objective = null;
        if (recipe.Ct is { } ctRecipe)
        {
            var read = CtDatasetFiles.Read(dataset, ct);
            if (!read.IsValid)
                throw new InvalidDataException($"dataset {input.Dataset.Name} has CT problems: {string.Join("; ", read.Problems.DefaultIfEmpty("no valid pair"))}");
            var prepared = await Task.Run(() => Core.Imaging.CtPreparation.Prepare(read.Pairs, ctRecipe), ct);
            splits = prepared.Shards.ToDictionary(kv => kv.Key, kv => kv.Value);
            numClasses = 1;
            transform = new TransformSpec
            {
                Kind = TransformSpec.CtKind,
                Ct = new Core.Imaging.CtTransform { HuScale = ctRecipe.HuScale, HuOffset = read.Pairs[0].Sidecar.HuOffset, TrainedWidth = prepared.Width, TrainedHeight = prepared.Height },
            };
            objective = TrainingObjectives.Denoise;
        }
        else if (recipe.Interactions is { } interactions)
        {
            if (dataset.Manifest.Format != "csv")
                throw new ArgumentException($"dataset {input.Dataset.Name} is {dataset.Manifest.Format}; interactions are read from CSV files");
            var prepared = await Task.Run(() => InteractionPreparation.Prepare(dataset.CsvSources(), interactions), ct);
            splits = prepared.Shards.ToDictionary(kv => kv.Key, kv => kv.Value);
            numClasses = prepared.Transform.Items.Count;
            transform = new TransformSpec { Kind = TransformSpec.InteractionsKind, Interactions = prepared.Transform };
            objective = TrainingObjectives.Ranking;
        }
        else if (recipe.Tabular is null && ImageDatasetFiles.Reads(dataset, recipe.Images))
        {
            var images = recipe.Images ?? new ImagesRecipe();
            var read = await Task.Run(() => ImageDatasetFiles.Read(dataset, images, ct), ct);
            if (!read.IsValid)
                throw new InvalidDataException($"dataset {input.Dataset.Name} has image problems: {string.Join("; ", read.Problems.DefaultIfEmpty("no images"))}");
            (splits, numClasses) = read.Split(recipe);
            transform = read.Transform(splits[PreparedLayout.Train], images.Resize);
        }
        else if (dataset.Manifest.Format is "csv" or "mbox")
        {
            var tabular = recipe.Tabular ?? throw new ArgumentException(
                $"dataset {input.Dataset.Name} is a CSV table; the recipe needs tabular settings (at least columns.label, the column to predict)");
            var prepared = await Task.Run(() => TabularPreparation.Prepare(DatasetTables.Read(dataset, tabular.Columns, recipe.MaxSamples).Table, tabular, recipe.TrainFraction, recipe.ValFraction, recipe.TestFraction, recipe.Seed), ct);
            foreach (var (split, rows) in prepared.Raw)
            {
                // Raw rows first: the manifest (written last) is the commit point for them too.
                await DatasetBlobs.WriteJsonAsync(container.GetBlobClient(PreparedLayout.RawRowsBlob(prefix, split)), rows, ct);
            }

            splits = prepared.Shards.ToDictionary(kv => kv.Key, kv => kv.Value);
            // A regressor has one output (the standardized target) and is trained as the regression task.
            numClasses = prepared.Transform.IsRegression ? 1 : prepared.Transform.Classes.Count;
            transform = TransformSpec.ForTable(prepared.Transform);
            objective = prepared.Transform.IsRegression ? TrainingObjectives.Regression : null;
        }
        else if (dataset.Manifest.Format == "idx")
        {
            (splits, numClasses) = await Task.Run(() => Split(dataset, recipe, ct), ct);
            transform = NormalizationStats.Compute(splits[PreparedLayout.Train]);
        }
        else
        {
            throw new NotSupportedException($"dataset {input.Dataset.Name} is {dataset.Manifest.Format}; TransformDataset prepares IDX, PNG-folder and pixel-CSV image datasets, CSV tables and mbox archives");
        }

        var (manifest, created) = await PreparedDatasetWriter.WriteAsync(
            container, prefix, input.Dataset, recipe, recipeHash, transform, numClasses, splits, ct, objective);
        if (!created)
        {
            return Result(prefix, manifest, alreadyPrepared: true);
        }

        logger.LogInformation(
            "Prepared {Name}/{Version} as {Prefix}: {Counts}; transform {Kind}",
            input.Dataset.Name, input.Dataset.Version, prefix, string.Join(", ", manifest.Splits.Select(s => $"{s.Name} {s.Count}")), transform.Kind);
        return Result(prefix, manifest, alreadyPrepared: false);
    }

    /// <summary>Reads the pool (and the official test set) and cuts the splits. Pure apart from the reads.</summary>
    internal static (Dictionary<string, PreparedShard> Splits, int NumClasses) Split(RegisteredDataset dataset, PreparationRecipe recipe, CancellationToken ct)
    {
        PreparedShard pool;
        using (var reader = dataset.OpenIdx(recipe.Source))
        {
            pool = reader.ReadShard(recipe.MaxSamples > 0 ? recipe.MaxSamples : null);
        }

        ct.ThrowIfCancellationRequested();
        PreparedShard? officialTest = null;
        if (recipe.TestSource is not null)
        {
            if (recipe.TestFraction != 0)
            {
                throw new ArgumentException($"TestSource '{recipe.TestSource}' supplies the test split; set TestFraction to 0 and TrainFraction + ValFraction to 1");
            }

            using var reader = dataset.OpenIdx(recipe.TestSource);
            officialTest = reader.ReadShard(recipe.MaxTestSamples > 0 ? recipe.MaxTestSamples : null);
            if (!officialTest.SampleShape.SequenceEqual(pool.SampleShape))
            {
                throw new InvalidDataException($"test set samples are [{string.Join(",", officialTest.SampleShape)}], the pool's are [{string.Join(",", pool.SampleShape)}]");
            }
        }

        var indices = StratifiedSplitter.Split(pool.Labels, recipe.TrainFraction, recipe.ValFraction, recipe.TestFraction, recipe.Seed);
        var splits = new Dictionary<string, PreparedShard>
        {
            [PreparedLayout.Train] = ShardOps.Take(pool, indices.Train),
            [PreparedLayout.Val] = ShardOps.Take(pool, indices.Val),
            [PreparedLayout.Test] = officialTest ?? ShardOps.Take(pool, indices.Test),
        };
        var numClasses = splits.Values.SelectMany(s => s.Labels).DefaultIfEmpty(-1).Max() + 1;
        return (splits, numClasses);
    }

    private static TransformDatasetResult Result(string prefix, PreparedDatasetManifest manifest, bool alreadyPrepared) =>
        new(new PreparedDataRef(PreparedLayout.Container, prefix, manifest.ContentHash), manifest.Transform, manifest.Splits, alreadyPrepared);
}
