using System.Globalization;
using Microsoft.Extensions.Logging;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Activities.Datasets;

/// <summary>
/// Reads a registered dataset end to end (streaming), profiles each labeled part, applies the rules and
/// stores the report as <c>datasets/{name}/{version}/validation.json</c>, pass or fail. A failure throws
/// <see cref="DatasetValidationException"/>, whose message lists what to fix. Re-running rewrites the
/// same report, so the activity is idempotent.
/// </summary>
public sealed class ValidateDatasetActivity(IStorageClients storage, ILogger<ValidateDatasetActivity> logger)
    : IActivity<ValidateDatasetInput, ValidationReport>
{
    private const int BatchSize = 4096;

    public async Task<ValidationReport> RunAsync(ValidateDatasetInput input, ActivityCall call)
    {
        var ct = call.Cancellation;
        var rules = input.Rules ?? new DatasetValidationRules();
        var service = await storage.BlobsAsync(ct);
        var dataset = await RegisteredDataset.LoadAsync(service, input.Dataset, ct);

        // The readers block on network reads; keep that off the caller's context.
        var report = await Task.Run(() => Profile(dataset, rules, input.Dataset, ct), ct);

        var blob = dataset.Container.GetBlobClient(DatasetLayout.ValidationBlob(input.Dataset));
        await DatasetBlobs.WriteJsonAsync(blob, report, ct);
        if (!report.Passed)
        {
            logger.LogWarning("Dataset {Name}/{Version} failed validation: {Violations}", input.Dataset.Name, input.Dataset.Version, string.Join("; ", report.Violations));
            throw new DatasetValidationException(report);
        }

        return report;
    }

    /// <summary>
    /// Builds the report. Structural problems (bad magic, truncated gzip, count mismatches) are reported
    /// as a failed "readable" check instead of an exception, so they end up in the stored report too.
    /// </summary>
    internal static ValidationReport Profile(RegisteredDataset dataset, DatasetValidationRules rules, DatasetRef reference, CancellationToken ct)
    {
        var profiles = new List<DataProfile>();
        var structural = new List<ValidationCheck>();
        var manifest = dataset.Manifest;
        if (manifest.Format == "idx")
        {
            IReadOnlyDictionary<string, (string Images, string Labels)> pairs;
            try
            {
                pairs = DatasetLayout.IdxPairs(dataset.FileNames);
            }
            catch (InvalidDataException e)
            {
                structural.Add(new("dataset", "readable", false, e.Message));
                pairs = new Dictionary<string, (string, string)>();
            }

            foreach (var prefix in pairs.Keys)
            {
                try
                {
                    using var reader = dataset.OpenIdx(prefix);
                    var builder = new DataProfileBuilder(prefix, reader.SampleShape);
                    while (reader.ReadBatch(BatchSize) is { } batch)
                    {
                        ct.ThrowIfCancellationRequested();
                        if (reader.DataType == IdxDataType.UInt8)
                        {
                            builder.AddBytes(batch.Features, batch.Labels);
                        }
                        else
                        {
                            builder.AddFloats(IdxValues.ToFloats(batch.Features, reader.DataType), batch.Labels);
                        }
                    }

                    reader.EnsureAtEnd();
                    profiles.Add(builder.Build());
                    structural.Add(new(prefix, "readable", true, $"{reader.Count:N0} samples read"));
                }
                catch (InvalidDataException e)
                {
                    structural.Add(new(prefix, "readable", false, e.Message));
                }
            }
        }
        else if (rules.Ct is null && ImageDatasetFiles.Reads(dataset, rules.Images))
        {
            return ProfileImages(dataset, rules, reference, ct);
        }
        else if (rules.Ct is { } ctRules)
        {
            return ProfileCt(dataset, rules, ctRules, reference, ct);
        }
        else if (rules.Interactions is { } interactions)
        {
            return ProfileInteractions(dataset, rules, interactions, reference);
        }
        else if (rules.Table is { } tableColumns)
        {
            return ProfileTable(dataset, rules, tableColumns, reference);
        }
        else
        {
            var sources = dataset.CsvSources();
            var csv = new CsvOptions { HasHeader = rules.CsvHasHeader };
            try
            {
                var columns = CsvTableReader.ReadHeader(sources[0], csv);
                var builder = new DataProfileBuilder("table", [columns.Count - (rules.CsvLabelColumn is null ? 0 : 1)]);
                if (rules.CsvLabelColumn is { } label)
                {
                    var features = Enumerable.Range(0, columns.Count).Where(c => c != label).ToArray();
                    foreach (var batch in CsvTableReader.ReadNumeric(sources, features, label, BatchSize, csv))
                    {
                        ct.ThrowIfCancellationRequested();
                        builder.AddFloats(batch.Features, batch.Labels);
                    }
                }
                else
                {
                    // No label: count rows and let the reader check headers and column counts of every file.
                    var rows = 0;
                    foreach (var _ in CsvTableReader.ReadRecords(sources, csv))
                    {
                        if (++rows % BatchSize == 0)
                        {
                            ct.ThrowIfCancellationRequested();
                        }
                    }

                    builder.AddFloats([], new int[rows]);
                }

                profiles.Add(builder.Build());
                structural.Add(new("table", "readable", true, $"{sources.Count} file(s) read"));
            }
            catch (InvalidDataException e)
            {
                structural.Add(new("table", "readable", false, e.Message));
            }
        }

        return DatasetValidator.Validate(profiles, rules, reference, structural);
    }

    /// <summary>
    /// PNG folders and pixel CSVs: every file read and decoded; each problem (corrupt PNG, mixed sizes, a class with too few
    /// images, a non-numeric or out-of-range pixel, a wrong pixel count) is its own failed check naming the file or line, and the
    /// profile reports the schema, per-class counts, balance and per-channel pixel statistics.
    /// </summary>
    private static ValidationReport ProfileImages(RegisteredDataset dataset, DatasetValidationRules rules, DatasetRef reference, CancellationToken ct)
    {
        var images = rules.Images ?? new ImagesRecipe();
        var read = ImageDatasetFiles.Read(dataset, images, ct);
        var (parts, checks) = read.Profile(dataset.Manifest.Format);
        if (parts.Count == 0)
            return new ValidationReport { Dataset = reference, Passed = false, Checks = checks, Parts = [], Rules = rules };
        var report = DatasetValidator.Validate(parts, rules with { MaxValue = images.MaxValue, MaxClassImbalance = rules.MaxClassImbalance ?? images.MaxClassImbalance }, reference, checks);
        return report with { Passed = report.Passed && read.IsValid };
    }

    /// <summary>
    /// CT slice pairs (#14): every file read and decoded; each problem (missing sidecar, incomplete pair, corrupt PNG,
    /// wrong bit depth, implausible HU, mixed sizes, too few subjects) is its own failed check naming the file.
    /// </summary>
    private static ValidationReport ProfileCt(RegisteredDataset dataset, DatasetValidationRules rules, Core.Imaging.CtValidationRules ctRules, DatasetRef reference, CancellationToken ct)
    {
        var read = CtDatasetFiles.Read(dataset, ct);
        var problems = Core.Imaging.CtPreparation.Problems(read, ctRules);
        var checks = problems.Select(p => new ValidationCheck("ct", "slices", false, p)).ToList();
        if (read.Pairs.Count > 0)
        {
            var first = read.Pairs[0];
            checks.Insert(0, new ValidationCheck("ct", "readable", true, string.Create(CultureInfo.InvariantCulture,
                $"{read.Pairs.Count} valid pairs of {read.Subjects.Count} subjects, {first.Low.Width}×{first.Low.Height}, {first.Sidecar.PixelSpacingMm} mm pixels, low dose {first.Sidecar.Scan(Core.Imaging.CtDoseRole.Low)?.DoseFraction}")));
        }

        return new ValidationReport { Dataset = reference, Passed = problems.Count == 0 && read.Pairs.Count > 0, Checks = checks, Parts = [], Rules = rules };
    }

    /// <summary>
    /// Interaction rows: read and clean every file (a broken row or a missing column is a failed "readable" check
    /// naming the file and line), report the dropped rows by reason, and require users, items and pairs to split.
    /// </summary>
    private static ValidationReport ProfileInteractions(RegisteredDataset dataset, DatasetValidationRules rules, InteractionsRecipe recipe, DatasetRef reference)
    {
        var checks = new List<ValidationCheck>();
        InteractionsProfile profile;
        try
        {
            var (rows, read, dropped) = InteractionData.Read(dataset.CsvSources(), recipe.Columns);
            profile = InteractionsProfile.Of(read, dropped, rows, InteractionData.Aggregate(rows));
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException)
        {
            checks.Add(new("interactions", "readable", false, e.Message));
            return new ValidationReport { Dataset = reference, Passed = false, Checks = checks, Parts = [], Rules = rules };
        }

        checks.Add(new("interactions", "readable", true, $"{profile.RowsRead:N0} rows read, {profile.RowsKept:N0} kept"));
        checks.AddRange(profile.Dropped.Select(d => new ValidationCheck("interactions", "dropped", true, $"{d.Value:N0} rows dropped: {d.Key}")));
        var enough = profile.Users >= 2 && profile.Items >= 2 && profile.Pairs > profile.Users;
        checks.Add(new("interactions", "size", enough,
            $"{profile.Users:N0} users, {profile.Items:N0} items, {profile.Pairs:N0} pairs (density {profile.Density:P3}){(enough ? "" : ": at least 2 users, 2 items and more pairs than users are needed to hold one out per user")}"));
        return new ValidationReport { Dataset = reference, Passed = checks.All(c => c.Passed), Checks = checks, Parts = [], Rules = rules, Interactions = profile };
    }

    /// <summary>
    /// A table with named columns: read it whole (ragged rows and mismatched headers are "readable" failures),
    /// check the schema (every problem is its own failed check) and profile each column and the label.
    /// </summary>
    private static ValidationReport ProfileTable(RegisteredDataset dataset, DatasetValidationRules rules, TabularColumns columns, DatasetRef reference)
    {
        var checks = new List<ValidationCheck>();
        TabularTable table;
        try
        {
            (table, var notes) = DatasetTables.Read(dataset, columns);
            checks.AddRange(notes.Select(n => new ValidationCheck(dataset.Manifest.Format, "reader", true, n)));
        }
        catch (InvalidDataException e)
        {
            checks.Add(new("table", "readable", false, e.Message));
            return new ValidationReport { Dataset = reference, Passed = false, Checks = checks, Parts = [], Rules = rules };
        }

        checks.Add(new("table", "readable", true, $"{table.Rows.Count:N0} rows of {table.Header.Count} columns"));
        var (features, label, problems) = table.Schema(columns);
        checks.AddRange(problems.Select(p => new ValidationCheck("table", "schema", false, p)));
        var enough = table.Rows.Count >= rules.MinRows;
        checks.Add(new("table", "rows", enough, enough ? $"{table.Rows.Count:N0} rows" : $"{table.Rows.Count:N0} rows, at least {rules.MinRows:N0} needed to split train/val/test"));
        if (problems.Count > 0)
        {
            return new ValidationReport { Dataset = reference, Passed = false, Checks = checks, Parts = [], Rules = rules };
        }

        var profile = TabularPreparation.Profile(table, features, label, columns.IsRegression);
        checks.AddRange(profile.Inference.Select(line => new ValidationCheck("table", "column", true, line)));
        var classes = TabularTransform.ClassesOf(profile.ClassCounts.Keys);

        // A regression target has no classes: one stratum of every row, so the class checks see a single group.
        var counts = columns.IsRegression
            ? new Dictionary<int, long> { [0] = table.Rows.Count }
            : classes.Select((c, i) => (i, n: profile.ClassCounts[c])).ToDictionary(x => x.i, x => x.n);
        var part = new DataProfile("table", [features.Count], table.Rows.Count, counts, null, null, 0, 0, 0);
        return DatasetValidator.Validate([part], rules with { AllowNonFinite = true }, reference, checks) with { Table = profile };
    }
}
