namespace MlFunctions.Core.Pipelines;

/// <summary>
/// A picture in the run report (#14: before/after PNGs of CT test slices beside the metric table): a PNG blob, the row
/// it belongs to (<paramref name="Caption"/>: which slice, with its figures) and its column (<paramref name="Label"/>:
/// low dose, denoised, full dose, difference). The evaluate step writes them; the report step copies them beside
/// report.md and sets <see cref="Link"/>, the path the Markdown uses, relative to report.md.
/// </summary>
public sealed record RunReportImage(string Caption, string Label, string Uri)
{
    public string? Link { get; init; }
}
