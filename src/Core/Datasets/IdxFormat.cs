using System.Globalization;

namespace MlFunctions.Core.Datasets;

/// <summary>The element type byte of an IDX magic number (0x0000TTRR: TT = type, RR = rank).</summary>
public enum IdxDataType : byte
{
    UInt8 = 0x08,
    Int8 = 0x09,
    Int16 = 0x0B,
    Int32 = 0x0C,
    Float32 = 0x0D,
    Float64 = 0x0E,
}

/// <summary>
/// The header of one IDX file: element type and dimensions, the first of which is the item count
/// (MNIST images: [10000, 28, 28]; labels: [10000]).
/// </summary>
public sealed record IdxHeader(IdxDataType DataType, int[] Dimensions)
{
    /// <summary>Items in the file (the first dimension).</summary>
    public int Count => Dimensions[0];

    /// <summary>Shape of one item (empty for labels: one scalar per item).</summary>
    public int[] ItemShape => Dimensions[1..];

    /// <summary>Elements per item.</summary>
    public int ItemElements => ItemShape.Aggregate(1, (a, b) => checked(a * b));

    public int ElementBytes => ElementSize(DataType);

    public int ItemBytes => checked(ItemElements * ElementBytes);

    /// <summary>Header bytes: 4 magic + 4 per dimension.</summary>
    public int HeaderBytes => 4 + (4 * Dimensions.Length);

    public long PayloadBytes => (long)Count * ItemBytes;

    public string Describe() =>
        $"{DataType} [{string.Join(", ", Dimensions.Select(d => d.ToString("N0", CultureInfo.InvariantCulture)))}]";

    public static int ElementSize(IdxDataType type) => type switch
    {
        IdxDataType.UInt8 or IdxDataType.Int8 => 1,
        IdxDataType.Int16 => 2,
        IdxDataType.Int32 or IdxDataType.Float32 => 4,
        IdxDataType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown IDX element type"),
    };
}

/// <summary>Conversions of raw (big-endian) IDX elements.</summary>
public static class IdxValues
{
    /// <summary>Decodes big-endian elements of <paramref name="type"/> to floats (for profiling non-byte arrays).</summary>
    public static float[] ToFloats(ReadOnlySpan<byte> data, IdxDataType type)
    {
        var size = IdxHeader.ElementSize(type);
        var result = new float[data.Length / size];
        for (var i = 0; i < result.Length; i++)
        {
            var e = data.Slice(i * size, size);
            result[i] = type switch
            {
                IdxDataType.UInt8 => e[0],
                IdxDataType.Int8 => (sbyte)e[0],
                IdxDataType.Int16 => System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(e),
                IdxDataType.Int32 => System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(e),
                IdxDataType.Float32 => System.Buffers.Binary.BinaryPrimitives.ReadSingleBigEndian(e),
                _ => (float)System.Buffers.Binary.BinaryPrimitives.ReadDoubleBigEndian(e),
            };
        }

        return result;
    }
}
