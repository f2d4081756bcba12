using System.Globalization;
using System.IO.Compression;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MlFunctions.Activities;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Pipelines;
using MlFunctions.Tests.Infrastructure;

namespace MlFunctions.Datasets.Tests;

/// <summary>Image datasets beyond IDX (#11 §1): PNG folders and CSVs of pixels, read, profiled, refused with reasons and prepared.</summary>
public sealed class ImageDatasetTests
{
    /// <summary>A grayscale image whose pixels encode (seed, position), so a test can tell images and pixel order apart.</summary>
    public static ImagePixels Gray(int width, int height, int seed) =>
        new(1, height, width, Enumerable.Range(0, width * height).Select(i => (byte)((seed * 37) + (i * 5))).ToArray());

    private static byte[] Png(int width, int height, int seed) => ImagePng.Encode(Gray(width, height, seed));

    private static LabeledImages ReadFolder(Dictionary<string, byte[]> files, ImagesRecipe? recipe = null) =>
        PngFolderReader.Read(files.Keys.ToList(), n => files[n], recipe ?? new ImagesRecipe());

    private static CsvSource Csv(string name, string text) => new(name, () => new MemoryStream(Encoding.UTF8.GetBytes(text)));

    [Fact]
    public void A_png_folder_reads_class_folders_as_labels_with_planar_pixels_in_file_order()
    {
        var files = new Dictionary<string, byte[]>();
        foreach (var (label, k) in new[] { ("dog", 0), ("cat", 1), ("bird", 2) })
        {
            for (var i = 0; i < 3; i++)
                files[$"{label}/{i}.png"] = Png(6, 5, (k * 10) + i);
        }

        var read = ReadFolder(files);
        Assert.True(read.IsValid, string.Join("; ", read.Problems));
        Assert.Equal(["bird", "cat", "dog"], read.Classes);
        Assert.Equal([1, 5, 6], read.SampleShape);
        Assert.Null(read.Test);
        Assert.Equal(9, read.Pool!.Count);

        // Files are read in name order: bird/0 is sample 0 (label 0), its bytes exactly the encoded image.
        Assert.Equal(0, read.Pool.Labels[0]);
        Assert.Equal(Gray(6, 5, 20).Planes, read.Pool.Features.AsSpan(0, 30).ToArray());
        Assert.Equal(2, read.Pool.Labels[8]);

        var transform = read.Transform(read.Pool, resize: false);
        Assert.Equal(1f / 255, transform.Scale);
        Assert.Equal(["bird", "cat", "dog"], transform.Image!.Classes);
        Assert.Equal((1, 5, 6, 255), (transform.Image.Channels, transform.Image.Height, transform.Image.Width, transform.Image.PixelMax));
        transform.Validate();

        var (parts, checks) = read.Profile("png");
        Assert.Equal(9, parts.Single().Count);
        Assert.Contains(checks, c => c.Check == "class counts" && c.Detail == "bird 3, cat 3, dog 3");
        Assert.Contains(checks, c => c.Check == "schema" && c.Detail.Contains("3 classes [bird, cat, dog], samples [1, 5, 6]", StringComparison.Ordinal));
        Assert.Contains(checks, c => c.Check == "pixel statistics" && c.Detail.StartsWith("gray mean ", StringComparison.Ordinal));
    }

