using System.Globalization;
using Cronos;

namespace MlFunctions.Api.Pipelines;

/// <summary>
/// A pipeline schedule's CRON in a time zone (Cronos evaluates it, DST included: a time skipped by a
/// spring-forward fires at the jump, an hour repeated by a fall-back fires once). Five fields are
/// <c>minute hour day month day-of-week</c>; six put seconds first, as Functions' NCRONTAB does.
/// <see cref="Problems"/> lists every problem of an expression and zone at once, field by field.
/// </summary>
public sealed class CronSchedule
{
    private static readonly string[] FiveFields = ["minute", "hour", "day-of-month", "month", "day-of-week"];
    private static readonly string[] SixFields = ["second", .. FiveFields];
    private static readonly Dictionary<string, (int Min, int Max)> Ranges = new()
    {
        ["second"] = (0, 59),
        ["minute"] = (0, 59),
        ["hour"] = (0, 23),
        ["day-of-month"] = (1, 31),
        ["month"] = (1, 12),
        ["day-of-week"] = (0, 7),
    };

    private static readonly string[] Months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    private static readonly string[] Days = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

    private readonly CronExpression cron;

    private CronSchedule(string text, CronExpression cron, TimeZoneInfo zone)
    {
        Text = text;
        this.cron = cron;
        Zone = zone;
    }

    public string Text { get; }

    public TimeZoneInfo Zone { get; }

    /// <summary>Every problem of <paramref name="cron"/> and <paramref name="timeZone"/>; empty when both are good.</summary>
    public static IReadOnlyList<string> Problems(string? cron, string? timeZone)
    {
        var problems = new List<string>();
        if (timeZone is not null && !TryZone(timeZone, out _))
            problems.Add($"timeZone '{timeZone}' is not a known time zone (use an IANA id such as 'Europe/Paris' or 'UTC')");
        if (string.IsNullOrWhiteSpace(cron))
        {
            problems.Add("cron is required: 5 fields 'minute hour day-of-month month day-of-week' (e.g. '0 3 * * 1-5') or 6 with seconds first");
            return problems;
        }

        var fields = cron.Trim().Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length == 1 && fields[0].StartsWith('@'))
        {
            // Cronos' macros: @yearly, @monthly, @weekly, @daily, @hourly, @every_minute, @every_second.
            if (!TryParse(fields[0], CronFormat.Standard, out _, out var error))
                problems.Add($"cron '{cron}': {error}");
            return problems;
        }

        if (fields.Length is not (5 or 6))
        {
            problems.Add($"cron '{cron}' has {fields.Length} field(s); expected 5 ('minute hour day-of-month month day-of-week') or 6 (seconds first)");
            return problems;
        }

        var names = fields.Length == 6 ? SixFields : FiveFields;
        var before = problems.Count;
        for (var i = 0; i < fields.Length; i++)
            problems.AddRange(FieldProblems(names[i], fields[i]));

