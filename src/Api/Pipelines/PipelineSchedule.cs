using Cronos;

namespace MlFunctions.Api.Pipelines;

/// <summary>
/// A retraining schedule: a CRON expression read the way Functions' TimerTrigger reads it (NCRONTAB with
/// a seconds field; five fields mean no seconds), evaluated in UTC, which is the timer's default zone.
/// </summary>
public sealed class PipelineSchedule
{
    // How far back LatestAtOrBefore looks: a late timer fire is minutes late, not days.
    private static readonly TimeSpan LookBack = TimeSpan.FromDays(2);

    private readonly CronExpression cron;

    private PipelineSchedule(string text, CronExpression cron)
    {
        Text = text;
        this.cron = cron;
    }

    public string Text { get; }

    /// <summary>Parses <paramref name="text"/>; a bad expression is an <see cref="ArgumentException"/> saying the expected form.</summary>
    public static PipelineSchedule Parse(string text)
    {
        var trimmed = text.Trim();
        var fields = trimmed.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        var format = fields switch
        {
            6 => CronFormat.IncludeSeconds,
            5 => CronFormat.Standard,
            _ => throw new ArgumentException(
                $"schedule '{text}' has {fields} fields; expected the NCRONTAB form '{{second}} {{minute}} {{hour}} {{day}} {{month}} {{day-of-week}}' (e.g. '0 0 3 * * 0') or 5 fields without seconds"),
        };

        try
        {
            return new PipelineSchedule(trimmed, CronExpression.Parse(trimmed, format));
        }
        catch (CronFormatException e)
        {
            throw new ArgumentException($"schedule '{text}' is not a valid CRON expression: {e.Message}", e);
        }
    }

    /// <summary>The first occurrence strictly after <paramref name="utc"/>, or null when there is none (e.g. 30 February).</summary>
    public DateTime? NextAfter(DateTime utc) => cron.GetNextOccurrence(AsUtc(utc));

    /// <summary>The next <paramref name="count"/> occurrences after <paramref name="utc"/>.</summary>
    public IReadOnlyList<DateTime> NextOccurrences(DateTime utc, int count)
    {
        var list = new List<DateTime>(count);
        var from = AsUtc(utc);
        while (list.Count < count && cron.GetNextOccurrence(from) is { } next)
        {
            list.Add(next);
            from = next;
        }

        return list;
    }

    /// <summary>
    /// The occurrence a fire at <paramref name="utc"/> belongs to: the latest one at or before it. A timer
    /// fire that runs late (or twice, on two instances) still names the same occurrence, which is what
    /// makes the scheduled run's instance id idempotent. Null when none lies within the last two days.
    /// </summary>
    public DateTime? LatestAtOrBefore(DateTime utc)
    {
        var to = AsUtc(utc);
        DateTime? latest = null;
        foreach (var occurrence in cron.GetOccurrences(to - LookBack, to, fromInclusive: true, toInclusive: true))
        {
            latest = occurrence;
        }

        return latest;
    }

    public override string ToString() => Text;

    /// <summary>Unspecified kinds are taken as UTC (what Functions and Cronos pass around), local ones converted.</summary>
    internal static DateTime AsUtc(DateTime time) => time.Kind switch
    {
        DateTimeKind.Utc => time,
        DateTimeKind.Local => time.ToUniversalTime(),
        _ => DateTime.SpecifyKind(time, DateTimeKind.Utc),
    };
}