    [Fact]
    public void Rgb_pngs_become_three_planes_and_numeric_folder_names_sort_as_numbers()
    {
        var files = new Dictionary<string, byte[]>();
        for (var label = 0; label < 11; label += 10)
        {
            for (var i = 0; i < 2; i++)
            {
                var plane = 4 * 4;
                var rgb = new byte[3 * plane];
                Array.Fill(rgb, (byte)(10 + label), 0, plane);
                Array.Fill(rgb, (byte)(100 + i), plane, plane);
                Array.Fill(rgb, (byte)200, 2 * plane, plane);
                files[$"train/{label}/{i}.png"] = ImagePng.Encode(new ImagePixels(3, 4, 4, rgb));
            }
        }

        files["test/10/t.png"] = files["train/10/0.png"];
        files["test/0/t.png"] = files["train/0/1.png"];
        var read = ReadFolder(files);
        Assert.True(read.IsValid, string.Join("; ", read.Problems));
        Assert.Equal(["0", "10"], read.Classes);
        Assert.Equal([3, 4, 4], read.SampleShape);
        Assert.Equal(4, read.Pool!.Count);
        Assert.Equal(2, read.Test!.Count);
        var sample = read.Pool.Features.AsSpan(0, 48).ToArray();
        Assert.All(sample[..16], b => Assert.Equal(10, b));
        Assert.All(sample[16..32], b => Assert.Equal(100, b));
        Assert.All(sample[32..], b => Assert.Equal(200, b));

        // A test/ folder is the test split; the pool is cut into train and val only.
        var (splits, classes) = read.Split(new PreparationRecipe { TrainFraction = 0.5, ValFraction = 0.25, TestFraction = 0.25 });
        Assert.Equal(2, classes);
        Assert.Equal(2, splits["test"].Count);
        Assert.Equal(4, splits["train"].Count + splits["val"].Count);

        // dataset.maxSamples keeps a stratified subsample of the pool: one image per class here, the test set whole.
        var (small, _) = read.Split(new PreparationRecipe { TrainFraction = 0.5, ValFraction = 0.25, TestFraction = 0.25, MaxSamples = 2 });
        Assert.Equal([0, 1], small["train"].Labels.Concat(small["val"].Labels).Order());
        Assert.Equal(2, small["test"].Count);

        var transform = read.Transform(splits["train"], resize: false);
        Assert.Equal(3, transform.Mean.Length);
        Assert.Equal(16, transform.PlaneSize);
    }

    [Fact]
    public void Every_problem_of_a_broken_folder_is_listed_naming_the_files()
    {
        var files = new Dictionary<string, byte[]>
        {
            ["a/1.png"] = Png(8, 8, 1),
            ["a/2.png"] = Png(8, 8, 2),
            ["a/3.png"] = Png(8, 8, 3),
            ["a/broken.png"] = [.. Png(8, 8, 4).AsSpan(0, 40)],
            ["a/text.png"] = "not an image"u8.ToArray(),
            ["b/1.png"] = Png(8, 8, 5),
            ["b/wide.png"] = Png(12, 8, 6),
            ["c/only.png"] = Png(8, 8, 7),
            ["loose.png"] = Png(8, 8, 8),
        };

        var read = ReadFolder(files);
        var problems = string.Join("\n", read.Problems);
        Console.WriteLine(problems);
        Assert.False(read.IsValid);
        Assert.Contains("a/broken.png is not a readable PNG", problems);
        Assert.Contains("a/text.png is not a PNG", problems);
        Assert.Contains("1 of 7 images are not 8×8 (the most common size): b/wide.png 12×8", problems);
        Assert.Contains("class 'b' has 1 image(s) (b/1.png)", problems);
        Assert.Contains("class 'c' has 1 image(s) (c/only.png)", problems);
        Assert.Contains("loose.png is not in a class folder", problems);

        // The same mixed sizes, resized by the spec: valid, every image 10×10.
        var resized = ReadFolder(new Dictionary<string, byte[]> { ["x/1.png"] = Png(8, 8, 1), ["x/2.png"] = Png(12, 6, 2), ["y/1.png"] = Png(10, 10, 3), ["y/2.png"] = Png(9, 9, 4) }, new ImagesRecipe { Width = 10, Height = 10, Resize = true });
        Assert.True(resized.IsValid, string.Join("; ", resized.Problems));
        Assert.Equal([1, 10, 10], resized.SampleShape);
        Assert.Contains(resized.Notes, n => n.Contains("resized to 10×10", StringComparison.Ordinal));

        var mixed = ReadFolder(new Dictionary<string, byte[]> { ["train/x/1.png"] = Png(4, 4, 1), ["y/1.png"] = Png(4, 4, 2) });
        Assert.Contains(mixed.Problems, p => p.Contains("mixes train/ and test/ with class folders", StringComparison.Ordinal));
        var unknownTest = ReadFolder(new Dictionary<string, byte[]> { ["train/x/1.png"] = Png(4, 4, 1), ["train/x/2.png"] = Png(4, 4, 2), ["train/y/1.png"] = Png(4, 4, 3), ["train/y/2.png"] = Png(4, 4, 4), ["test/z/1.png"] = Png(4, 4, 5) });
        Assert.Contains(unknownTest.Problems, p => p.Contains("test/z/ (1 images) is a class that train/ does not have", StringComparison.Ordinal));
    }

