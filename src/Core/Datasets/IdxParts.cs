using System.Globalization;
using System.Text.RegularExpressions;

namespace MlFunctions.Core.Datasets;

/// <summary>One file of a (possibly multi-part) IDX array: how to open it and its place in the sequence.</summary>
public sealed record IdxPart(string Name, int Index, int Of, Func<Stream> Open);

/// <summary>
/// The ordered files that together form one IDX array, e.g. <c>train-images-idx3-ubyte.part0-of-6.gz</c>
/// … <c>part5-of-6.gz</c>, or a single <c>t10k-images-idx3-ubyte.gz</c>. Part numbers come from the
/// names, so a missing or duplicated part is an error instead of silently shifted data.
/// </summary>
public sealed partial class IdxPartSet
{
    private IdxPartSet(string baseName, IReadOnlyList<IdxPart> parts)
    {
        BaseName = baseName;
        Parts = parts;
    }

    /// <summary>The name without part suffix or .gz, e.g. <c>train-images-idx3-ubyte</c>.</summary>
    public string BaseName { get; }

    public IReadOnlyList<IdxPart> Parts { get; }

    public bool IsMultiPart => Parts.Count > 1 || Parts[0].Of > 1;

    /// <summary>Splits a file name into its base name and part numbers (<c>null</c> part for a single file).</summary>
    public static (string BaseName, int? Part, int? Of) ParseName(string fileName)
    {
        var m = PartName().Match(Path.GetFileName(fileName));
        return m.Groups["k"].Success
            ? (m.Groups["base"].Value, int.Parse(m.Groups["k"].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture))
            : (m.Groups["base"].Value, null, null);
    }

    /// <summary>
    /// The parts of <paramref name="baseName"/> in <paramref name="directory"/>. Prefers the part files when
    /// both parts and a whole file exist; throws when neither does.
    /// </summary>
    public static IdxPartSet FromDirectory(string directory, string baseName)
    {
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"dataset folder {directory} does not exist");
        }

        var names = Directory.EnumerateFiles(directory).Select(Path.GetFileName).OfType<string>().ToList();
        return FromNames(names, baseName, name => OpenFile(Path.Combine(directory, name)));
    }

    /// <summary>Builds the set from explicit file paths (all must share one base name).</summary>
    public static IdxPartSet FromFiles(IEnumerable<string> paths)
    {
        var list = paths.ToList();
        if (list.Count == 0)
        {
            throw new ArgumentException("no IDX files given");
        }

        var byName = list.ToDictionary(p => Path.GetFileName(p), p => p, StringComparer.Ordinal);
        var baseName = ParseName(list[0]).BaseName;
        return FromNames(byName.Keys, baseName, name => OpenFile(byName[name]), requireAll: true);
    }

    /// <summary>
    /// Picks the files of <paramref name="baseName"/> among <paramref name="names"/> (a folder listing or
    /// a blob manifest), opened through <paramref name="open"/>.
    /// </summary>
    public static IdxPartSet FromNames(IEnumerable<string> names, string baseName, Func<string, Stream> open, bool requireAll = false)
    {
        var parsed = names.Select(n => (Name: n, Parsed: ParseName(n))).ToList();
        var mine = parsed.Where(p => p.Parsed.BaseName == baseName).ToList();
        if (requireAll && mine.Count != parsed.Count)
        {
            var other = parsed.First(p => p.Parsed.BaseName != baseName);
            throw new ArgumentException($"{other.Name} does not belong to {baseName}; pass the parts of one IDX array");
        }

        var parts = mine.Where(p => p.Parsed.Part is not null).ToList();
        if (parts.Count > 0)
        {
            var of = parts[0].Parsed.Of!.Value;
            if (parts.Any(p => p.Parsed.Of != of))
            {
                throw new InvalidDataException($"{baseName}: parts disagree on the part count ({string.Join(", ", parts.Select(p => p.Name))})");
            }

            var byIndex = parts.GroupBy(p => p.Parsed.Part!.Value).ToDictionary(g => g.Key, g => g.ToList());
            var dup = byIndex.FirstOrDefault(kv => kv.Value.Count > 1);
            if (dup.Value is not null)
            {
                throw new InvalidDataException($"{baseName}: part {dup.Key} appears twice ({string.Join(", ", dup.Value.Select(p => p.Name))}); keep either the raw or the .gz copy");
            }

            var missing = Enumerable.Range(0, of).Where(k => !byIndex.ContainsKey(k)).ToList();
            if (missing.Count > 0 || byIndex.Keys.Any(k => k >= of))
            {
                throw new InvalidDataException(
                    $"{baseName}: expected parts 0..{of - 1} of {of}, missing part(s) {string.Join(", ", missing)}; a multi-part array must be complete");
            }

            return new IdxPartSet(baseName, byIndex.OrderBy(kv => kv.Key)
                .Select(kv => new IdxPart(kv.Value[0].Name, kv.Key, of, () => open(kv.Value[0].Name))).ToList());
        }

        var whole = mine.Where(p => p.Parsed.Part is null).ToList();
        if (whole.Count == 0)
        {
            throw new FileNotFoundException($"no IDX file named {baseName}[.partK-of-N][.gz] among: {string.Join(", ", parsed.Select(p => p.Name).Take(20))}");
        }

        if (whole.Count > 1)
        {
            throw new InvalidDataException($"{baseName} exists as {string.Join(" and ", whole.Select(p => p.Name))}; keep one");
        }

        var single = whole[0].Name;
        return new IdxPartSet(baseName, [new IdxPart(single, 0, 1, () => open(single))]);
    }

    /// <summary>Opens every part's header (cheap) and checks they describe one array: same type and item shape.</summary>
    public IReadOnlyList<IdxHeader> ReadHeaders()
    {
        var headers = new List<IdxHeader>(Parts.Count);
        foreach (var part in Parts)
        {
            using var reader = IdxReader.Open(part.Open(), part.Name);
            headers.Add(reader.Header);
        }

        for (var i = 1; i < headers.Count; i++)
        {
            if (headers[i].DataType != headers[0].DataType || !headers[i].ItemShape.SequenceEqual(headers[0].ItemShape))
            {
                throw new InvalidDataException(
                    $"{BaseName}: part {Parts[i].Index} is {headers[i].Describe()} but part {Parts[0].Index} is {headers[0].Describe()}; parts of one array need the same type and item shape");
            }
        }

        return headers;
    }

    /// <summary>Reads the parts in order as one stream of items.</summary>
    public IdxSequenceReader OpenReader() => new(this);

    private static FileStream OpenFile(string path) => new(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);

    [GeneratedRegex(@"^(?<base>.+?)(\.part(?<k>\d+)-of-(?<n>\d+))?(\.gz)?$")]
    private static partial Regex PartName();
}

