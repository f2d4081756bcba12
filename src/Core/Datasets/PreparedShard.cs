using System.Buffers.Binary;

namespace MlFunctions.Core.Datasets;

/// <summary>
/// One split of a prepared dataset as stored in blob storage: raw uint8 features (untransformed, so the
/// transform spec stays the single description of preprocessing) or, for tabular data, float32 features
/// already encoded by the split's fitted transform (the encoding needs the raw text, which a shard does
/// not keep), and int32 labels.
/// Layout (little-endian): magic "MLFS", version u32 (1 = uint8 features, 2 = float32), count u32, rank
/// u32, dims u32[rank] (per sample, e.g. 1,28,28), then count*prod(dims) features, then count int32 labels.
/// Version 1 is unchanged, so image shards written before float shards existed keep their bytes and hashes.
/// </summary>
public sealed class PreparedShard
{
    private static ReadOnlySpan<byte> Magic => "MLFS"u8;

    public PreparedShard(int[] sampleShape, byte[] features, int[] labels)
    {
        var size = sampleShape.Aggregate(1, (a, b) => a * b);
        if (sampleShape.Length == 0 || size <= 0)
        {
            throw new ArgumentException("sample shape must have positive dimensions");
        }

        if (features.Length != (long)labels.Length * size)
        {
            throw new ArgumentException($"{features.Length} feature bytes do not hold {labels.Length} samples of {size} values");
        }

        SampleShape = sampleShape;
        Features = features;
        Labels = labels;
    }

    public PreparedShard(int[] sampleShape, float[] features, int[] labels)
        : this(sampleShape, Array.Empty<byte>(), [])
    {
        if (features.Length != (long)labels.Length * SampleSize)
        {
            throw new ArgumentException($"{features.Length} feature values do not hold {labels.Length} samples of {SampleSize} values");
        }

        FloatFeatures = features;
        Labels = labels;
    }

    public int[] SampleShape { get; }

    public int SampleSize => SampleShape.Aggregate(1, (a, b) => a * b);

    /// <summary>uint8 features (empty for a float shard).</summary>
    public byte[] Features { get; }

    /// <summary>float32 features of a tabular shard, already encoded; null for a uint8 shard.</summary>
    public float[]? FloatFeatures { get; }

    public int[] Labels { get; private init; }

    /// <summary>Sample <paramref name="index"/> as floats: the raw bytes' values, or the stored encoded floats.</summary>
    public void CopySample(int index, Span<float> destination)
    {
        var size = SampleSize;
        if (FloatFeatures is { } floats)
        {
            floats.AsSpan(index * size, size).CopyTo(destination);
            return;
        }

        var raw = Features.AsSpan(index * size, size);
        for (var i = 0; i < raw.Length; i++)
        {
            destination[i] = raw[i];
        }
    }

    public int Count => Labels.Length;

    public void WriteTo(Stream stream)
    {
        Span<byte> header = stackalloc byte[16 + (4 * SampleShape.Length)];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], FloatFeatures is null ? 1u : 2u);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], (uint)Count);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], (uint)SampleShape.Length);
        for (var i = 0; i < SampleShape.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(header[(16 + (4 * i))..], (uint)SampleShape[i]);
        }

        stream.Write(header);
        if (FloatFeatures is { } floats)
        {
            var bytes = new byte[4 * floats.Length];
            for (var i = 0; i < floats.Length; i++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), floats[i]);
            }

            stream.Write(bytes);
        }
        else
        {
            stream.Write(Features);
        }

        var labelBytes = new byte[4 * Count];
        for (var i = 0; i < Count; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(labelBytes.AsSpan(4 * i), Labels[i]);
        }

        stream.Write(labelBytes);
    }

    public static PreparedShard ReadFrom(Stream stream)
    {
        var fixedHeader = new byte[16];
        stream.ReadExactly(fixedHeader);
        if (!fixedHeader.AsSpan(0, 4).SequenceEqual(Magic))
        {
            throw new InvalidDataException($"not a prepared shard: magic 0x{BinaryPrimitives.ReadUInt32BigEndian(fixedHeader):X8}");
        }

        var version = BinaryPrimitives.ReadUInt32LittleEndian(fixedHeader.AsSpan(4));
        if (version is not (1 or 2))
        {
            throw new InvalidDataException($"prepared shard version {version} is not supported (expected 1 or 2)");
        }

        var count = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(fixedHeader.AsSpan(8)));
        var rank = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(fixedHeader.AsSpan(12)));
        if (rank is < 1 or > 8)
        {
            throw new InvalidDataException($"prepared shard rank {rank} is out of range");
        }

        var dims = new byte[4 * rank];
        stream.ReadExactly(dims);
        var shape = Enumerable.Range(0, rank).Select(i => checked((int)BinaryPrimitives.ReadUInt32LittleEndian(dims.AsSpan(4 * i)))).ToArray();
        var values = checked(count * shape.Aggregate(1, (a, b) => checked(a * b)));
        var features = new byte[version == 2 ? checked(4 * values) : values];
        stream.ReadExactly(features);
        var labelBytes = new byte[checked(4 * count)];
        stream.ReadExactly(labelBytes);
        var labels = new int[count];
        for (var i = 0; i < count; i++)
        {
            labels[i] = BinaryPrimitives.ReadInt32LittleEndian(labelBytes.AsSpan(4 * i));
        }

        if (version == 1)
        {
            return new PreparedShard(shape, features, labels);
        }

        var floats = new float[values];
        for (var i = 0; i < values; i++)
        {
            floats[i] = BinaryPrimitives.ReadSingleLittleEndian(features.AsSpan(4 * i));
        }

        return new PreparedShard(shape, floats, labels);
    }
}