    [Fact]
    public void A_pixel_csv_infers_a_square_image_detects_a_header_and_checks_the_range()
    {
        // label,p0..p15 with a header: 4×4 inferred.
        var csv = new StringBuilder("label," + string.Join(",", Enumerable.Range(0, 16).Select(i => $"p{i}")) + "\n");
        for (var r = 0; r < 6; r++)
            csv.Append(r % 2 == 0 ? "even" : "odd").Append(',').AppendJoin(",", Enumerable.Range(0, 16).Select(i => (r * 16) + i)).Append('\n');
        var read = PixelCsvReader.Read([Csv("px.csv", csv.ToString())], new ImagesRecipe());
        Assert.True(read.IsValid, string.Join("; ", read.Problems));
        Assert.Equal(["even", "odd"], read.Classes);
        Assert.Equal([1, 4, 4], read.SampleShape);
        Assert.Equal(6, read.Pool!.Count);
        Assert.Equal(Enumerable.Range(16, 16).Select(i => (byte)i), read.Pool.Features.AsSpan(16, 16).ToArray());
        Assert.Contains(read.Notes, n => n.Contains("label column 0 ('label') of 17", StringComparison.Ordinal) && n.Contains("with header", StringComparison.Ordinal));

        // The digits layout: no header, 64 pixels 0..16 then the label; width and height given.
        var digits = string.Join("\n", Enumerable.Range(0, 6).Select(r => string.Join(",", Enumerable.Range(0, 64).Select(i => (i + r) % 17)) + $",{r % 3}"));
        var d = PixelCsvReader.Read([Csv("d.csv", digits)], new ImagesRecipe { LabelColumn = "last", MaxValue = 16, Width = 8, Height = 8 });
        Assert.True(d.IsValid, string.Join("; ", d.Problems));
        Assert.Equal(["0", "1", "2"], d.Classes);
        Assert.Equal(16, d.PixelMax);
        var transform = d.Transform(d.Pool!, resize: false);
        Assert.Equal(1f / 16, transform.Scale);
        Assert.Equal(16, transform.Image!.PixelMax);

        // The default range is 0..255: the same rows are fine; at maxValue 10 the 11..16 pixels are out of range.
        var narrow = PixelCsvReader.Read([Csv("d.csv", digits)], new ImagesRecipe { LabelColumn = "last", MaxValue = 10 });
        Assert.Contains(narrow.Problems, p => p.Contains("d.csv line 3 column 9: 11 is outside the pixel range: integers 0..10", StringComparison.Ordinal));
    }

    [Fact]
    public void A_broken_pixel_csv_lists_non_numeric_pixels_wrong_counts_and_small_classes()
    {
        var rows = new List<string>();
        for (var r = 0; r < 8; r++)
            rows.Add($"{r % 2}," + string.Join(",", Enumerable.Range(0, 9).Select(i => i * r)));
        rows[2] = "0,1,2,x3,4,5,6,7,8,9";
        rows[4] = "1,1,2,3";
        rows.Add("7,1,2,3,4,5,6,7,8,9");
        var read = PixelCsvReader.Read([Csv("bad.csv", string.Join("\n", rows))], new ImagesRecipe());
        var problems = string.Join("\n", read.Problems);
        Console.WriteLine(problems);
        Assert.False(read.IsValid);
        Assert.Contains("bad.csv line 3 column 3: 'x3' is not a number", problems);
        Assert.Contains("bad.csv line 5 has 3 pixel values, the first row has 9", problems);
        Assert.Contains("class '7' has 1 image(s) (bad.csv line 9)", problems);
        Assert.Equal([1, 3, 3], read.SampleShape);

        var notSquare = PixelCsvReader.Read([Csv("ns.csv", "a,1,2,3\nb,4,5,6\n")], new ImagesRecipe());
        Assert.Contains(notSquare.Problems, p => p.Contains("3 pixel columns (besides the label), which is not a square image", StringComparison.Ordinal));
        var wrongSize = PixelCsvReader.Read([Csv("ws.csv", "a,1,2,3,4\nb,4,5,6,7\n")], new ImagesRecipe { Width = 3, Height = 3 });
        Assert.Contains(wrongSize.Problems, p => p.Contains("ws.csv has 4 pixel columns but images.width × height × channels is 3×3×1 = 9", StringComparison.Ordinal));
    }

