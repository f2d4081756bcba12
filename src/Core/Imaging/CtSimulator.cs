namespace MlFunctions.Core.Imaging;

/// <summary>The split a subject belongs to. Whole subjects go to one split: slices of one body never straddle two.</summary>
public enum CtSplit
{
    Train,
    Validation,
    Test,
}

/// <summary>
/// What to simulate: <see cref="Subjects"/> random bodies (each its own seed, so its own anatomy), each scanned at
/// <see cref="SlicesPerSubject"/> heights, with <see cref="Protocol"/>. The quick run is the default: 12 subjects × 4
/// slices of 128².
/// </summary>
public sealed record CtSimulationSpec
{
    public CtProtocol Protocol { get; init; } = new();

    public int Subjects { get; init; } = 12;

    public int SlicesPerSubject { get; init; } = 4;

    public int Seed { get; init; } = 2026;

    /// <summary>Subject id prefix: subjects are "{prefix}-000", "{prefix}-001", ….</summary>
    public string SubjectPrefix { get; init; } = "sim";

    public IReadOnlyList<string> Problems()
    {
        var problems = Protocol.Problems().ToList();
        if (Subjects is < 1 or > 10_000)
        {
            problems.Add($"{Subjects} subjects is outside 1..10000");
        }

        if (SlicesPerSubject is < 1 or > 1000)
        {
            problems.Add($"{SlicesPerSubject} slices per subject is outside 1..1000");
        }

        return problems;
    }
}

/// <summary>A simulated slice pair, as written to disk, with the phantom and the noiseless reconstruction (diagnostics only).</summary>
public sealed record CtSimulatedPair(CtSlicePair Pair, HuImage Phantom, HuImage Noiseless, int ClampedRays);

/// <summary>
/// The low-dose CT simulator: random subjects → slices → (low-dose FBP, full-dose FBP) pairs with the sidecar a real
/// converted scan would carry. Deterministic for a spec: every subject's anatomy and every scan's noise come from seeds
/// derived from <see cref="CtSimulationSpec.Seed"/>.
/// </summary>
public static class CtSimulator
{
    /// <summary>The subjects of a spec with their phantom seeds: all distinct, so no two subjects share anatomy.</summary>
    public static IReadOnlyList<SubjectPhantom> Subjects(CtSimulationSpec spec) =>
        Enumerable.Range(0, spec.Subjects)
            .Select(i => Phantoms.RandomSubject($"{spec.SubjectPrefix}-{i:D3}", CtAcquisition.Mix(spec.Seed, 1000 + i)))
            .ToList();

    /// <summary>Heights of a subject's slices in the unit field of view: evenly over [−0.3, 0.3] (about 77 mm at 256 mm FOV).</summary>
    public static double SliceHeight(int slice, int slices) => slices == 1 ? 0.0 : -0.3 + (0.6 * slice / (slices - 1));

