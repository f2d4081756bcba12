using System.Globalization;

namespace MlFunctions.Core.Datasets;

/// <summary>A batch of consecutive samples: features (raw item bytes) and their labels.</summary>
public sealed record LabeledBatch(int FirstIndex, int Count, byte[] Features, int[] Labels);

/// <summary>
/// Pairs an image array with its label array (each possibly multi-part) and streams them together in
/// batches. Opening it checks that the two agree: per part when both are split the same way (so the
/// message can name the part, e.g. "labels part 3 has 9,999 entries, images part 3 has 10,000"), else in
/// total.
/// </summary>
public sealed class IdxLabeledReader : IDisposable
{
    private readonly IdxSequenceReader images;
    private readonly IdxSequenceReader labels;

    private IdxLabeledReader(IdxSequenceReader images, IdxSequenceReader labels)
    {
        this.images = images;
        this.labels = labels;
    }

    public int Count => images.Count;

    /// <summary>Shape of one sample, e.g. [28, 28].</summary>
    public int[] SampleShape => images.ItemShape;

    public int SampleBytes => images.ItemBytes;

    public IdxDataType DataType => images.DataType;

    public int Position => images.Position;

    public int Remaining => images.Remaining;

    public static IdxLabeledReader Open(IdxPartSet images, IdxPartSet labels)
    {
        var imageReader = images.OpenReader();
        IdxSequenceReader? labelReader = null;
        try
        {
            labelReader = labels.OpenReader();
            CheckPairing(images, imageReader.PartHeaders, labels, labelReader.PartHeaders);
            return new IdxLabeledReader(imageReader, labelReader);
        }
        catch
        {
            imageReader.Dispose();
            labelReader?.Dispose();
            throw;
        }
    }

    /// <summary>Opens <c>{prefix}-images-idx3-ubyte</c> and <c>{prefix}-labels-idx1-ubyte</c> in a folder (MNIST naming).</summary>
    public static IdxLabeledReader OpenMnist(string directory, string prefix) =>
        Open(IdxPartSet.FromDirectory(directory, $"{prefix}-images-idx3-ubyte"), IdxPartSet.FromDirectory(directory, $"{prefix}-labels-idx1-ubyte"));

    /// <summary>The next batch of up to <paramref name="maxSamples"/> samples; null at the end.</summary>
    public LabeledBatch? ReadBatch(int maxSamples)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSamples, 1);
        var n = Math.Min(maxSamples, Remaining);
        if (n == 0)
        {
            return null;
        }

        var first = Position;
        var features = new byte[n * SampleBytes];
        var labelValues = new int[n];
        images.ReadItems(features);
        labels.ReadLabels(labelValues);
        return new LabeledBatch(first, n, features, labelValues);
    }

    /// <summary>All remaining samples (or the first <paramref name="limit"/>) in batches.</summary>
    public IEnumerable<LabeledBatch> ReadBatches(int batchSize, int? limit = null)
    {
        var left = Math.Min(limit ?? int.MaxValue, Remaining);
        while (left > 0 && ReadBatch(Math.Min(batchSize, left)) is { } batch)
        {
            left -= batch.Count;
            yield return batch;
        }
    }

    public void Skip(int samples)
    {
        images.Skip(samples);
        labels.Skip(samples);
    }

    /// <summary>
    /// Reads the remaining samples (at most <paramref name="limit"/>) into one shard. The caller chose to
    /// hold them in memory; for MNIST train that is 47 MB.
    /// </summary>
    public PreparedShard ReadShard(int? limit = null)
    {
        var n = Math.Min(limit ?? int.MaxValue, Remaining);
        if (DataType != IdxDataType.UInt8)
        {
            throw new InvalidDataException($"prepared shards hold uint8 features; these images are {DataType}");
        }

        var features = new byte[checked(n * SampleBytes)];
        var labelValues = new int[n];
        images.ReadItems(features);
        labels.ReadLabels(labelValues);
        if (Remaining == 0)
        {
            EnsureAtEnd();
        }

        return new PreparedShard(SampleShape.Length == 2 ? [1, .. SampleShape] : SampleShape, features, labelValues);
    }

    /// <summary>After the last sample: neither file holds bytes past its header's count.</summary>
    public void EnsureAtEnd()
    {
        images.EnsureAtEnd();
        labels.EnsureAtEnd();
    }

    public void Dispose()
    {
        images.Dispose();
        labels.Dispose();
    }

    private static void CheckPairing(IdxPartSet images, IReadOnlyList<IdxHeader> imageHeaders, IdxPartSet labels, IReadOnlyList<IdxHeader> labelHeaders)
    {
        if (labelHeaders[0].ItemElements != 1)
        {
            throw new InvalidDataException($"{labels.BaseName} is {labelHeaders[0].Describe()}; a label array has one scalar per item");
        }

        if (imageHeaders.Count == labelHeaders.Count)
        {
            for (var i = 0; i < imageHeaders.Count; i++)
            {
                if (imageHeaders[i].Count != labelHeaders[i].Count)
                {
                    var where = imageHeaders.Count > 1 ? $" part {images.Parts[i].Index}" : string.Empty;
                    throw new InvalidDataException(
                        $"labels{where} has {N(labelHeaders[i].Count)} entries, images{where} has {N(imageHeaders[i].Count)} " +
                        $"({labels.Parts[i].Name} vs {images.Parts[i].Name}); every image needs exactly one label");
                }
            }

            return;
        }

        long imageTotal = imageHeaders.Sum(h => (long)h.Count), labelTotal = labelHeaders.Sum(h => (long)h.Count);
        if (imageTotal != labelTotal)
        {
            throw new InvalidDataException(
                $"labels have {N(labelTotal)} entries in {labelHeaders.Count} file(s), images have {N(imageTotal)} in {imageHeaders.Count}; every image needs exactly one label");
        }
    }

    private static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
}
