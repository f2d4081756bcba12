using System.IO.Compression;
using MlFunctions.Core.Datasets;

namespace MlFunctions.Datasets.Tests;

public sealed class IdxReaderTests
{
    [Fact]
    public void Reads_the_t10k_header_and_first_labels_from_gzip()
    {
        using var images = IdxReader.Open(Path.Combine(TestData.MnistTest, "t10k-images-idx3-ubyte.gz"));
        Assert.True(images.IsGzip);
        Assert.Equal(IdxDataType.UInt8, images.Header.DataType);
        Assert.Equal([10000, 28, 28], images.Header.Dimensions);

        using var labels = IdxReader.Open(Path.Combine(TestData.MnistTest, "t10k-labels-idx1-ubyte.gz"));
        var first = new int[10];
        Assert.Equal(10, labels.ReadLabels(first));
        Assert.Equal([7, 2, 1, 0, 4, 1, 4, 9, 5, 9], first); // the well-known first t10k labels
    }

    [Fact]
    public void Chunks_are_bounded_and_cover_the_items_in_order()
    {
        using var images = IdxReader.Open(Path.Combine(TestData.MnistTest, "t10k-images-idx3-ubyte.gz"));
        var chunks = images.ReadChunks(64).Take(3).ToList();
        Assert.All(chunks, c => Assert.Equal(64 * 784, c.Data.Length));
        Assert.Equal([0, 64, 128], chunks.Select(c => c.FirstIndex));

        // The first test image (a 7) has ink in the middle rows and a blank border.
        var first = chunks[0].Data.AsSpan(0, 784);
        Assert.Equal(0, first[0]);
        Assert.True(first.ToArray().Count(b => b > 0) > 50);
    }

    [Fact]
    public void Multi_part_training_set_reads_parts_in_order_across_boundaries()
    {
        var images = IdxPartSet.FromDirectory(TestData.MnistTrain, "train-images-idx3-ubyte");
        Assert.Equal(6, images.Parts.Count);
        Assert.Equal(Enumerable.Range(0, 6), images.Parts.Select(p => p.Index));
        Assert.Equal(60000, images.ReadHeaders().Sum(h => h.Count));

        // Labels exist both as parts and as one whole file: parts are preferred, and both must agree.
        var parts = IdxPartSet.FromDirectory(TestData.MnistTrain, "train-labels-idx1-ubyte");
        Assert.True(parts.IsMultiPart);
        using var seq = parts.OpenReader();
        seq.Skip(9995);
        var across = new int[10];
        Assert.Equal(10, seq.ReadLabels(across)); // 5 from part 0, 5 from part 1

        using var whole = IdxReader.Open(Path.Combine(TestData.MnistTrain, "train-labels-idx1-ubyte.gz"));
        Assert.Equal([5, 0, 4, 1, 9], whole.ReadAllLabels().Take(5));
        using var whole2 = IdxReader.Open(Path.Combine(TestData.MnistTrain, "train-labels-idx1-ubyte.gz"));
        whole2.Skip(9995);
        var expected = new int[10];
        whole2.ReadLabels(expected);
        Assert.Equal(expected, across);
    }

    [Fact]
    public void Training_label_class_counts_match_the_published_ones()
    {
        using var seq = IdxPartSet.FromDirectory(TestData.MnistTrain, "train-labels-idx1-ubyte").OpenReader();
        var labels = new int[seq.Count];
        seq.ReadLabels(labels);
        seq.EnsureAtEnd();
        var counts = labels.GroupBy(l => l).OrderBy(g => g.Key).Select(g => g.Count());
        Assert.Equal([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949], counts);
    }

    [Fact]
    public void Labeled_reader_pairs_images_with_labels_and_makes_a_shard()
    {
        using var reader = IdxLabeledReader.OpenMnist(TestData.MnistTrain, "train");
        Assert.Equal(60000, reader.Count);
        var shard = reader.ReadShard(300);
        Assert.Equal([1, 28, 28], shard.SampleShape);
        Assert.Equal(300, shard.Count);
        Assert.Equal([5, 0, 4, 1, 9], shard.Labels.Take(5));
    }

    [Fact]
    public void Raw_uncompressed_files_read_the_same()
    {
        var dir = TestData.TempDir();
        var raw = Path.Combine(dir, "x-labels-idx1-ubyte");
        TestData.WriteLabels(raw, [3, 1, 4, 1, 5]);
        using var reader = IdxReader.Open(raw);
        Assert.False(reader.IsGzip);
        Assert.Equal([3, 1, 4, 1, 5], reader.ReadAllLabels());
        reader.EnsureAtEnd();
    }

