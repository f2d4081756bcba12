using Azure.Storage.Blobs;
using MlFunctions.Core.Datasets;

namespace MlFunctions.Activities.Datasets;

/// <summary>A registered dataset version in blob storage: its manifest and streaming access to its files.</summary>
internal sealed class RegisteredDataset(BlobContainerClient container, DatasetManifest manifest)
{
    public DatasetManifest Manifest { get; } = manifest;

    public BlobContainerClient Container { get; } = container;

    public static async Task<RegisteredDataset> LoadAsync(BlobServiceClient service, DatasetRef dataset, CancellationToken ct)
    {
        var container = service.GetBlobContainerClient(DatasetLayout.Container);
        var manifest = await DatasetBlobs.ReadJsonAsync<DatasetManifest>(container.GetBlobClient(DatasetLayout.ManifestBlob(dataset)), ct)
            ?? throw new InvalidOperationException($"dataset {dataset.Name}/{dataset.Version} is not registered: datasets/{DatasetLayout.ManifestBlob(dataset)} does not exist; run RegisterDataset first");
        if (manifest.ContentHash != dataset.ContentHash)
        {
            throw new InvalidOperationException($"dataset {dataset.Name}/{dataset.Version} has content hash {manifest.ContentHash}, the caller expected {dataset.ContentHash}");
        }

        return new RegisteredDataset(container, manifest);
    }

    public IEnumerable<string> FileNames => Manifest.Files.Select(f => f.Name);

    /// <summary>
    /// A streaming read of one file (the readers pull it block by block; nothing is staged on disk). Sync
    /// because the IDX/CSV readers are sync; activities run on pool threads, so blocking one is acceptable.
    /// </summary>
    public Stream Open(string file) => Container.GetBlobClient(DatasetLayout.FileBlob(Manifest.Name, Manifest.Version, file)).OpenRead();

    /// <summary>Every file as a CSV source, in name order (a CSV dataset's files form one table).</summary>
    public IReadOnlyList<CsvSource> CsvSources() => FileNames.Select(n => new CsvSource(n, () => Open(n))).ToList();

    /// <summary>The labeled IDX pair for <paramref name="prefix"/> (e.g. "train", "t10k").</summary>
    public IdxLabeledReader OpenIdx(string prefix)
    {
        var pairs = DatasetLayout.IdxPairs(FileNames);
        if (!pairs.TryGetValue(prefix, out var pair))
        {
            throw new InvalidOperationException(
                $"dataset {Manifest.Name}/{Manifest.Version} has no '{prefix}' images+labels (it has: {string.Join(", ", pairs.Keys)})");
        }

        return IdxLabeledReader.Open(IdxPartSet.FromNames(FileNames, pair.Images, Open), IdxPartSet.FromNames(FileNames, pair.Labels, Open));
    }
}