/// <summary>
/// Reads a <see cref="IdxPartSet"/> part after part as one array; at most one part is open at a time.
/// </summary>
public sealed class IdxSequenceReader : IDisposable
{
    private readonly IdxPartSet set;
    private IdxReader? current;
    private int partIndex = -1;

    internal IdxSequenceReader(IdxPartSet set)
    {
        this.set = set;
        PartHeaders = set.ReadHeaders();
        Count = PartHeaders.Sum(h => h.Count);
        ItemShape = PartHeaders[0].ItemShape;
        DataType = PartHeaders[0].DataType;
        ItemBytes = PartHeaders[0].ItemBytes;
    }

    public IReadOnlyList<IdxHeader> PartHeaders { get; }

    public int Count { get; }

    public int[] ItemShape { get; }

    public IdxDataType DataType { get; }

    public int ItemBytes { get; }

    public int Position { get; private set; }

    public int Remaining => Count - Position;

    /// <summary>Which part (index into <see cref="IdxPartSet.Parts"/>) the next item comes from.</summary>
    public int CurrentPart => partIndex;

    /// <summary>Fills <paramref name="destination"/> with whole items across part boundaries; returns the items read.</summary>
    public int ReadItems(Span<byte> destination)
    {
        var done = 0;
        var want = Math.Min(destination.Length / ItemBytes, Remaining);
        while (done < want)
        {
            var reader = EnsurePart();
            var n = reader.ReadItems(destination.Slice(done * ItemBytes, (want - done) * ItemBytes));
            done += n;
            Position += n;
        }

        return done;
    }

    /// <summary>Integer labels across parts; see <see cref="IdxReader.ReadLabels"/>.</summary>
    public int ReadLabels(Span<int> destination)
    {
        var done = 0;
        var want = Math.Min(destination.Length, Remaining);
        while (done < want)
        {
            var reader = EnsurePart();
            var n = reader.ReadLabels(destination[done..want]);
            done += n;
            Position += n;
        }

        return done;
    }

    public IEnumerable<IdxChunk> ReadChunks(int itemsPerChunk)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(itemsPerChunk, 1);
        while (Remaining > 0)
        {
            var first = Position;
            var data = new byte[Math.Min(itemsPerChunk, Remaining) * ItemBytes];
            var n = ReadItems(data);
            yield return new IdxChunk(first, n, data);
        }
    }

    public void Skip(int items)
    {
        while (items > 0)
        {
            var reader = EnsurePart();
            var n = Math.Min(items, reader.Remaining);
            reader.Skip(n);
            Position += n;
            items -= n;
        }
    }

    /// <summary>After the last item: checks the open part has no bytes beyond its header's count.</summary>
    public void EnsureAtEnd()
    {
        if (Remaining > 0)
        {
            throw new InvalidOperationException($"{set.BaseName}: {Remaining:N0} items not read yet");
        }

        current?.EnsureAtEnd();
    }

    public void Dispose() => current?.Dispose();

    private IdxReader EnsurePart()
    {
        while (current is null || current.Remaining == 0)
        {
            if (current is not null)
            {
                // A part that holds more than its header says would shift every later item: refuse it.
                current.EnsureAtEnd();
                current.Dispose();
                current = null;
            }

            partIndex++;
            if (partIndex >= set.Parts.Count)
            {
                throw new InvalidOperationException($"{set.BaseName}: read past the last part");
            }

            var part = set.Parts[partIndex];
            current = IdxReader.Open(part.Open(), part.Name);
            if (current.Header.Count != PartHeaders[partIndex].Count)
            {
                throw new InvalidDataException($"{part.Name} changed while it was being read");
            }
        }

        return current;
    }
}