    /// <summary>
    /// Every slice pair of the spec, subject by subject. Slices are simulated in parallel up to
    /// <paramref name="parallelism"/> (the result does not depend on it); <paramref name="noiseless"/> = false skips the
    /// diagnostic noiseless reconstruction, which nothing written to disk needs.
    /// </summary>
    public static IReadOnlyList<CtSimulatedPair> Simulate(CtSimulationSpec spec, int parallelism = 1, bool noiseless = true)
    {
        var problems = spec.Problems();
        if (problems.Count > 0)
        {
            throw new ArgumentException("invalid CT simulation: " + string.Join("; ", problems), nameof(spec));
        }

        var scanner = new CtAcquisition(spec.Protocol);
        var subjects = Subjects(spec);
        var jobs = subjects.SelectMany(s => Enumerable.Range(0, spec.SlicesPerSubject).Select(k => (Subject: s, Slice: k))).ToArray();
        var results = new CtSimulatedPair[jobs.Length];
        Parallel.For(0, jobs.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism) }, j =>
        {
            var (subject, k) = jobs[j];
            results[j] = SimulateSlice(scanner, subject, k, spec.SlicesPerSubject, noiseless);
        });
        return results;
    }

    /// <summary>One slice of one subject through the scanner.</summary>
    public static CtSimulatedPair SimulateSlice(CtAcquisition scanner, SubjectPhantom subject, int slice, int slices, bool noiseless = true)
    {
        var protocol = scanner.Protocol;
        var phantom = subject.SliceAt(SliceHeight(slice, slices)).Rasterize(protocol.Size);
        var scan = scanner.Scan(phantom, CtAcquisition.Mix(subject.Seed, 100 + slice), noiseless);
        var sidecar = SidecarFor(protocol, subject.SubjectId, $"{slice:D3}");
        return new CtSimulatedPair(new CtSlicePair(subject.SubjectId, $"{slice:D3}", scan.LowDose, scan.FullDose, sidecar), phantom, scan.Noiseless, scan.ClampedRays);
    }

    /// <summary>The sidecar of a simulated slice: what a converted real scan states, plus the simulation's acquisition.</summary>
    public static CtSliceSidecar SidecarFor(CtProtocol protocol, string subject, string slice) => new()
    {
        Subject = subject,
        Slice = slice,
        PixelSpacingMm = protocol.PixelSpacingMm,
        HuOffset = Hounsfield.PngOffset,
        Angles = protocol.Angles,
        Filter = protocol.Filter.ToString().ToLowerInvariant(),
        Source = $"simulated: parallel beam, {protocol.Angles} views, Poisson counts, FBP ({protocol.Filter.ToString().ToLowerInvariant()})",
        Scans =
        [
            new CtScanInfo { Role = CtDoseRole.Low, DoseFraction = protocol.LowDoseFraction, I0 = protocol.FullDoseI0 * protocol.LowDoseFraction },
            new CtScanInfo { Role = CtDoseRole.Full, DoseFraction = 1.0, I0 = protocol.FullDoseI0 },
        ],
    };
}

/// <summary>The one rule that splits subjects: for simulated and uploaded datasets alike.</summary>
public static class CtSplits
{
    /// <summary>
    /// Subjects sorted by id, then shuffled by <paramref name="seed"/>; the first <paramref name="test"/> are test, the
    /// next <paramref name="validation"/> validation, the rest training. At least one training subject must remain.
    /// </summary>
    public static IReadOnlyDictionary<string, CtSplit> Assign(IEnumerable<string> subjects, int validation, int test, int seed)
    {
        var ordered = subjects.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        if (validation < 0 || test < 0 || validation + test >= ordered.Length)
        {
            throw new ArgumentException(
                $"{ordered.Length} subjects cannot give {validation} validation and {test} test subjects and still leave one to train on");
        }

        new Random(seed).Shuffle(ordered);
        var result = new Dictionary<string, CtSplit>(StringComparer.Ordinal);
        for (var i = 0; i < ordered.Length; i++)
        {
            result[ordered[i]] = i < test ? CtSplit.Test : i < test + validation ? CtSplit.Validation : CtSplit.Train;
        }

        return result;
    }

    /// <summary>The pairs of each split, in their given order; a pair whose subject has no split is an error.</summary>
    public static (IReadOnlyList<CtSlicePair> Train, IReadOnlyList<CtSlicePair> Validation, IReadOnlyList<CtSlicePair> Test) Partition(
        IEnumerable<CtSlicePair> pairs, IReadOnlyDictionary<string, CtSplit> splits)
    {
        var lists = new[] { new List<CtSlicePair>(), new List<CtSlicePair>(), new List<CtSlicePair>() };
        foreach (var pair in pairs)
        {
            if (!splits.TryGetValue(pair.Subject, out var split))
            {
                throw new ArgumentException($"subject '{pair.Subject}' of {pair.Key} has no split", nameof(splits));
            }

            lists[(int)split].Add(pair);
        }

        return (lists[0], lists[1], lists[2]);
    }

    /// <summary>The split by fractions of subjects (rounded, at least one each when there are three or more subjects).</summary>
    public static IReadOnlyDictionary<string, CtSplit> AssignByFraction(IEnumerable<string> subjects, double validationFraction, double testFraction, int seed)
    {
        var list = subjects.Distinct(StringComparer.Ordinal).ToList();
        var minimum = list.Count >= 3 ? 1 : 0;
        var test = Math.Max(minimum, (int)Math.Round(list.Count * testFraction));
        var validation = Math.Max(minimum, (int)Math.Round(list.Count * validationFraction));
        return Assign(list, validation, test, seed);
    }
}
