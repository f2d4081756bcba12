using System.Buffers.Binary;
using System.IO.Compression;
using MlFunctions.Core.Datasets;
using MlFunctions.Tests.Infrastructure;

namespace MlFunctions.Datasets.Tests;

/// <summary>Paths to the shared datasets and helpers that write small or deliberately broken IDX files.</summary>
internal static class TestData
{
    public static string Root { get; } = RepoPaths.SharedDatasets;

    public static string MnistTest => Path.Combine(Root, "mnist");

    public static string MnistTrain => Path.Combine(Root, "mnist-train");

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "mlf-ds-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Writes a uint8 IDX file (big-endian header), gzipped when the name ends in .gz.</summary>
    public static void WriteIdx(string path, int[] dims, ReadOnlySpan<byte> payload, uint? magic = null)
    {
        var header = new byte[4 + (4 * dims.Length)];
        BinaryPrimitives.WriteUInt32BigEndian(header, magic ?? (0x0800u | (uint)dims.Length));
        for (var i = 0; i < dims.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4 + (4 * i)), (uint)dims[i]);
        }

        using var file = File.Create(path);
        using Stream target = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionLevel.Fastest) : file;
        target.Write(header);
        target.Write(payload);
    }

    public static void WriteLabels(string path, IReadOnlyList<int> labels) =>
        WriteIdx(path, [labels.Count], labels.Select(l => (byte)l).ToArray());

    /// <summary>
    /// A small MNIST-shaped dataset folder: the first <paramref name="train"/> training samples as
    /// <paramref name="parts"/> parts and the first <paramref name="test"/> t10k samples, all gzipped.
    /// </summary>
    public static string MnistSlice(int train, int test, int parts = 2)
    {
        var dir = TempDir();
        using (var reader = IdxLabeledReader.OpenMnist(MnistTrain, "train"))
        {
            var per = train / parts;
            for (var k = 0; k < parts; k++)
            {
                var batch = reader.ReadBatch(per)!;
                WriteIdx(Path.Combine(dir, $"train-images-idx3-ubyte.part{k}-of-{parts}.gz"), [batch.Count, 28, 28], batch.Features);
                WriteLabels(Path.Combine(dir, $"train-labels-idx1-ubyte.part{k}-of-{parts}.gz"), batch.Labels);
            }
        }

        using (var reader = IdxLabeledReader.OpenMnist(MnistTest, "t10k"))
        {
            var batch = reader.ReadBatch(test)!;
            WriteIdx(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"), [batch.Count, 28, 28], batch.Features);
            WriteLabels(Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"), batch.Labels);
        }

        return dir;
    }
}
