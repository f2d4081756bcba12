using MlFunctions.Api.Pipelines;
using Xunit;

namespace MlFunctions.Tests.Triggers;

/// <summary>The schedules' CRON: next occurrences (lists, ranges, steps, names, seconds, zones and DST), due occurrences, and every problem of a bad one.</summary>
public sealed class CronScheduleTests
{
    private static readonly DateTimeOffset Saturday = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private static DateTimeOffset Utc(int year, int month, int day, int hour, int minute = 0, int second = 0) => new(year, month, day, hour, minute, second, TimeSpan.Zero);

    [Fact]
    public void ListsRangesStepsAndNamesGiveTheNextOccurrences()
    {
        Assert.Equal([Utc(2025, 3, 1, 12, 15), Utc(2025, 3, 1, 12, 45), Utc(2025, 3, 1, 13, 15)], CronSchedule.Parse("15,45 * * * *").NextOccurrences(Saturday, 3));
        Assert.Equal(
            [Utc(2025, 3, 3, 9, 0), Utc(2025, 3, 3, 9, 5), Utc(2025, 3, 3, 9, 10), Utc(2025, 3, 3, 13, 0)],
            CronSchedule.Parse("0-10/5 9-17/4 * * MON,WED").NextOccurrences(Saturday, 4));
        Assert.Equal([Utc(2026, 1, 1, 0), Utc(2026, 2, 1, 0), Utc(2026, 3, 1, 0)], CronSchedule.Parse("0 0 1 JAN-MAR *").NextOccurrences(Saturday, 3));
        Assert.Equal([Utc(2025, 3, 3, 2, 30), Utc(2025, 3, 4, 2, 30)], CronSchedule.Parse("30 2 * * 1-5").NextOccurrences(Saturday, 2));

        // Six fields put seconds first, as Functions' NCRONTAB does.
        Assert.Equal([Utc(2025, 3, 1, 12, 0, 20), Utc(2025, 3, 1, 12, 0, 40), Utc(2025, 3, 1, 12, 1, 0)], CronSchedule.Parse("*/20 * * * * *").NextOccurrences(Saturday, 3));
        Assert.Null(CronSchedule.Parse("0 0 30 2 *").NextAfter(Saturday));

        // Quartz-style day forms: the last day of the month, the first Monday.
        Assert.Equal([Utc(2025, 3, 31, 0), Utc(2025, 4, 30, 0)], CronSchedule.Parse("0 0 L * *").NextOccurrences(Saturday, 2));
        Assert.Equal([Utc(2025, 3, 3, 9), Utc(2025, 4, 7, 9)], CronSchedule.Parse("0 9 * * MON#1").NextOccurrences(Saturday, 2));
    }

    [Fact]
    public void ATimeZoneIsHonouredAcrossDaylightSavingTime()
    {
        var paris = CronSchedule.Parse("30 2 * * *", "Europe/Paris");

        // 29 March: CET (+1); 30 March: 02:30 does not exist (02:00 jumps to 03:00) and fires at the jump; 31 March: CEST (+2).
        Assert.Equal([Utc(2025, 3, 29, 1, 30), Utc(2025, 3, 30, 1, 0), Utc(2025, 3, 31, 0, 30)], paris.NextOccurrences(Utc(2025, 3, 28, 12), 3));

        // 26 October: 02:30 happens twice (CEST then CET); a fixed-time schedule fires once, at the first.
        Assert.Equal([Utc(2025, 10, 26, 0, 30), Utc(2025, 10, 27, 1, 30)], paris.NextOccurrences(Utc(2025, 10, 25, 12), 2));

        Assert.Equal(Utc(2025, 7, 1, 7, 0), CronSchedule.Parse("0 3 * * *", "America/New_York").NextAfter(Utc(2025, 7, 1, 0)));
        Assert.Equal(TimeZoneInfo.Utc, CronSchedule.Parse("0 3 * * *").Zone);
    }

    [Fact]
    public void TheDueOccurrenceIsTheLatestMissedOneSoDowntimeCatchesUpOnce()
    {
        var hourly = CronSchedule.Parse("0 * * * *");
        Assert.Equal(Utc(2025, 3, 1, 5), hourly.DueAt(Utc(2025, 3, 1, 0, 10), Utc(2025, 3, 1, 5, 30)));
        Assert.Null(hourly.DueAt(Utc(2025, 3, 1, 5), Utc(2025, 3, 1, 5, 59, 59)));
        Assert.Equal(Utc(2025, 3, 1, 6), hourly.DueAt(Utc(2025, 3, 1, 5), Utc(2025, 3, 1, 6)));
        Assert.Null(hourly.DueAt(Utc(2025, 3, 1, 6), Utc(2025, 3, 1, 6)));

        // Sparse: a yearly schedule after years down; dense: every second after a month down. One occurrence each.
        Assert.Equal(Utc(2025, 1, 1, 0), CronSchedule.Parse("0 0 1 1 *").DueAt(Utc(2020, 6, 1, 0), Utc(2025, 3, 1, 0)));
        Assert.Null(CronSchedule.Parse("0 0 1 1 *").DueAt(Utc(2025, 1, 1, 0), Utc(2025, 12, 31, 23)));
        Assert.Equal(Utc(2025, 3, 1, 12, 0, 0), CronSchedule.Parse("* * * * * *").DueAt(Saturday.AddDays(-30), Saturday.AddMilliseconds(400)));
    }

    [Fact]
    public void ABadExpressionListsEveryProblemFieldByField()
    {
        var problems = CronSchedule.Problems("61 25 0 13 8", "Mars/Olympus");
        Assert.Equal(6, problems.Count);
        Assert.Contains(problems, p => p.Contains("timeZone 'Mars/Olympus'"));
        Assert.Contains("minute value 61 is out of range 0-59", problems);
        Assert.Contains("hour value 25 is out of range 0-23", problems);
        Assert.Contains("day-of-month value 0 is out of range 1-31", problems);
        Assert.Contains("month value 13 is out of range 1-12", problems);
        Assert.Contains("day-of-week value 8 is out of range 0-7", problems);

        var more = CronSchedule.Problems("*/0 5-1 * * FOO *", null);
        Assert.Contains("second step '/0' must be a whole number from 1 to 60", more);
        Assert.Contains("minute range '5-1' runs backwards (5 > 1)", more);
        Assert.Contains("month 'FOO' is not a number or a month name (JAN-DEC)", more);

        Assert.Contains("3 field(s)", Assert.Single(CronSchedule.Problems("* * *", null)));
        Assert.Contains("cron is required", Assert.Single(CronSchedule.Problems(" ", null)));
        Assert.Contains("empty list item", Assert.Single(CronSchedule.Problems("1,,2 * * * *", null)));
        Assert.Empty(CronSchedule.Problems("0 3 * * *", "Europe/Paris"));
        Assert.Empty(CronSchedule.Problems("0 0 3 ? * MON-FRI", "UTC"));
        Assert.Empty(CronSchedule.Problems("@daily", null));
        var e = Assert.Throws<ArgumentException>(() => CronSchedule.Parse("61 * * * *"));
        Assert.Contains("minute value 61", e.Message);
    }
}