    [Fact]
    public void Png_folders_detect_as_png_and_the_spec_section_is_checked()
    {
        Assert.Equal("png", DatasetLayout.DetectFormat(["cat/1.png", "dog/2.png"]));
        Assert.Equal("ct", DatasetLayout.DetectFormat(["s/000_low.png", "s/000.json"]));

        var spec = new PipelineSpec
        {
            Name = "shapes",
            Dataset = new PipelineDataset { Kind = DatasetKinds.Images, SourceDirectories = ["/data"] },
            Images = new ImagesRecipe { Width = 8, Resize = true, Channels = 2, MaxValue = 300 },
        };
        var problems = spec.Problems();
        Assert.Contains("images.width and images.height go together: give both or neither", problems);
        Assert.Contains("images.resize needs images.width and images.height: the size to resize every image to", problems);
        Assert.Contains("images.channels must be 1 (grayscale) or 3 (RGB), got 2", problems);
        Assert.Contains(problems, p => p.StartsWith("images.maxValue must be between 1 and 255", StringComparison.Ordinal));
        Assert.Contains("the images section is for dataset.kind \"images\", not \"tabular\"", (spec with { Dataset = spec.Dataset with { Kind = DatasetKinds.Tabular } }).Problems());
        Assert.True(spec.RegisterInput().Recursive);
        Assert.Equal(8, spec.Recipe().Images!.Width);
    }

    private static readonly ActivityCall Call = new("test", "test-instance", CancellationToken.None);
    private static readonly IStorageClients Storage = new ConnectionStringStorageClients(_ => TestStorage.ConnectionStringAsync());

    private static Task<RegisterDatasetResult> RegisterAsync(string folder) =>
        new RegisterDatasetActivity(Storage, Options.Create(new DatasetOptions()), NullLogger<RegisterDatasetActivity>.Instance)
            .RunAsync(new RegisterDatasetInput { Name = $"img-{Guid.NewGuid():N}"[..16], SourceDirectories = [folder], Recursive = true }, Call);

    private static Task<ValidationReport> ValidateAsync(DatasetRef dataset, ImagesRecipe? images = null) =>
        new ValidateDatasetActivity(Storage, NullLogger<ValidateDatasetActivity>.Instance)
            .RunAsync(new ValidateDatasetInput(dataset, new DatasetValidationRules { MinValue = 0, MaxValue = 255, MaxClassImbalance = 10, Images = images ?? new() }), Call);

    private static string WriteFolder(Dictionary<string, byte[]> files)
    {
        var root = TestData.TempDir();
        foreach (var (name, bytes) in files)
        {
            var path = Path.Combine(root, name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, bytes);
        }

        return root;
    }

