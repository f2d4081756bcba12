using MlFunctions.Core.Datasets;
using MlFunctions.Core.Datasets.Mail;

namespace MlFunctions.Activities.Datasets.Mail;

/// <summary>What reading a set of archives did: counts, the bot filter and every skipped message's reason.</summary>
public sealed record MailingListReport
{
    public required IReadOnlyList<string> Files { get; init; }

    /// <summary>Messages parsed (every file, replies included).</summary>
    public int Messages { get; init; }

    public IReadOnlyList<MboxSkip> Skipped { get; init; } = [];

    /// <summary>Messages whose Message-ID repeats an earlier one (the same mail in two archives): the first is kept.</summary>
    public int Duplicates { get; init; }

    /// <summary>Thread starts (no In-Reply-To, no References), bots included.</summary>
    public int ThreadStarts { get; init; }

    /// <summary>Thread starts dropped by the bot filter, by rule.</summary>
    public IReadOnlyDictionary<string, int> Bots { get; init; } = new Dictionary<string, int>();

    /// <summary>Human thread starts without a Message-ID: no reply can name them, so they cannot be labeled.</summary>
    public int WithoutMessageId { get; init; }

    /// <summary>Rows: labeled human thread starts.</summary>
    public int Rows { get; init; }

    public int Answered { get; init; }

    /// <summary>Answered thread starts with a reply in another archive: threads joined across monthly files.</summary>
    public int AnsweredAcrossFiles { get; init; }

    public int AttachmentsIgnored { get; init; }

    /// <summary>One line per fact, for the validation report.</summary>
    public IReadOnlyList<string> Lines()
    {
        var lines = new List<string>
        {
            $"{Messages} messages read from {Files.Count} archive(s) ({string.Join(", ", Files)}); {Skipped.Count} skipped, {Duplicates} duplicate Message-IDs dropped",
            $"{ThreadStarts} thread starts; bot filter dropped {Bots.Values.Sum()} ({(Bots.Count == 0 ? "none" : string.Join(", ", Bots.Select(b => $"{b.Key}: {b.Value}")))}); {WithoutMessageId} without a Message-ID cannot be labeled",
            $"{Rows} labeled thread starts, {Answered} answered ({AnsweredAcrossFiles} with replies in another archive: threads joined across files), {Rows - Answered} unanswered",
            $"{AttachmentsIgnored} attachment(s) ignored (only the text body is a feature)",
        };
        lines.AddRange(Skipped.GroupBy(s => ReasonKind(s.Reason)).Select(g => $"skipped {g.Count()}: {g.Key} (e.g. {g.First().File} message {g.First().Index} at byte {g.First().Offset}: {g.First().Reason})"));
        return lines;
    }

    private static string ReasonKind(string reason) => reason.Split(':')[0];
}

/// <summary>
/// Mailing-list archives → one table row per human thread start, labeled by thread: a thread start is answered when
/// any other message's In-Reply-To or References names its Message-ID, across every archive given (monthly files
/// are joined before labeling). Replies never become rows, so nothing of a reply reaches the features. Bot mail
/// (GitBox, JIRA, CI servers) is filtered by rule and the filter reported. Columns: the raw text fields the served
/// model takes (<c>subject</c>, <c>body</c>), metadata (<c>list</c>, <c>hour</c>, <c>weekday</c>, <c>posted_before</c>:
/// the sender has an earlier message in the archives) and the label <c>answered</c> ("yes"/"no").
/// </summary>
public static class MailingListTable
{
    public const string Label = "answered";

    public const string PostedBefore = "posted_before";

    public static readonly IReadOnlyList<string> Header = [MailFields.Subject, MailFields.Body, MailFields.List, MailFields.Hour, MailFields.Weekday, PostedBefore, Label];

    /// <summary>The columns a spec over this table names.</summary>
    public static TabularColumns Columns { get; } = new()
    {
        Label = Label,
        Text = ["subject", "body"],
        Categorical = ["list", "weekday"],
        Numeric = ["hour", "posted_before"],
    };

