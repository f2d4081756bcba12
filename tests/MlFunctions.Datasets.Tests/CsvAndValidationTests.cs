using MlFunctions.Core.Datasets;

namespace MlFunctions.Datasets.Tests;

public sealed class CsvTableReaderTests
{
    private static readonly string Retail = Path.Combine(TestData.Root, "recommender", "online-retail-by-day");

    [Fact]
    public void Retail_files_read_as_one_table_with_the_published_row_count()
    {
        var files = Directory.GetFiles(Retail, "*.csv").Order(StringComparer.Ordinal).Select(CsvSource.FromFile).ToList();
        Assert.Equal(20, files.Count);
        Assert.Equal(["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"], CsvTableReader.ReadHeader(files[0]));

        var rows = 0;
        var cancellations = 0;
        foreach (var r in CsvTableReader.ReadRecords(files, columns: ["InvoiceNo", "CustomerID"]))
        {
            rows++;
            if (r.Values[0].StartsWith('C'))
            {
                cancellations++;
            }
        }

        Assert.Equal(42481, rows);
        Assert.Equal(728, cancellations);
    }

    [Fact]
    public void Quoted_descriptions_with_commas_stay_one_column()
    {
        var first = CsvSource.FromFile(Path.Combine(Retail, "2010-12-01.csv"));
        Assert.All(CsvTableReader.ReadRecords([first]).Take(500), r => Assert.Equal(8, r.Values.Length));
    }

    [Fact]
    public void Headerless_gzip_digits_parse_as_numeric_batches()
    {
        var digits = CsvSource.FromFile(Path.Combine(TestData.Root, "digits", "digits.csv.gz"));
        var batches = CsvTableReader.ReadNumeric([digits], [.. Enumerable.Range(0, 64)], 64, 500, new CsvOptions { HasHeader = false }).ToList();
        Assert.Equal(1797, batches.Sum(b => b.Count));
        Assert.Equal([500, 500, 500, 297], batches.Select(b => b.Count));
        Assert.All(batches, b => Assert.All(b.Labels, l => Assert.InRange(l, 0, 9)));
        Assert.All(batches, b => Assert.All(b.Features, f => Assert.InRange(f, 0, 16)));
    }

    [Fact]
    public void Files_with_different_headers_are_refused()
    {
        var dir = TestData.TempDir();
        File.WriteAllText(Path.Combine(dir, "a.csv"), "x,y\n1,2\n");
        File.WriteAllText(Path.Combine(dir, "b.csv"), "y,x\n3,4\n");
        var sources = new[] { "a.csv", "b.csv" }.Select(n => CsvSource.FromFile(Path.Combine(dir, n)));
        var e = Assert.Throws<InvalidDataException>(() => CsvTableReader.ReadRecords(sources).ToList());
        Assert.Contains("b.csv has header [y,x] but a.csv has [x,y]", e.Message);
    }

    [Fact]
    public void Non_numeric_cells_name_file_line_and_column_and_empty_cells_are_nan()
    {
        var dir = TestData.TempDir();
        File.WriteAllText(Path.Combine(dir, "t.csv"), "f,label\n1.5,0\n,1\nabc,1\n");
        var source = CsvSource.FromFile(Path.Combine(dir, "t.csv"));
        var e = Assert.Throws<InvalidDataException>(() => CsvTableReader.ReadNumeric([source], [0], 1, 2).ToList());
        Assert.Contains("t.csv line 4 column 0: 'abc' is not a number", e.Message);

        var ok = CsvTableReader.ReadNumeric([source], [0], 1, 2).First();
        Assert.Equal(1.5f, ok.Features[0]);
        Assert.True(float.IsNaN(ok.Features[1]));
    }
}

public sealed class DatasetValidatorTests
{
    private static DataProfile Profile(Dictionary<int, long> labels, double min = 0, double max = 255, long nonFinite = 0, int[]? shape = null) =>
        new("train", shape ?? [28, 28], labels.Values.Sum(), labels, min, max, nonFinite, 30, 70);

    private static Dictionary<int, long> Balanced(int classes = 10, long each = 100) =>
        Enumerable.Range(0, classes).ToDictionary(c => c, _ => each);

    [Fact]
    public void A_balanced_mnist_profile_passes()
    {
        var report = DatasetValidator.Validate([Profile(Balanced())], DatasetValidationRules.Mnist);
        Assert.True(report.Passed, string.Join("; ", report.Violations));
        Assert.Empty(report.Violations);
    }

    [Fact]
    public void Labels_out_of_range_fail_with_the_values()
    {
        var labels = Balanced();
        labels[10] = 3;
        var report = DatasetValidator.Validate([Profile(labels)], DatasetValidationRules.Mnist);
        Assert.False(report.Passed);
        Assert.Contains(report.Violations, v => v.Contains("3 labels outside [0, 9] (values 10)"));
    }

    [Fact]
    public void A_missing_class_and_skew_fail()
    {
        var labels = Balanced();
        labels.Remove(7);
        labels[3] = 1000;
        var report = DatasetValidator.Validate([Profile(labels)], DatasetValidationRules.Mnist);
        Assert.Contains(report.Violations, v => v.Contains("class(es) 7 never occur"));
        Assert.Contains(report.Violations, v => v.Contains("ratio 10.00, limit 3.00"));
    }

    [Fact]
    public void Nan_and_out_of_range_values_fail()
    {
        var report = DatasetValidator.Validate([Profile(Balanced(), min: -1, max: 300, nonFinite: 5)], DatasetValidationRules.Mnist);
        Assert.Contains(report.Violations, v => v.Contains("5 NaN/infinite/missing values"));
        Assert.Contains(report.Violations, v => v.Contains("min value -1 is below the allowed 0"));
        Assert.Contains(report.Violations, v => v.Contains("max value 300 is above the allowed 255"));
    }

    [Fact]
    public void Wrong_shape_and_too_few_samples_fail()
    {
        var rules = DatasetValidationRules.Mnist with { MinSamples = 5000 };
        var report = DatasetValidator.Validate([Profile(Balanced(), shape: [8, 8])], rules);
        Assert.Contains(report.Violations, v => v.Contains("samples are [8, 8], expected [28, 28]"));
        Assert.Contains(report.Violations, v => v.Contains("1,000 samples, at least 5,000 required"));
    }

    [Fact]
    public void Profile_builder_counts_values_labels_and_nans()
    {
        var b = new DataProfileBuilder("p", [2]);
        b.AddBytes([0, 255, 10, 20], [1, 2]);
        var p = b.Build();
        Assert.Equal(2, p.Count);
        Assert.Equal(0, p.Min);
        Assert.Equal(255, p.Max);
        Assert.Equal(71.25, p.Mean, 6);

        var f = new DataProfileBuilder("f", [2]);
        f.AddFloats([1f, float.NaN, 3f, float.PositiveInfinity], [0, 0]);
        Assert.Equal(2, f.Build().NonFiniteValues);
    }

    [Fact]
    public void Structural_failures_fail_the_report()
    {
        var report = DatasetValidator.Validate([], new DatasetValidationRules(), structural: [new("train", "readable", false, "truncated gzip: x.gz ends after 5 of 10 items")]);
        Assert.False(report.Passed);
        Assert.Contains("train: truncated gzip: x.gz ends after 5 of 10 items", report.Violations);
        var e = new DatasetValidationException(report);
        Assert.Contains("truncated gzip", e.Message);
    }
}
