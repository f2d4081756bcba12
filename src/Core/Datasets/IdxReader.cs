using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;

namespace MlFunctions.Core.Datasets;

/// <summary>
/// Streams the items of one IDX file (raw or gzip, detected from the first bytes, not the file name).
/// Memory stays bounded: callers pull items into their own buffers or in chunks; nothing holds the whole
/// payload unless <see cref="ReadAllBytes"/> is asked for.
/// </summary>
/// <remarks>
/// IDX is big-endian: magic 0x0000TTRR (TT = element type, RR = rank), then RR u32 dimensions, then the
/// payload. Every error names the source and says what was expected, because the person reading it has to
/// find the bad file among many parts.
/// </remarks>
public sealed class IdxReader : IDisposable
{
    private const int MaxRank = 8;
    private readonly Stream stream;
    private int position;

    private IdxReader(Stream stream, string source, bool isGzip, IdxHeader header)
    {
        this.stream = stream;
        Source = source;
        IsGzip = isGzip;
        Header = header;
    }

    /// <summary>The file name or blob name errors refer to.</summary>
    public string Source { get; }

    public bool IsGzip { get; }

    public IdxHeader Header { get; }

    public int Count => Header.Count;

    /// <summary>Items read (or skipped) so far.</summary>
    public int Position => position;

    public int Remaining => Count - position;