    /// <summary>Bot rules: name → predicate over (address, display name, subject).</summary>
    private static readonly (string Rule, Func<MailMessage, bool> Matches)[] BotRules =
    [
        ("gitbox", m => m.FromAddress == "git@apache.org" || m.FromName.Contains("GitBox", StringComparison.OrdinalIgnoreCase)),
        ("jira", m => m.FromAddress.StartsWith("jira@", StringComparison.Ordinal) || m.FromName.EndsWith("(JIRA)", StringComparison.OrdinalIgnoreCase)),
        ("ci", m => m.FromAddress.StartsWith("jenkins@", StringComparison.Ordinal) || m.FromAddress.StartsWith("hudson@", StringComparison.Ordinal) || m.FromAddress.StartsWith("builds@", StringComparison.Ordinal)
            || m.FromName.Contains("build server", StringComparison.OrdinalIgnoreCase) || m.FromAddress.Contains("buildbot", StringComparison.Ordinal)),
        ("notifications", m => m.FromAddress.StartsWith("notifications@", StringComparison.Ordinal) || m.FromAddress.StartsWith("noreply@", StringComparison.Ordinal) || m.FromAddress.StartsWith("no-reply@", StringComparison.Ordinal)),
    ];

    /// <summary>The rule a message's sender matches, or null for a person.</summary>
    public static string? BotRule(MailMessage m) => BotRules.FirstOrDefault(r => r.Matches(m)).Rule;

    /// <summary>Reads every archive (in name order) and builds the table and the report. Throws <see cref="InvalidDataException"/> when nothing is usable.</summary>
    public static (TabularTable Table, MailingListReport Report) Build(IReadOnlyList<CsvSource> sources)
    {
        var all = new List<MailMessage>();
        var skipped = new List<MboxSkip>();
        foreach (var source in sources.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            using var stream = source.Open();
            var (messages, skips) = MboxReader.Read(source.Name, stream);
            all.AddRange(messages);
            skipped.AddRange(skips);
        }

        // The same mail archived twice (in two months' files) is one message.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var unique = new List<MailMessage>(all.Count);
        var duplicates = 0;
        foreach (var m in all)
        {
            if (m.MessageId is { } id && !seen.Add(id))
                duplicates++;
            else
                unique.Add(m);
        }

        // Who replied to what: every id named by In-Reply-To or References, with the first replying message's file.
        var repliedIn = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var m in unique)
        {
            foreach (var parent in m.Parents.Where(p => p != m.MessageId))
            {
                if (!repliedIn.TryGetValue(parent, out var files))
                    repliedIn[parent] = files = new HashSet<string>(StringComparer.Ordinal);
                files.Add(m.File);
            }
        }

        // The sender's earlier posts, by time over every archive.
        var firstPost = unique.Where(m => m.FromAddress.Length > 0).GroupBy(m => m.FromAddress, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Min(m => m.Date), StringComparer.Ordinal);

        var bots = new Dictionary<string, int>(StringComparer.Ordinal);
        var rows = new List<CsvRecord>();
        int starts = 0, withoutId = 0, answered = 0, acrossFiles = 0;
        foreach (var m in unique.Where(m => m.IsThreadStart))
        {
            starts++;
            if (BotRule(m) is { } rule)
            {
                bots[rule] = bots.GetValueOrDefault(rule) + 1;
                continue;
            }

            if (m.MessageId is null)
            {
                withoutId++;
                skipped.Add(new MboxSkip(m.File, m.Index, -1, "no Message-ID: a thread start without one cannot be named by a reply, so it is not labeled"));
                continue;
            }

            var isAnswered = repliedIn.TryGetValue(m.MessageId, out var replyFiles);
            if (isAnswered)
            {
                answered++;
                if (replyFiles!.Any(f => f != m.File))
                    acrossFiles++;
            }

            var postedBefore = firstPost.TryGetValue(m.FromAddress, out var first) && first < m.Date;
            var fields = m.Fields();
            rows.Add(new CsvRecord(m.File, m.Index + 1,
            [
                fields[MailFields.Subject],
                fields[MailFields.Body],
                fields[MailFields.List],
                fields[MailFields.Hour],
                fields[MailFields.Weekday],
                postedBefore ? "1" : "0",
                isAnswered ? "yes" : "no",
            ]));
        }

        var report = new MailingListReport
        {
            Files = sources.Select(s => s.Name).Order(StringComparer.Ordinal).ToList(),
            Messages = unique.Count + duplicates,
            Skipped = skipped,
            Duplicates = duplicates,
            ThreadStarts = starts,
            Bots = bots,
            WithoutMessageId = withoutId,
            Rows = rows.Count,
            Answered = answered,
            AnsweredAcrossFiles = acrossFiles,
            AttachmentsIgnored = unique.Sum(m => m.Attachments),
        };
        if (rows.Count == 0)
            throw new InvalidDataException($"no labeled thread starts in {string.Join(", ", report.Files)}: {string.Join("; ", report.Lines())}");
        return (TabularTable.FromRecords(Header, rows), report);
    }
}
