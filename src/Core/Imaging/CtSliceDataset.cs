using System.Text.Json;
using System.Text.Json.Serialization;
using MlFunctions.Core.Json;

namespace MlFunctions.Core.Imaging;

/// <summary>Which scan of a pair an image is.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<CtDoseRole>))]
public enum CtDoseRole
{
    [JsonStringEnumMemberName("low")]
    Low,

    [JsonStringEnumMemberName("full")]
    Full,
}

/// <summary>One scan of a slice pair in the sidecar: its role, its dose relative to full dose, and its photons per ray if known.</summary>
public sealed record CtScanInfo
{
    public CtDoseRole Role { get; init; }

    /// <summary>Dose relative to the full-dose scan: 1 for full dose, e.g. 0.25 for quarter dose.</summary>
    public double DoseFraction { get; init; }

    /// <summary>Unattenuated photons per detector ray, where known (simulated scans); null for real scans.</summary>
    public double? I0 { get; init; }
}

/// <summary>
/// The JSON sidecar of one slice pair, <c>{subject}/{slice}.json</c> beside <c>{slice}_low.png</c> and
/// <c>{slice}_full.png</c>. A user with real scans (e.g. the Low Dose CT Grand Challenge's DICOM, converted outside) writes
/// the same: subject, slice, pixel spacing and the two scans' dose; the acquisition fields are optional.
/// </summary>
public sealed record CtSliceSidecar
{
    public string? Subject { get; init; }

    public string? Slice { get; init; }

    public double PixelSpacingMm { get; init; }

    /// <summary>stored = HU + offset in the PNGs; 1024 unless stated.</summary>
    public int HuOffset { get; init; } = Hounsfield.PngOffset;

    public IReadOnlyList<CtScanInfo> Scans { get; init; } = [];

    /// <summary>Views of the acquisition, where known.</summary>
    public int? Angles { get; init; }

    /// <summary>Reconstruction filter, where known (ramp, hann, or the scanner's kernel name).</summary>
    public string? Filter { get; init; }

    /// <summary>Where the slice comes from: "simulated …" or a scanner's description.</summary>
    public string? Source { get; init; }

    public CtScanInfo? Scan(CtDoseRole role) => Scans.FirstOrDefault(s => s.Role == role);
}

/// <summary>A validated slice pair: the low-dose input and the full-dose target, same size, in HU.</summary>
public sealed record CtSlicePair(string Subject, string Slice, HuImage Low, HuImage Full, CtSliceSidecar Sidecar)
{
    public string Key => $"{Subject}/{Slice}";
}

/// <summary>A file of an upload: its path relative to the dataset root ('/'-separated) and its bytes.</summary>
public sealed record CtFile(string Path, byte[] Bytes);

/// <summary>The outcome of reading a CT slice dataset: the valid pairs and every problem found, each naming its file.</summary>
public sealed record CtDatasetRead(IReadOnlyList<CtSlicePair> Pairs, IReadOnlyList<string> Problems)
{
    public bool IsValid => Problems.Count == 0 && Pairs.Count > 0;

    public IReadOnlyList<string> Subjects => Pairs.Select(p => p.Subject).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
}

/// <summary>
/// The on-disk (or in-blob) form of CT slice pairs: <c>{subject}/{slice}_low.png</c>, <c>{slice}_full.png</c> (16-bit
/// grayscale, HU + 1024) and <c>{slice}.json</c>. The simulator writes exactly this, so a real converted dataset goes
/// through the same reader and the same validation.
/// </summary>
public static class CtSliceDataset
{
    public const string LowSuffix = "_low.png";

    public const string FullSuffix = "_full.png";

    public const string SidecarSuffix = ".json";

    /// <summary>Values above this are not tissue or bone in HU (metal reaches ~3000 HU on 12-bit scanners).</summary>
    public const double MaxPlausibleHu = 4000;

    /// <summary>A slice whose brightest pixel is below this holds no tissue: likely HU stored without the offset.</summary>
    public const double MinTissueHu = -500;

    /// <summary>A slice whose values span less than this is flat (a blank or saturated export).</summary>
    public const double MinRangeHu = 50;

    private static readonly JsonSerializerOptions SidecarJson = new(MlJson.Options) { WriteIndented = true };

