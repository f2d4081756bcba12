using System.Globalization;
using System.Text;
using MlFunctions.Core.Sweeps;

namespace MlFunctions.Core.Pipelines;

/// <summary>
/// The run report as Markdown: what the <c>WriteRunReport</c> activity stores next to the run's lineage and what
/// the CLI prints. Pure (the report in, text out), so both render the same bytes.
/// </summary>
public static class RunReportMarkdown
{
    public static string Render(PipelineReport report)
    {
        var md = new StringBuilder();
        md.Append("# ").Append(Cell(report.Pipeline)).Append(" run ").Append(Cell(report.RunId)).Append("\n\n");
        md.Append("**Outcome:** ").Append(Cell(report.Outcome)).Append(" — ").Append(Cell(report.Reason)).Append("\n\n");

        md.Append("| | |\n|---|---|\n");
        Row(md, "Trigger", report.Trigger);
        Row(md, "Started", Time(report.StartedAt));
        Row(md, "Ended", Time(report.EndedAt));
        Row(md, "Duration", Duration(report.EndedAt - report.StartedAt));
        if (report.DatasetVersion is not null)
            Row(md, "Dataset version", report.DatasetVersion);
        if (report.ModelVersion is { } v)
            Row(md, "Model version", Int(v));
        md.Append('\n');

        if (report.Metrics.Count > 0)
        {
            md.Append("## Metrics\n\n| Metric | Value |\n|---|---:|\n");
            foreach (var (name, value) in report.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal))
                Row(md, name, Number(value));
            md.Append('\n');
        }

        if (report.Images.Count > 0)
            RenderImages(md, report.Images);

        if (report.Smoke is { } smoke)
        {
            md.Append("## Smoke inference\n\n| Image | True label | Predicted | Confidence | Version | Provider |\n|---:|---:|---:|---:|---:|---|\n");
            Row(md, Int(smoke.ImageIndex), Int(smoke.TrueLabel), Int(smoke.Predicted), Number(smoke.Confidence), Int(smoke.ModelVersion), smoke.Provider);
            md.Append('\n');
        }

        if (report.Sweep is { } sweep)
            RenderSweep(md, sweep);

        if (report.Lineage.Count > 0)
        {
            md.Append("## Lineage\n\n| # | Step | Target | Cached | Attempts | Duration | Status | Error |\n|---:|---|---|---|---:|---:|---|---|\n");
            foreach (var s in report.Lineage.OrderBy(s => s.Sequence))
            {
                string cached = s.Cached ? (s.CachedFromRunId is { } from ? $"yes (run {from})" : "yes") : "no";
                Row(md, Int(s.Sequence), s.Step, s.Target, cached, Int(s.Attempts), Duration(s.EndedAt - s.StartedAt), s.Status.ToString(), s.Error ?? "");
            }
            md.Append('\n');

            var run = PipelineRunRecord.From(report.RunId, report.Lineage);
            md.Append("## Timings\n\n| | |\n|---|---|\n");
            Row(md, "Run", Duration(report.EndedAt - report.StartedAt));
            Row(md, "Steps executed", Int(run.Executed));
            Row(md, "Steps from cache", Int(run.Cached));
            Row(md, "Steps skipped", Int(run.Skipped));
            Row(md, "Steps failed", Int(run.Failed));
            var slowest = report.Lineage.MaxBy(s => s.EndedAt - s.StartedAt)!;
            Row(md, "Slowest step", $"{slowest.Step} ({Duration(slowest.EndedAt - slowest.StartedAt)})");
            md.Append('\n');
        }

        return md.ToString();
    }

    /// <summary>One row per caption (a test slice and its figures), one column per label (low dose, denoised, …), in order.</summary>
    private static void RenderImages(StringBuilder md, IReadOnlyList<RunReportImage> images)
    {
        var labels = images.Select(i => i.Label).Distinct(StringComparer.Ordinal).ToList();
        md.Append("## Test slices\n\n");
        Row(md, ["Slice", .. labels]);
        md.Append("|---|").Append(string.Concat(labels.Select(_ => "---|"))).Append('\n');
        foreach (var row in images.GroupBy(i => i.Caption, StringComparer.Ordinal))
        {
            var cells = labels.Select(label => row.FirstOrDefault(i => i.Label == label) is { } image
                ? $"![{image.Label}]({Link(image.Link ?? image.Uri)})"
                : "-");
            Row(md, [row.Key, .. cells]);
        }

        md.Append('\n');
    }

    /// <summary>A Markdown link target: spaces and parentheses would end it.</summary>
    private static string Link(string target) => target.Replace(" ", "%20").Replace("(", "%28").Replace(")", "%29");

    private static void RenderSweep(StringBuilder md, SweepResult sweep)
    {
        md.Append("## Sweep ").Append(Cell(sweep.SweepId)).Append("\n\n");
        md.Append(Cell(sweep.Outcome)).Append(": ").Append(Cell(sweep.Reason)).Append(". ")
          .Append(Int(sweep.Trials.Count)).Append(" trials in ").Append(Int(sweep.Generations)).Append(" generations");
        if (sweep.Best is { } best)
            md.Append("; best ").Append(Cell(best.TrialId)).Append(" (objective ").Append(best.Objective is { } o ? Number(o) : "-").Append(')');
        md.Append(".\n\n");
        if (sweep.Trials.Count == 0)
            return;

        md.Append("| Rank | Trial | State | Objective | Secondary | Budget | Parameters |\n|---:|---|---|---:|---:|---:|---|\n");
        int rank = 0;
        foreach (var t in SortByObjective(sweep))
            Row(md, Int(++rank), t.TrialId + (t.TrialId == sweep.Best?.TrialId ? " ★" : ""), t.State.ToString(),
                t.Objective is { } o ? Number(o) : "-", t.Secondary is { } s ? Number(s) : "-", t.Budget is { } b ? Int(b) : "-",
                t.Error is { } e ? $"{t.Parameters.Describe()} (error: {e})" : t.Parameters.Describe());
        md.Append('\n');
    }

    /// <summary>
    /// Best first. The result does not carry the objective's direction, but it names the best trial: if that is
    /// the largest objective the sweep maximized, otherwise it minimized. Trials without an objective go last.
    /// </summary>
    private static IEnumerable<TrialSummary> SortByObjective(SweepResult sweep)
    {
        var scored = sweep.Trials.Where(t => t.Objective is not null).ToList();
        bool maximize = sweep.Best?.Objective is not { } best || scored.Count == 0 || best >= scored.Max(t => t.Objective!.Value);
        return TrialRanking.BestFirst(sweep.Trials, t => t.Objective, maximize ? ObjectiveDirection.Maximize : ObjectiveDirection.Minimize)
            .ThenBy(t => t.TrialId, StringComparer.Ordinal);
    }

    private static void Row(StringBuilder md, params string[] cells) =>
        md.Append("| ").AppendJoin(" | ", cells.Select(Cell)).Append(" |\n");

    /// <summary>A table cell: a '|' would end the cell and a newline the row.</summary>
    private static string Cell(string text) => text.Replace("|", "\\|").Replace("\r", "").Replace('\n', ' ');

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Number(double value) => value.ToString("0.####", CultureInfo.InvariantCulture);

    private static string Time(DateTime t) => t.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Duration(TimeSpan d) =>
        d < TimeSpan.Zero ? "-"
        : d.TotalMinutes >= 1 ? $"{(int)d.TotalMinutes}m {d.Seconds:D2}s"
        : string.Create(CultureInfo.InvariantCulture, $"{d.TotalSeconds:0.0}s");
}
