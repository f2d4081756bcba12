using MlFunctions.Core.Datasets;

namespace MlFunctions.Activities.Datasets;

/// <summary>
/// A registered PNG-folder or pixel-CSV dataset read whole into <see cref="LabeledImages"/> (validation profiles it, the
/// transform splits it): the same reader for both steps, so what validation passed is what is trained on.
/// </summary>
internal static class ImageDatasetFiles
{
    /// <summary>Whether the images reader takes this dataset: a PNG folder, or a CSV under an images recipe.</summary>
    public static bool Reads(RegisteredDataset dataset, ImagesRecipe? recipe) =>
        dataset.Manifest.Format == "png" || (recipe is not null && dataset.Manifest.Format == "csv");

    public static LabeledImages Read(RegisteredDataset dataset, ImagesRecipe recipe, CancellationToken ct) =>
        dataset.Manifest.Format == "png"
            ? PngFolderReader.Read(dataset.FileNames.ToList(), name => ReadAll(dataset, name), recipe, ct)
            : PixelCsvReader.Read(dataset.CsvSources(), recipe, ct);

    private static byte[] ReadAll(RegisteredDataset dataset, string name)
    {
        using var stream = dataset.Open(name);
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }
}
