using System.Globalization;
using MlFunctions.Core.Imaging;

namespace MlFunctions.Activities.Datasets;

/// <summary>
/// CT slice pairs as dataset files (#14): the simulator's output as the files a user with converted real scans would
/// register (<c>{subject}/{slice}_low.png</c>, <c>_full.png</c>, <c>.json</c>), and a registered CT dataset read back
/// through <see cref="CtSliceDataset.Read"/>, which lists every problem instead of throwing.
/// </summary>
internal static class CtDatasetFiles
{
    /// <summary>The simulation's files, deterministic for the spec, so the same spec registers the same version.</summary>
    public static IReadOnlyList<CtFile> Simulate(CtSimulationSpec spec) =>
        CtSimulator.Simulate(spec, Environment.ProcessorCount, noiseless: false).SelectMany(s => CtSliceDataset.Files(s.Pair)).ToList();

    public static string Describe(CtSimulationSpec s) => string.Create(CultureInfo.InvariantCulture,
        $"simulated:ct {s.Subjects} subjects × {s.SlicesPerSubject} slices, {s.Protocol.Size}², {s.Protocol.Angles} views, I0 {s.Protocol.FullDoseI0:G3}, low dose {s.Protocol.LowDoseFraction:G3}, seed {s.Seed}");

    /// <summary>Every file of the registered version (a CT dataset is read whole: 128² pairs are ~50 KB).</summary>
    public static CtDatasetRead Read(RegisteredDataset dataset, CancellationToken ct)
    {
        var files = new List<CtFile>();
        foreach (var name in dataset.FileNames)
        {
            ct.ThrowIfCancellationRequested();
            using var stream = dataset.Open(name);
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            files.Add(new CtFile(name, buffer.ToArray()));
        }

        return CtSliceDataset.Read(files);
    }
}