    public static IdxReader Open(string path) =>
        Open(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16), Path.GetFileName(path));

    /// <summary>Reads the header of <paramref name="stream"/>; gzip is detected from its first two bytes.</summary>
    public static IdxReader Open(Stream stream, string source, bool leaveOpen = false)
    {
        Stream data = stream;
        try
        {
            var sniff = new byte[2];
            var got = ReadFully(stream, sniff);
            var isGzip = got == 2 && sniff[0] == 0x1F && sniff[1] == 0x8B;
            var replay = new PrefixedStream(sniff, got, stream, leaveOpen);
            data = isGzip ? new GZipStream(replay, CompressionMode.Decompress) : replay;
            var header = ReadHeader(data, source, isGzip);
            return new IdxReader(data, source, isGzip, header);
        }
        catch
        {
            if (!leaveOpen || !ReferenceEquals(data, stream))
            {
                data.Dispose();
            }

            throw;
        }
    }

    /// <summary>Reads only the header (cheap: a few bytes of the first gzip block).</summary>
    public static IdxHeader ReadHeader(string path)
    {
        using var reader = Open(path);
        return reader.Header;
    }

    /// <summary>
    /// Reads as many whole items as fit in <paramref name="destination"/> (and remain), returns how many.
    /// Bytes are the file's own big-endian elements for multi-byte types; use <see cref="ReadLabels"/> for integers.
    /// </summary>
    public int ReadItems(Span<byte> destination)
    {
        var items = Math.Min(destination.Length / Header.ItemBytes, Remaining);
        if (items <= 0)
        {
            return 0;
        }

        var bytes = items * Header.ItemBytes;
        var got = ReadPayload(destination[..bytes]);
        if (got < bytes)
        {
            throw Truncated(position + (got / Header.ItemBytes));
        }

        position += items;
        return items;
    }

    /// <summary>Skips items without keeping them (still decompresses them: gzip cannot seek).</summary>
    public void Skip(int items)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(items);
        if (items > Remaining)
        {
            throw new ArgumentOutOfRangeException(nameof(items), $"{Source} has {Remaining:N0} items left, cannot skip {items:N0}");
        }

        var buffer = new byte[Math.Min(1 << 16, Math.Max(Header.ItemBytes, 1) * Math.Max(items, 1))];
        var left = (long)items * Header.ItemBytes;
        while (left > 0)
        {
            var want = (int)Math.Min(buffer.Length, left);
            var got = ReadPayload(buffer.AsSpan(0, want));
            left -= got;
            if (got < want)
            {
                throw Truncated(position + (int)(((long)items * Header.ItemBytes - left) / Header.ItemBytes));
            }
        }

        position += items;
    }

    /// <summary>Chunks of up to <paramref name="itemsPerChunk"/> items; each chunk is a fresh array the caller may keep.</summary>
    public IEnumerable<IdxChunk> ReadChunks(int itemsPerChunk)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(itemsPerChunk, 1);
        while (Remaining > 0)
        {
            var first = position;
            var data = new byte[Math.Min(itemsPerChunk, Remaining) * Header.ItemBytes];
            var n = ReadItems(data);
            yield return new IdxChunk(first, n, data);
        }
    }

    /// <summary>The whole remaining payload as one array (the caller asked for it; MNIST train is 47 MB).</summary>
    public byte[] ReadAllBytes()
    {
        var data = new byte[checked(Remaining * Header.ItemBytes)];
        ReadItems(data);
        return data;
    }

    /// <summary>
    /// Reads up to <paramref name="destination"/>.Length scalar integer items (a label file: rank 1, any
    /// integer element type) and returns how many were read.
    /// </summary>
    public int ReadLabels(Span<int> destination)
    {
        if (Header.ItemElements != 1)
        {
            throw new InvalidDataException($"{Source} is not a label file: items are {Header.Describe()}, expected one scalar per item");
        }

        if (Header.DataType is IdxDataType.Float32 or IdxDataType.Float64)
        {
            throw new InvalidDataException($"{Source} holds {Header.DataType} values; labels must be an integer IDX type");
        }

        var size = Header.ElementBytes;
        var items = Math.Min(destination.Length, Remaining);
        var buffer = new byte[Math.Min(items, 1 << 14) * size];
        var done = 0;
        while (done < items)
        {
            var n = ReadItems(buffer.AsSpan(0, Math.Min(items - done, buffer.Length / size) * size));
            for (var i = 0; i < n; i++)
            {
                var e = buffer.AsSpan(i * size, size);
                destination[done + i] = Header.DataType switch
                {
                    IdxDataType.UInt8 => e[0],
                    IdxDataType.Int8 => (sbyte)e[0],
                    IdxDataType.Int16 => BinaryPrimitives.ReadInt16BigEndian(e),
                    _ => BinaryPrimitives.ReadInt32BigEndian(e),
                };
            }

            done += n;
        }

        return items;
    }

    /// <summary>All remaining labels (a label file is small: 60,000 ints for MNIST).</summary>
    public int[] ReadAllLabels()
    {
        var labels = new int[Remaining];
        ReadLabels(labels);
        return labels;
    }

    /// <summary>
    /// Checks that nothing follows the last item: a longer payload means the header count is wrong (or
    /// two files were concatenated), which would otherwise silently drop data.
    /// </summary>
    public void EnsureAtEnd()
    {
        if (Remaining > 0)
        {
            throw new InvalidOperationException($"{Source}: {Remaining:N0} items not read yet");
        }

        Span<byte> probe = stackalloc byte[64];
        long extra = 0;
        int n;
        while ((n = ReadPayload(probe)) > 0)
        {
            extra += n;
        }

        if (extra > 0)
        {
            throw new InvalidDataException(
                $"{Source} has {extra:N0} bytes after the {Count:N0} items its header declares ({Header.Describe()}); the header count is wrong or files were concatenated");
        }
    }

    public void Dispose() => stream.Dispose();

    private int ReadPayload(Span<byte> destination)
    {
        try
        {
            return ReadFully(stream, destination);
        }
        catch (InvalidDataException e) when (IsGzip)
        {
            throw new InvalidDataException($"corrupt gzip in {Source} after {position:N0} of {Count:N0} items: {e.Message}", e);
        }
    }

    private InvalidDataException Truncated(int itemsComplete)
    {
        var what = IsGzip ? "truncated gzip" : "truncated IDX file";
        return new InvalidDataException(
            $"{what}: {Source} ends after {itemsComplete.ToString("N0", CultureInfo.InvariantCulture)} of the {Count.ToString("N0", CultureInfo.InvariantCulture)} items its header declares ({Header.Describe()}); re-download or re-copy the file");
    }

    private static IdxHeader ReadHeader(Stream data, string source, bool isGzip)
    {
        Span<byte> magic = stackalloc byte[4];
        int got;
        try
        {
            got = ReadFully(data, magic);
        }
        catch (InvalidDataException e) when (isGzip)
        {
            throw new InvalidDataException($"corrupt gzip in {source}: {e.Message}", e);
        }

        if (got < 4)
        {
            throw new InvalidDataException(
                got == 0 && !isGzip ? $"{source} is empty" : $"{(isGzip ? "truncated gzip" : "truncated IDX file")}: {source} ends inside the IDX header");
        }

        var value = BinaryPrimitives.ReadUInt32BigEndian(magic);
        var rank = magic[3];
        if (magic[0] != 0 || magic[1] != 0 || !Enum.IsDefined((IdxDataType)magic[2]) || rank is < 1 or > MaxRank)
        {
            throw new InvalidDataException(
                $"bad IDX magic 0x{value:X8} in {source}: expected 0x00000801 (labels) or 0x00000803 (images), i.e. 0x0000TTRR with a known type TT and rank 1..{MaxRank}" +
                (isGzip ? string.Empty : "; if the file is compressed, it is not gzip"));
        }

        var dimBytes = new byte[4 * rank];
        try
        {
            got = ReadFully(data, dimBytes);
        }
        catch (InvalidDataException e) when (isGzip)
        {
            throw new InvalidDataException($"corrupt gzip in {source}: {e.Message}", e);
        }

        if (got < dimBytes.Length)
        {
            throw new InvalidDataException($"{(isGzip ? "truncated gzip" : "truncated IDX file")}: {source} ends inside the IDX header ({rank} dimensions declared)");
        }

        var dims = new int[rank];
        for (var i = 0; i < rank; i++)
        {
            var d = BinaryPrimitives.ReadUInt32BigEndian(dimBytes.AsSpan(4 * i));
            if (d > int.MaxValue || (d == 0 && i > 0))
            {
                throw new InvalidDataException($"{source}: IDX dimension {i} is {d}, which is not a usable size");
            }

            dims[i] = (int)d;
        }

        var header = new IdxHeader((IdxDataType)magic[2], dims);
        try
        {
            _ = checked(header.ItemBytes * 1L * header.Count);
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"{source}: IDX header {header.Describe()} is too large to be real");
        }

        return header;
    }

    private static int ReadFully(Stream stream, Span<byte> destination)
    {
        var total = 0;
        while (total < destination.Length)
        {
            var n = stream.Read(destination[total..]);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }
}

/// <summary>A run of consecutive items: item <see cref="FirstIndex"/> onwards, <see cref="Count"/> items in <see cref="Data"/>.</summary>
public readonly record struct IdxChunk(int FirstIndex, int Count, byte[] Data);
