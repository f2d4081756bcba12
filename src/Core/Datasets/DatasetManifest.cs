using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace MlFunctions.Core.Datasets;

/// <summary>A registered dataset version: <c>datasets/{Name}/{Version}/manifest.json</c>.</summary>
public sealed record DatasetRef(string Name, string Version, string ContentHash);

/// <summary>One file of a dataset version as uploaded: the blob is <c>{Name}/{Version}/{File.Name}</c>.</summary>
public sealed record DatasetFile(string Name, long Bytes, string Sha256);

/// <summary>
/// The manifest of one dataset version. Versioned JSON contract (blob layout crosses process boundaries):
/// add fields with defaults, bump <see cref="SchemaVersion"/> when meaning changes.
/// </summary>
public sealed record DatasetManifest
{
    public const int CurrentSchemaVersion = 1;

    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    public required string Name { get; init; }

    public required string Version { get; init; }

    /// <summary>sha256 over the sorted (name, bytes, sha256) of every file; see <see cref="DatasetLayout.ContentHash"/>.</summary>
    public required string ContentHash { get; init; }

    /// <summary>"idx", "csv", "mbox", "png" or "ct", from the file names (<see cref="DatasetLayout.DetectFormat"/>).</summary>
    public required string Format { get; init; }

    public required IReadOnlyList<DatasetFile> Files { get; init; }

    /// <summary>Where the first registration read the files from (informational; not part of the hash).</summary>
    public string? Source { get; init; }

    public DatasetRef Ref => new(Name, Version, ContentHash);
}

/// <summary>Blob names and content addressing of registered datasets.</summary>
public static partial class DatasetLayout
{
    public const string Container = "datasets";
    public const string ManifestFile = "manifest.json";
    public const string ValidationFile = "validation.json";

    /// <summary>Hex digits of the content hash used as the version: 48 bits, collision-safe for any realistic number of versions.</summary>
    public const int VersionLength = 12;

    public static string Folder(string name, string version) => $"{name}/{version}";

    public static string FileBlob(string name, string version, string file) => $"{Folder(name, version)}/{file}";

    public static string ManifestBlob(DatasetRef d) => $"{Folder(d.Name, d.Version)}/{ManifestFile}";

    public static string ValidationBlob(DatasetRef d) => $"{Folder(d.Name, d.Version)}/{ValidationFile}";

    /// <summary>
    /// The dataset's identity: sha256 over lines "name\tbytes\tsha256\n" sorted by name (ordinal). File
    /// names are included because readers find parts and roles by name; upload order and source do not count.
    /// </summary>
    public static string ContentHash(IEnumerable<DatasetFile> files)
    {
        var text = new StringBuilder();
        foreach (var f in files.OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            text.Append(f.Name).Append('\t').Append(f.Bytes.ToString(CultureInfo.InvariantCulture)).Append('\t').Append(f.Sha256).Append('\n');
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    public static string VersionOf(string contentHash) => contentHash[..VersionLength];

    /// <summary>
    /// sha256 (hex) and length of one file's content, read once in 1 MiB blocks: the per-file half of
    /// <see cref="ContentHash"/>, shared by registration and the pipeline triggers so both name the same content alike.
    /// </summary>
    public static async Task<(string Sha256, long Bytes)> HashFileAsync(Stream stream, CancellationToken ct)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        long total = 0;
        int n;
        while ((n = await stream.ReadAsync(buffer, ct)) > 0)
        {
            sha.AppendData(buffer, 0, n);
            total += n;
        }

        return (Convert.ToHexStringLower(sha.GetHashAndReset()), total);
    }

    /// <summary>
    /// Files whose names start with '_' or '.' are markers and metadata, never data (the Hadoop/Spark
    /// convention: <c>_SUCCESS</c>, <c>_committed_*</c>, <c>.crc</c>, also a stray <c>.DS_Store</c>), so an
    /// upload folder with its completion marker registers as the data files alone.
    /// </summary>
    public static bool IsHiddenFile(string name) => name.StartsWith('_') || name.StartsWith('.');

    /// <summary>"idx" when every file parses as an IDX name with idxN in it, "csv" for .csv[.gz] files, "mbox" for .mbox[.gz] archives,
    /// "png" for PNGs alone (image folders), "ct" for PNGs with JSON sidecars.</summary>
    public static string DetectFormat(IEnumerable<string> fileNames)
    {
        var names = fileNames.ToList();
        if (names.Count == 0)
        {
            throw new ArgumentException("a dataset needs at least one file");
        }

        if (names.All(n => IdxName().IsMatch(IdxPartSet.ParseName(n).BaseName)))
        {
            return "idx";
        }

        if (names.All(n => n.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) || n.EndsWith(".csv.gz", StringComparison.OrdinalIgnoreCase)))
        {
            return "csv";
        }

        if (names.All(n => n.EndsWith(".mbox", StringComparison.OrdinalIgnoreCase) || n.EndsWith(".mbox.gz", StringComparison.OrdinalIgnoreCase)))
        {
            return "mbox";
        }

        // PNGs alone are an image-classification folder ({split?}/{label}/*.png); PNGs with JSON sidecars are CT slice pairs.
        if (names.All(n => n.EndsWith(".png", StringComparison.OrdinalIgnoreCase)))
        {
            return "png";
        }

        if (names.All(n => n.EndsWith(".png", StringComparison.OrdinalIgnoreCase) || n.EndsWith(".json", StringComparison.OrdinalIgnoreCase)))
        {
            return "ct";
        }

        throw new ArgumentException(
            $"cannot tell the dataset format from [{string.Join(", ", names)}]: register either IDX files (*-idxN-ubyte[.partK-of-N][.gz]), CSV files (*.csv[.gz]), mbox archives (*.mbox[.gz]) or PNG folders ({{label}}/*.png), not a mix");
    }

    /// <summary>Dataset names become blob folders: lower-case letters, digits, '-', '_' and '.'.</summary>
    public static bool IsValidName(string? name) => SafeNames.IsFolderName(name);

    public static void ValidateName(string name)
    {
        if (!IsValidName(name))
        {
            throw new ArgumentException($"dataset name '{name}' must be {SafeNames.FolderNameRule}");
        }
    }

    /// <summary>
    /// Labeled IDX arrays among the files: prefix → (images base name, labels base name), by the MNIST
    /// convention <c>{prefix}-images-idxN-ubyte</c> / <c>{prefix}-labels-idx1-ubyte</c>.
    /// </summary>
    public static IReadOnlyDictionary<string, (string Images, string Labels)> IdxPairs(IEnumerable<string> fileNames)
    {
        var bases = fileNames.Select(n => IdxPartSet.ParseName(n).BaseName).Distinct().ToList();
        var pairs = new SortedDictionary<string, (string, string)>(StringComparer.Ordinal);
        foreach (var b in bases)
        {
            var m = ImagesName().Match(b);
            if (!m.Success)
            {
                continue;
            }

            var prefix = m.Groups["p"].Value;
            var labels = $"{prefix}-labels-idx1-ubyte";
            if (!bases.Contains(labels))
            {
                throw new InvalidDataException($"{b} has no labels: expected {labels}[.partK-of-N][.gz] next to it");
            }

            pairs[prefix] = (b, labels);
        }

        return pairs;
    }

    [GeneratedRegex(@"-idx\d-ubyte$")]
    private static partial Regex IdxName();

    [GeneratedRegex(@"^(?<p>.+)-images-idx\d-ubyte$")]
    private static partial Regex ImagesName();
}
