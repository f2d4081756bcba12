using Azure.Storage.Blobs.Models;
using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Activities.Models;

/// <summary>
/// Writes the run report next to the run's lineage (<c>pipeline-runs/{runId}/report.json</c> and <c>report.md</c>).
/// Both are overwritten whole, so a retry leaves the same two blobs.
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
        var json = container.GetBlobClient(PipelineLayout.ReportJsonBlob(input.RunId));
        var markdown = container.GetBlobClient(PipelineLayout.ReportMarkdownBlob(input.RunId));
        await DatasetBlobs.WriteJsonAsync(json, input.Report, ct);
        await markdown.UploadAsync(
            BinaryData.FromString(RunReportMarkdown.Render(input.Report)),
            new BlobUploadOptions { HttpHeaders = new BlobHttpHeaders { ContentType = "text/markdown; charset=utf-8" } },
            ct);
        return new RunReportLocation(json.Uri.ToString(), markdown.Uri.ToString());
    }
}