    /// <summary>The three files of a pair, paths relative to the dataset root.</summary>
    public static IEnumerable<CtFile> Files(CtSlicePair pair)
    {
        var stem = $"{pair.Subject}/{pair.Slice}";
        var sidecar = pair.Sidecar with { Subject = pair.Subject, Slice = pair.Slice };
        yield return new CtFile(stem + LowSuffix, CtPng.Encode(pair.Low, sidecar.HuOffset));
        yield return new CtFile(stem + FullSuffix, CtPng.Encode(pair.Full, sidecar.HuOffset));
        yield return new CtFile(stem + SidecarSuffix, JsonSerializer.SerializeToUtf8Bytes(sidecar, SidecarJson));
    }

    public static void WriteFolder(string root, IEnumerable<CtSlicePair> pairs)
    {
        foreach (var file in pairs.SelectMany(Files))
        {
            var path = Path.Combine(root, file.Path.Replace('/', Path.DirectorySeparatorChar));
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, file.Bytes);
        }
    }

    /// <summary>Every file under <paramref name="root"/>, as the reader takes them.</summary>
    public static CtDatasetRead ReadFolder(string root) =>
        Read(Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Select(f => new CtFile(Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/'), File.ReadAllBytes(f))));

    /// <summary>
    /// Reads and validates a dataset. Problems are collected, not thrown, and all are listed: a missing sidecar, a pair
    /// with one image, unreadable JSON or sidecar fields, a corrupt or non-PNG file, a wrong bit depth or colour type,
    /// sizes that differ within a pair, and HU values no CT slice has. Files outside the naming scheme that are not PNG
    /// or JSON (a _SUCCESS marker, a README) are ignored.
    /// </summary>
    public static CtDatasetRead Read(IEnumerable<CtFile> files)
    {
        var problems = new List<string>();
        var groups = new SortedDictionary<string, Dictionary<string, CtFile>>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            var path = file.Path.Replace('\\', '/').TrimStart('/');
            var slash = path.LastIndexOf('/');
            var name = path[(slash + 1)..];
            string? kind = name.EndsWith(LowSuffix, StringComparison.Ordinal) ? "low"
                : name.EndsWith(FullSuffix, StringComparison.Ordinal) ? "full"
                : name.EndsWith(SidecarSuffix, StringComparison.Ordinal) ? "json"
                : null;
            if (kind is null)
            {
                if (name.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                {
                    problems.Add($"{path}: a PNG not named {{slice}}{LowSuffix} or {{slice}}{FullSuffix}");
                }

                continue;
            }

            if (slash < 0)
            {
                problems.Add($"{path}: not in a subject folder (expected {{subject}}/{name})");
                continue;
            }

            var stem = path[..^(kind == "low" ? LowSuffix.Length : kind == "full" ? FullSuffix.Length : SidecarSuffix.Length)];
            if (!groups.TryGetValue(stem, out var group))
            {
                groups[stem] = group = [];
            }

            group[kind] = file with { Path = path };
        }

        var pairs = new List<CtSlicePair>();
        foreach (var (stem, group) in groups)
        {
            var slash = stem.LastIndexOf('/');
            var (subject, slice) = (stem[..slash], stem[(slash + 1)..]);
            var before = problems.Count;
            group.TryGetValue("low", out var lowFile);
            group.TryGetValue("full", out var fullFile);
            group.TryGetValue("json", out var jsonFile);
            if (jsonFile is null)
            {
                problems.Add($"{stem}: no sidecar {slice}{SidecarSuffix} (pixel spacing and dose are needed)");
            }

            if (lowFile is null)
            {
                problems.Add($"{stem}: pair incomplete, no low-dose image {slice}{LowSuffix}");
            }

            if (fullFile is null)
            {
                problems.Add($"{stem}: pair incomplete, no full-dose image {slice}{FullSuffix}");
            }

            var sidecar = jsonFile is null ? null : ReadSidecar(jsonFile, subject, slice, problems);
            var offset = sidecar?.HuOffset ?? Hounsfield.PngOffset;
            var low = lowFile is null ? null : ReadImage(lowFile, offset, problems);
            var full = fullFile is null ? null : ReadImage(fullFile, offset, problems);
            if (low is not null && full is not null && !low.SameSize(full))
            {
                problems.Add($"{stem}: sizes differ within the pair: low dose {low.Width}×{low.Height}, full dose {full.Width}×{full.Height}");
            }

            if (problems.Count == before && low is not null && full is not null && sidecar is not null)
            {
                pairs.Add(new CtSlicePair(subject, slice, low, full, sidecar with { Subject = subject, Slice = slice }));
            }
        }

        if (groups.Count == 0)
        {
            problems.Add($"no CT slices found: expected {{subject}}/{{slice}}{LowSuffix}, {{slice}}{FullSuffix} and {{slice}}{SidecarSuffix}");
        }

        return new CtDatasetRead(pairs, problems);
    }

    private static CtSliceSidecar? ReadSidecar(CtFile file, string subject, string slice, List<string> problems)
    {
        CtSliceSidecar? sidecar;
        try
        {
            sidecar = JsonSerializer.Deserialize<CtSliceSidecar>(file.Bytes, MlJson.Options);
        }
        catch (JsonException e)
        {
            problems.Add($"{file.Path}: not a valid sidecar ({e.Message.Split(" Path:")[0].TrimEnd('.')})");
            return null;
        }

        if (sidecar is null)
        {
            problems.Add($"{file.Path}: the sidecar is null");
            return null;
        }

        var before = problems.Count;
        void Problem(string text) => problems.Add($"{file.Path}: {text}");
        if (!(sidecar.PixelSpacingMm is > 0 and <= 10))
        {
            Problem(sidecar.PixelSpacingMm == 0 ? "pixelSpacingMm is missing" : $"pixelSpacingMm {sidecar.PixelSpacingMm} is outside (0, 10] mm");
        }

        if (sidecar.HuOffset is < 0 or > 32768)
        {
            Problem($"huOffset {sidecar.HuOffset} is outside 0..32768 (the convention is 1024)");
        }

        if (sidecar.Subject is not null && sidecar.Subject != subject)
        {
            Problem($"says subject '{sidecar.Subject}' but lies in the folder of subject '{subject}'");
        }

        if (sidecar.Slice is not null && sidecar.Slice != slice)
        {
            Problem($"says slice '{sidecar.Slice}' but is named for slice '{slice}'");
        }

        var low = sidecar.Scan(CtDoseRole.Low);
        var full = sidecar.Scan(CtDoseRole.Full);
        if (low is null || full is null || sidecar.Scans.Count != 2)
        {
            Problem("scans must list exactly one {\"role\": \"low\"} and one {\"role\": \"full\"} entry");
        }
        else
        {
            if (!(full.DoseFraction is > 0 and <= 1))
            {
                Problem($"the full-dose scan's doseFraction {full.DoseFraction} is outside (0, 1] (1 is full dose)");
            }

            if (!(low.DoseFraction > 0 && low.DoseFraction < full.DoseFraction))
            {
                Problem($"the low-dose scan's doseFraction {low.DoseFraction} must be above 0 and below the full dose's {full.DoseFraction}");
            }
        }

        return problems.Count == before ? sidecar : null;
    }

    private static HuImage? ReadImage(CtFile file, int offset, List<string> problems)
    {
        if (!CtPng.TryDecode(file.Bytes, out var image, out var problem, offset))
        {
            problems.Add($"{file.Path}: {problem}");
            return null;
        }

        var (min, max) = (float.PositiveInfinity, float.NegativeInfinity);
        foreach (var v in image!.Pixels)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }

        var before = problems.Count;
        if (max > MaxPlausibleHu)
        {
            problems.Add($"{file.Path}: HU range implausible: values up to {max:0} HU, above {MaxPlausibleHu:0} (is it stored as HU + {offset}?)");
        }
        else if (max < MinTissueHu)
        {
            problems.Add($"{file.Path}: HU range implausible: no tissue, the brightest pixel is {max:0} HU (were HU stored without the +{offset} offset?)");
        }
        else if (max - min < MinRangeHu)
        {
            problems.Add($"{file.Path}: HU range implausible: flat image, values span only {min:0}..{max:0} HU");
        }

        if (image.Width < 16 || image.Height < 16)
        {
            problems.Add($"{file.Path}: {image.Width}×{image.Height} is smaller than 16×16");
        }

        return problems.Count == before ? image : null;
    }
}