    [Fact]
    public void Flipped_magic_is_reported_with_its_value()
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "bad-images-idx3-ubyte.gz");
        TestData.WriteIdx(path, [2, 2, 2], new byte[8], magic: 0x03080000);
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.Open(path));
        Assert.Contains("bad IDX magic 0x03080000", e.Message);
        Assert.Contains("bad-images-idx3-ubyte.gz", e.Message);
    }

    [Fact]
    public void Cut_gzip_is_reported_as_truncated()
    {
        var dir = TestData.TempDir();
        var source = Path.Combine(TestData.MnistTrain, "train-labels-idx1-ubyte.part0-of-6.gz");
        var cut = Path.Combine(dir, "train-labels-idx1-ubyte.gz");
        var bytes = File.ReadAllBytes(source);
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);

        using var reader = IdxReader.Open(cut);
        var e = Assert.Throws<InvalidDataException>(() => reader.ReadAllLabels());
        Assert.Contains("gzip", e.Message);
        Assert.Contains("train-labels-idx1-ubyte.gz", e.Message);
    }

    [Fact]
    public void Raw_file_shorter_than_its_header_says_is_truncated()
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "t-images-idx3-ubyte");
        TestData.WriteIdx(path, [10, 2, 2], new byte[37]); // 9 items and a quarter
        using var reader = IdxReader.Open(path);
        var e = Assert.Throws<InvalidDataException>(() => reader.ReadAllBytes());
        Assert.Contains("truncated IDX file", e.Message);
        Assert.Contains("after 9 of the 10 items", e.Message);
    }

    [Fact]
    public void Bytes_beyond_the_header_count_are_an_error()
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "t-labels-idx1-ubyte.gz");
        TestData.WriteIdx(path, [3], new byte[5]);
        using var reader = IdxReader.Open(path);
        reader.ReadAllLabels();
        var e = Assert.Throws<InvalidDataException>(reader.EnsureAtEnd);
        Assert.Contains("2 bytes after the 3 items", e.Message);
    }

    [Fact]
    public void A_dropped_label_names_the_part_and_both_counts()
    {
        var dir = TestData.TempDir();
        foreach (var f in Directory.EnumerateFiles(TestData.MnistTrain, "train-images-idx3-ubyte.part*"))
        {
            File.CreateSymbolicLink(Path.Combine(dir, Path.GetFileName(f)), f);
        }

        for (var k = 0; k < 6; k++)
        {
            var name = $"train-labels-idx1-ubyte.part{k}-of-6.gz";
            if (k != 3)
            {
                File.Copy(Path.Combine(TestData.MnistTrain, name), Path.Combine(dir, name));
                continue;
            }

            using var reader = IdxReader.Open(Path.Combine(TestData.MnistTrain, name));
            var labels = reader.ReadAllLabels();
            TestData.WriteLabels(Path.Combine(dir, name), labels[..^1]);
        }

        var e = Assert.Throws<InvalidDataException>(() => IdxLabeledReader.OpenMnist(dir, "train"));
        Assert.StartsWith("labels part 3 has 9,999 entries, images part 3 has 10,000", e.Message);
    }

    [Fact]
    public void A_missing_part_is_an_error_not_a_shorter_dataset()
    {
        var dir = TestData.TempDir();
        for (var k = 0; k < 3; k++)
        {
            if (k != 1)
            {
                TestData.WriteLabels(Path.Combine(dir, $"l-labels-idx1-ubyte.part{k}-of-3.gz"), [1, 2]);
            }
        }

        var e = Assert.Throws<InvalidDataException>(() => IdxPartSet.FromDirectory(dir, "l-labels-idx1-ubyte"));
        Assert.Contains("missing part(s) 1", e.Message);
    }

    [Fact]
    public void Parts_with_different_item_shapes_are_refused()
    {
        var dir = TestData.TempDir();
        TestData.WriteIdx(Path.Combine(dir, "s-images-idx3-ubyte.part0-of-2.gz"), [1, 2, 2], new byte[4]);
        TestData.WriteIdx(Path.Combine(dir, "s-images-idx3-ubyte.part1-of-2.gz"), [1, 3, 3], new byte[9]);
        var e = Assert.Throws<InvalidDataException>(() => IdxPartSet.FromDirectory(dir, "s-images-idx3-ubyte").ReadHeaders());
        Assert.Contains("part 1", e.Message);
    }

    [Fact]
    public void Gzip_is_detected_by_content_not_name()
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "n-labels-idx1-ubyte");
        using (var file = File.Create(path))
        using (var gz = new GZipStream(file, CompressionLevel.Fastest))
        {
            gz.Write([0, 0, 8, 1, 0, 0, 0, 2, 7, 8]);
        }

        using var reader = IdxReader.Open(path);
        Assert.True(reader.IsGzip);
        Assert.Equal([7, 8], reader.ReadAllLabels());
    }
}
