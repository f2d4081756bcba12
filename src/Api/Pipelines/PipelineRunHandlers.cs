using Microsoft.AspNetCore.Http;
using MlFunctions.Core;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Api.Pipelines;

/// <summary>Read-only views of stored pipeline runs: the lineage summary and the run report.</summary>
public sealed class PipelineRunHandlers(IPipelineRunReader runs)
{
    /// <summary>GET api/pipelines/runs/{run}: every step execution, with cache hits and timings; 404 for an unknown run.</summary>
    public async Task HandleRun(HttpContext http)
    {
        var id = RunId(http);
        var summary = await runs.SummarizeAsync(id, http.RequestAborted);
        if (summary.Steps.Count == 0)
        {
            throw new BadRequestException($"no pipeline run '{id}' (no lineage recorded)", StatusCodes.Status404NotFound);
        }

        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, summary);
    }

    /// <summary>GET api/pipelines/runs/{run}/report: the Markdown report; 404 until the report step has run.</summary>
    public async Task HandleReport(HttpContext http)
    {
        var id = RunId(http);
        var markdown = await runs.ReadReportMarkdownAsync(id, http.RequestAborted)
            ?? throw new BadRequestException($"pipeline run '{id}' has no report (yet)", StatusCodes.Status404NotFound);
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = "text/markdown; charset=utf-8";
        await http.Response.WriteAsync(markdown, http.RequestAborted);
    }

    /// <summary>Run ids are instance ids: refuse what would leave the run's folder in the container.</summary>
    private static string RunId(HttpContext http)
    {
        var id = (string)http.Request.RouteValues["run"]!;
        return !SafeNames.IsId(id)
            ? throw new BadRequestException($"'{id}' is not a valid run id: use {SafeNames.IdRule}")
            : id;
    }
}