        if (problems.Count == before && !TryParse(string.Join(' ', fields), fields.Length == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard, out _, out var message))
            problems.Add($"cron '{cron}': {message}");
        return problems;
    }

    /// <summary>Parses a good expression; a bad one is an <see cref="ArgumentException"/> carrying every problem.</summary>
    public static CronSchedule Parse(string cron, string? timeZone = null)
    {
        var problems = Problems(cron, timeZone);
        if (problems.Count > 0)
            throw new ArgumentException(string.Join("; ", problems));
        var fields = cron.Trim().Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        TryParse(string.Join(' ', fields), fields.Length == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard, out var expression, out _);
        TryZone(timeZone ?? "UTC", out var zone);
        return new CronSchedule(cron.Trim(), expression!, zone!);
    }

    /// <summary>The first occurrence strictly after <paramref name="after"/>, or null (e.g. 30 February).</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset after) => cron.GetNextOccurrence(after, Zone, inclusive: false)?.ToUniversalTime();

    /// <summary>The next <paramref name="count"/> occurrences after <paramref name="after"/>.</summary>
    public IReadOnlyList<DateTimeOffset> NextOccurrences(DateTimeOffset after, int count)
    {
        var list = new List<DateTimeOffset>(count);
        while (list.Count < count && NextAfter(after) is { } next)
        {
            list.Add(next);
            after = next;
        }

        return list;
    }

    /// <summary>
    /// The occurrence due at <paramref name="now"/>: the latest one in (<paramref name="after"/>, <paramref name="now"/>],
    /// or null. However many were missed (a host down for a week), one is due: a catch-up fires once.
    /// </summary>
    public DateTimeOffset? DueAt(DateTimeOffset after, DateTimeOffset now)
    {
        if (now <= after)
            return null;

        // Scan back from now in growing windows: a dense CRON finds its latest occurrence in the first hour,
        // a yearly one in a few wider windows, and neither walks every occurrence since `after`.
        var window = TimeSpan.FromHours(1);
        while (true)
        {
            var from = now - after <= window ? after : now - window;
            DateTimeOffset? latest = null;
            foreach (var occurrence in cron.GetOccurrences(from, now, Zone, fromInclusive: false, toInclusive: true))
                latest = occurrence;
            if (latest is not null || from == after)
                return latest?.ToUniversalTime();
            window *= 24;
        }
    }

    public override string ToString() => Text;

    private static bool TryParse(string text, CronFormat format, out CronExpression? expression, out string error)
    {
        try
        {
            expression = CronExpression.Parse(text, format);
            error = string.Empty;
            return true;
        }
        catch (CronFormatException e)
        {
            expression = null;
            error = e.Message;
            return false;
        }
    }

    private static bool TryZone(string id, out TimeZoneInfo? zone)
    {
        if (string.Equals(id, "UTC", StringComparison.OrdinalIgnoreCase))
        {
            zone = TimeZoneInfo.Utc;
            return true;
        }

        return TimeZoneInfo.TryFindSystemTimeZoneById(id, out zone);
    }

    /// <summary>Checks one field: lists (a,b), ranges (a-b), steps (*/n, a-b/n), names (JAN, MON), '?', and L/W/# left to Cronos.</summary>
    private static IEnumerable<string> FieldProblems(string name, string field)
    {
        var (min, max) = Ranges[name];
        var dayField = name is "day-of-month" or "day-of-week";
        foreach (var item in field.Split(','))
        {
            if (item.Length == 0)
            {
                yield return $"{name} '{field}' has an empty list item";
                continue;
            }

            var upper = item.ToUpperInvariant();
            var quartzDay = upper == "?" || upper.Contains('L', StringComparison.Ordinal) || upper.Contains('#', StringComparison.Ordinal)
                || (upper.Contains('W', StringComparison.Ordinal) && !upper.Contains("WED", StringComparison.Ordinal));
            if (dayField && quartzDay)
            {
                // Quartz-style day forms (L, W, #, ?): Cronos judges them in the final parse.
                continue;
            }

            var parts = upper.Split('/');
            if (parts.Length > 2)
            {
                yield return $"{name} '{item}' has more than one '/'";
                continue;
            }

            if (parts.Length == 2 && (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var step) || step < 1 || step > max - min + 1))
                yield return $"{name} step '/{parts[1]}' must be a whole number from 1 to {max - min + 1}";

            var range = parts[0];
            if (range == "*")
                continue;
            var ends = range.Split('-');
            if (ends.Length > 2 || ends.Any(e => e.Length == 0))
            {
                yield return $"{name} '{item}' is not a value, a range 'a-b' or '*'";
                continue;
            }

            var values = new List<int>();
            foreach (var end in ends)
            {
                if (Value(name, end) is { } value)
                {
                    if (value < min || value > max)
                        yield return $"{name} value {end} is out of range {min}-{max}";
                    else
                        values.Add(value);
                }
                else
                {
                    yield return $"{name} '{end}' is not a number" + (name == "month" ? " or a month name (JAN-DEC)" : name == "day-of-week" ? " or a day name (SUN-SAT)" : string.Empty);
                }
            }

            if (values.Count == 2 && values[0] > values[1])
                yield return $"{name} range '{range}' runs backwards ({values[0]} > {values[1]})";
        }
    }

    private static int? Value(string name, string text)
    {
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            return number;
        var names = name == "month" ? Months : name == "day-of-week" ? Days : [];
        var index = Array.IndexOf(names, text);
        return index < 0 ? null : name == "month" ? index + 1 : index;
    }
}