    [Fact]
    public async Task A_png_folder_registers_validates_and_prepares_the_idx_shard_format_with_class_names()
    {
        var files = new Dictionary<string, byte[]>();
        for (var i = 0; i < 10; i++)
        {
            files[$"circle/{i}.png"] = Png(7, 7, i);
            files[$"square/{i}.png"] = Png(7, 7, 50 + i);
        }

        var registered = await RegisterAsync(WriteFolder(files));
        Assert.Equal(20, registered.Files.Count);
        Assert.Contains(registered.Files, f => f.Name == "circle/0.png");

        var report = await ValidateAsync(registered.Dataset);
        Assert.True(report.Passed, string.Join("; ", report.Violations));
        Assert.Contains(report.Checks, c => c.Detail == "circle 10, square 10");

        var recipe = new PreparationRecipe { TrainFraction = 0.6, ValFraction = 0.2, TestFraction = 0.2, Images = new() };
        var prepared = await new TransformDatasetActivity(Storage, NullLogger<TransformDatasetActivity>.Instance).RunAsync(new TransformDatasetInput(registered.Dataset, recipe), Call);
        var reader = new PreparedDatasetReader(await Storage.BlobsAsync());
        var manifest = await reader.ReadManifestAsync(prepared.Data);
        Assert.Equal([1, 7, 7], manifest.SampleShape);
        Assert.Equal(2, manifest.NumClasses);
        Assert.Equal(["circle", "square"], manifest.Transform.Image!.Classes);
        Assert.Equal((6, 2, 2), (manifest.Split("train").ClassCounts[0], manifest.Split("val").ClassCounts[0], manifest.Split("test").ClassCounts[0]));
        var test = await reader.ReadSplitAsync(prepared.Data, manifest, "test");
        Assert.Null(test.FloatFeatures);
        Assert.Equal(4 * 49, test.Features.Length);
    }

    [Fact]
    public async Task A_broken_png_folder_fails_validation_with_every_reason_and_an_empty_folder_fails_registration()
    {
        var files = new Dictionary<string, byte[]>
        {
            ["ok/1.png"] = Png(5, 5, 1),
            ["ok/2.png"] = Png(5, 5, 2),
            ["ok/3.png"] = Png(5, 5, 3),
            ["ok/corrupt.png"] = [.. Png(5, 5, 4).AsSpan(0, 30)],
            ["ok/big.png"] = Png(9, 5, 5),
            ["lonely/1.png"] = Png(5, 5, 6),
        };
        var registered = await RegisterAsync(WriteFolder(files));
        var e = await Assert.ThrowsAsync<DatasetValidationException>(() => ValidateAsync(registered.Dataset));
        Console.WriteLine(e.Message);
        Assert.Contains("ok/corrupt.png is not a readable PNG", e.Message);
        Assert.Contains("ok/big.png 9×5", e.Message);
        Assert.Contains("class 'lonely' has 1 image(s)", e.Message);

        var withEmpty = WriteFolder(new Dictionary<string, byte[]> { ["a/1.png"] = Png(5, 5, 1), ["a/2.png"] = Png(5, 5, 2) });
        Directory.CreateDirectory(Path.Combine(withEmpty, "b"));
        var empty = await Assert.ThrowsAsync<InvalidDataException>(() => RegisterAsync(withEmpty));
        Assert.Contains("1 empty folder(s): b/", empty.Message);
    }

    [Fact]
    public async Task The_shared_digits_csv_validates_as_8x8_pixels_0_to_16()
    {
        var digits = Path.Combine(TestData.Root, "digits");
        Assert.True(File.Exists(Path.Combine(digits, "digits.csv.gz")), $"the shared digits set is missing under {digits}");
        var registered = await RegisterAsync(digits);
        var report = await ValidateAsync(registered.Dataset, new ImagesRecipe { LabelColumn = "last", MaxValue = 16 });
        Assert.True(report.Passed, string.Join("; ", report.Violations));
        Assert.Equal(1797, report.Parts.Single().Count);
        Assert.Equal([1, 8, 8], report.Parts.Single().SampleShape);
        Console.WriteLine(string.Join("\n", report.Checks.Select(c => $"{c.Check}: {c.Detail}")));

        // A gzip of the same rows with one pixel made a word: the step fails on that line.
        var rows = new StreamReader(new GZipStream(File.OpenRead(Path.Combine(digits, "digits.csv.gz")), CompressionMode.Decompress)).ReadToEnd().Split('\n');
        rows[9] = "x" + rows[9][1..];
        var broken = TestData.TempDir();
        File.WriteAllText(Path.Combine(broken, "digits.csv"), string.Join('\n', rows));
        var bad = await RegisterAsync(broken);
        var e = await Assert.ThrowsAsync<DatasetValidationException>(() => ValidateAsync(bad.Dataset, new ImagesRecipe { LabelColumn = "last", MaxValue = 16 }));
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"digits.csv line 10 column 0: 'x{rows[9][1..].Split(',')[0]}' is not a number"), e.Message);
    }
}
