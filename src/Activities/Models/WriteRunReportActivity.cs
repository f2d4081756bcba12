using Azure.Storage.Blobs.Models;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Activities.Models;

/// <summary>
/// Writes the run report next to the run's lineage (<c>pipeline-runs/{runId}/report.json</c> and <c>report.md</c>).
/// Both are overwritten whole, so a retry leaves the same two blobs. The report's images (a CT run's before/after
/// slices) are copied beside them first (<c>pipeline-runs/{runId}/images/{file}</c>), and both files point at the copies.
/// </summary>
public sealed class WriteRunReportActivity(IStorageClients storage) : IActivity<WriteRunReportInput, RunReportLocation>
{
    public async Task<RunReportLocation> RunAsync(WriteRunReportInput input, ActivityCall call)
    {
        var ct = call.Cancellation;
        if (string.IsNullOrWhiteSpace(input.RunId) || input.RunId.Contains('/'))
            throw new ArgumentException($"WriteRunReport needs a run id without '/', not '{input.RunId}'.");
        if (input.Report.RunId != input.RunId)
            throw new ArgumentException($"The report is of run '{input.Report.RunId}', not of run '{input.RunId}'.");

        var container = (await storage.BlobsAsync(ct)).GetBlobContainerClient(PipelineLayout.RunsContainer);
        await container.CreateIfNotExistsAsync(cancellationToken: ct);
        var report = input.Report;
        if (report.Images.Count > 0)
            report = report with { Images = await CopyImagesAsync(await storage.BlobsAsync(ct), container, input.RunId, report.Images, ct) };

        var json = container.GetBlobClient(PipelineLayout.ReportJsonBlob(input.RunId));
        var markdown = container.GetBlobClient(PipelineLayout.ReportMarkdownBlob(input.RunId));
        await DatasetBlobs.WriteJsonAsync(json, report, ct);
        await markdown.UploadAsync(
            BinaryData.FromString(RunReportMarkdown.Render(report)),
            new BlobUploadOptions { HttpHeaders = new BlobHttpHeaders { ContentType = "text/markdown; charset=utf-8" } },
            ct);
        return new RunReportLocation(json.Uri.ToString(), markdown.Uri.ToString());
    }

    /// <summary>
    /// Each image into <c>{runId}/images/</c> under its own file name (download and upload: PNGs of tens of KB, and no
    /// cross-container copy authorization to arrange), with <see cref="RunReportImage.Link"/> relative to report.md.
    /// </summary>
    private static async Task<IReadOnlyList<RunReportImage>> CopyImagesAsync(
        Azure.Storage.Blobs.BlobServiceClient blobs, Azure.Storage.Blobs.BlobContainerClient runs, string runId, IReadOnlyList<RunReportImage> images, CancellationToken ct)
    {
        var copies = new List<RunReportImage>(images.Count);
        foreach (var image in images)
        {
            var source = new Azure.Storage.Blobs.BlobUriBuilder(new Uri(image.Uri));
            var file = source.BlobName[(source.BlobName.LastIndexOf('/') + 1)..];
            if (file.Length == 0)
                throw new ArgumentException($"The report image '{image.Label}' of '{image.Caption}' has no file name in its URI '{image.Uri}'.");
            var content = await blobs.GetBlobContainerClient(source.BlobContainerName).GetBlobClient(source.BlobName).DownloadContentAsync(ct);
            var target = runs.GetBlobClient($"{runId}/images/{file}");
            await target.UploadAsync(
                content.Value.Content,
                new BlobUploadOptions { HttpHeaders = new BlobHttpHeaders { ContentType = content.Value.Details.ContentType ?? "image/png" } },
                ct);
            copies.Add(image with { Uri = target.Uri.ToString(), Link = $"images/{file}" });
        }

        return copies;
    }
}
