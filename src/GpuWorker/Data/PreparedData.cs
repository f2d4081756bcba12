using Azure.Storage.Blobs;
using MlFunctions.Core.Datasets;
using MlFunctions.Activities.Datasets;
using PreparedDatasetManifest = MlFunctions.Core.Datasets.PreparedDatasetManifest;
using PreparedLayout = MlFunctions.Core.Datasets.PreparedLayout;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Data;

/// <summary>
/// One split loaded as raw shards, before the transform: uint8 features (images), or float features already
/// encoded by a tabular transform (<see cref="Floats"/>), and int labels.
/// </summary>
public sealed record PreparedSplit(string Name, int[] SampleShape, byte[] Features, int[] Labels, float[]? Floats = null)
{
    public int Count => Labels.Length;

    private int SampleSize => SampleShape.Aggregate(1, (a, b) => a * b);

    public static PreparedSplit Concat(string name, IReadOnlyList<PreparedShard> shards)
    {
        if (shards.Count == 0)
            return new PreparedSplit(name, [], [], []);
        var shape = shards[0].SampleShape;
        foreach (var s in shards)
        {
            if (!s.SampleShape.SequenceEqual(shape) || (s.FloatFeatures is null) != (shards[0].FloatFeatures is null))
                throw new InvalidDataException($"split '{name}': shard sample shapes or element types differ ([{string.Join(",", shape)}] vs [{string.Join(",", s.SampleShape)}])");
        }

        var floats = shards[0].FloatFeatures is null ? null : shards.SelectMany(s => s.FloatFeatures!).ToArray();
        return new PreparedSplit(name, shape, shards.SelectMany(s => s.Features).ToArray(), shards.SelectMany(s => s.Labels).ToArray(), floats);
    }

    /// <summary>Several splits as one (train+val for a final retrain).</summary>
    public static PreparedSplit Merge(string name, params PreparedSplit[] splits)
    {
        var parts = splits.Where(s => s.Count > 0).ToArray();
        if (parts.Length == 0)
            return new PreparedSplit(name, [], [], []);
        if (parts.Any(p => !p.SampleShape.SequenceEqual(parts[0].SampleShape) || (p.Floats is null) != (parts[0].Floats is null)))
            throw new InvalidDataException($"cannot merge splits {string.Join(", ", parts.Select(p => p.Name))}: sample shapes or element types differ");
        var floats = parts[0].Floats is null ? null : parts.SelectMany(p => p.Floats!).ToArray();
        return new PreparedSplit(name, parts[0].SampleShape, parts.SelectMany(p => p.Features).ToArray(), parts.SelectMany(p => p.Labels).ToArray(), floats);
    }

    /// <summary>Splits this set into (train, held-out) for one cross-validation fold.</summary>
    public (PreparedSplit Train, PreparedSplit HeldOut) Fold(CrossValidationFold fold)
    {
        var folds = fold.Assign(Labels);
        var held = Enumerable.Range(0, Count).Where(i => folds[i] == fold.Index).ToArray();
        var kept = Enumerable.Range(0, Count).Where(i => folds[i] != fold.Index).ToArray();
        return (Select($"{Name}-without-fold{fold.Index}", kept), Select($"{Name}-fold{fold.Index}", held));
    }

    private PreparedSplit Select(string name, int[] indices)
    {
        var size = SampleSize;
        var labels = indices.Select(i => Labels[i]).ToArray();
        if (Floats is { } source)
        {
            var taken = new float[(long)indices.Length * size];
            for (var j = 0; j < indices.Length; j++)
                Array.Copy(source, (long)indices[j] * size, taken, (long)j * size, size);
            return new PreparedSplit(name, SampleShape, [], labels, taken);
        }

        var features = new byte[(long)indices.Length * size];
        for (var j = 0; j < indices.Length; j++)
            Array.Copy(Features, (long)indices[j] * size, features, (long)j * size, size);
        return new PreparedSplit(name, SampleShape, features, labels);
    }

    /// <summary>Applies <paramref name="transform"/> and uploads features [n, ...shape] (float32) and labels (int64) to <paramref name="device"/>.</summary>
    public (Tensor Features, Tensor Labels) ToTensors(TransformSpec transform, Device device, int limit = 0)
    {
        var n = limit > 0 ? Math.Min(limit, Count) : Count;
        var size = SampleSize;
        var buffer = new float[(long)n * size];
        if (Floats is { } floats)
        {
            Array.Copy(floats, buffer, buffer.Length);
        }
        else
        {
            for (var i = 0; i < buffer.Length; i++)
                buffer[i] = Features[i];
        }

        transform.ApplyToStored(buffer);
        var labels = new long[n];
        for (var i = 0; i < n; i++)
            labels[i] = Labels[i];
        var dims = new long[] { n }.Concat(SampleShape.Select(d => (long)d)).ToArray();
        return (tensor(buffer, dims).to(device), tensor(labels).to(device));
    }
}

/// <summary>A prepared dataset: its transform and its splits.</summary>
public sealed record PreparedDataset(TransformSpec Transform, IReadOnlyDictionary<string, PreparedSplit> Splits, int Classes, string? Objective = null)
{
    public PreparedSplit? Split(string name) => Splits.TryGetValue(name, out var s) && s.Count > 0 ? s : null;
}

/// <summary>
/// Loads a prepared dataset for training through the same <see cref="PreparedDatasetReader"/> the
/// pipeline's transform step writes for: the manifest (content hash checked against the job's
/// reference) and every split, each verified against its sha256.
/// </summary>
public static class PreparedDataReader
{
    public static async Task<PreparedDataset> ReadAsync(BlobServiceClient blobs, PreparedDataRef data, CancellationToken cancellation)
    {
        var reader = new PreparedDatasetReader(blobs);
        PreparedDatasetManifest manifest;
        try
        {
            manifest = await reader.ReadManifestAsync(data, cancellation);
        }
        catch (InvalidOperationException e)
        {
            // A missing manifest is bad input to the job, not a worker fault: it is never retried into success.
            throw new InvalidDataException(e.Message, e);
        }

        manifest.Transform.Validate();
        var splits = new Dictionary<string, PreparedSplit>(StringComparer.OrdinalIgnoreCase);
        foreach (var split in manifest.Splits)
        {
            var shard = await reader.ReadSplitAsync(data, manifest, split.Name, cancellation);
            splits[split.Name] = PreparedSplit.Concat(split.Name, [shard]);
        }

        if (!splits.TryGetValue(PreparedLayout.Train, out var train) || train.Count == 0)
        {
            throw new InvalidDataException($"prepared data {data.Container}/{data.Prefix} has no train split (splits: {string.Join(", ", splits.Keys)})");
        }

        foreach (var split in splits.Values)
        {
            var bad = Array.FindIndex(split.Labels, l => l < 0 || l >= manifest.NumClasses);
            if (bad >= 0)
            {
                throw new InvalidDataException($"prepared data split '{split.Name}' has label {split.Labels[bad]} at index {bad}, outside 0..{manifest.NumClasses - 1}");
            }
        }

        return new PreparedDataset(manifest.Transform, splits, manifest.NumClasses, manifest.Objective);
    }
}
