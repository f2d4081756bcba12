using System.Text;
using MlFunctions.Activities.Datasets.Mail;
using MlFunctions.Core.Datasets;

namespace MlFunctions.Datasets.Tests.Mail;

/// <summary>The mbox reader and thread labeling on the real ASF archives in ../shared/datasets/mailing-list, and on made-up damaged ones.</summary>
public sealed class MailingListTests
{
    public static string Folder => Environment.GetEnvironmentVariable("MLF_DATASETS") is { Length: > 0 } root
        ? Path.Combine(root, "mailing-list")
        : Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../../shared/datasets/mailing-list"));

    private static CsvSource Real(string name) => CsvSource.FromFile(Path.Combine(Folder, name));

    private static CsvSource Text(string name, string content) => new(name, () => new MemoryStream(Encoding.UTF8.GetBytes(content.Replace("\r\n", "\n"))));

    [Fact]
    public void Asterix_label_counts_match_a_hand_count()
    {
        // Hand count (Python's mailbox, and the string count below): 53 messages; 20 have neither In-Reply-To nor
        // References; 9 of those are from the Jenkins build server; 10 of the 11 human ones are named by another message.
        var (table, report) = MailingListTable.Build([Real("asterix-dev-201709-mailarchivesao.mbox")]);
        Assert.Equal(53, report.Messages);
        Assert.Empty(report.Skipped);
        Assert.Equal(20, report.ThreadStarts);
        Assert.Equal(9, report.Bots["ci"]);
        Assert.Equal(11, report.Rows);
        Assert.Equal(11, table.Rows.Count);
        Assert.Equal(10, report.Answered);
        Assert.Equal(report.Answered, table.Rows.Count(r => r.Values[^1] == "yes"));
        Assert.Equal(HandCountAnswered("asterix-dev-201709-mailarchivesao.mbox"), report.Answered);
    }

    [Fact]
    public void A_thread_split_across_two_months_is_joined()
    {
        var nov = Real("maven-dev-2017-11-mailarchivesao.mbox");
        var dec = Real("maven-dev-2017-12-mailarchivesao.mbox");
        var (_, both) = MailingListTable.Build([nov, dec]);

        // Python's mailbox finds 6 November thread starts with replies in the December file (e.g. "Maven resolver branch consolidation").
        Assert.Equal(6, both.AnsweredAcrossFiles);

        // A thread whose only reply is in next month's file: unanswered alone, answered once the months are joined.
        var first = Text("list-2024-01.mbox", Message("a@x.org", "<start@x>", "Build fails on JDK 21?", "Any idea?"));
        var next = Text("list-2024-02.mbox", Message("b@x.org", "<reply@x>", "Re: Build fails on JDK 21?", "Use 3.9.6", inReplyTo: "<start@x>"));
        Assert.Equal("no", Assert.Single(MailingListTable.Build([first]).Table.Rows).Values[^1]);
        var (joined, report) = MailingListTable.Build([first, next]);
        Assert.Equal("yes", Assert.Single(joined.Rows).Values[^1]);
        Assert.Equal(1, report.AnsweredAcrossFiles);
    }

    [Fact]
    public void All_four_archives_give_the_readme_thread_counts()
    {
        var files = Directory.GetFiles(Folder, "*.mbox").Select(CsvSource.FromFile).ToList();
        var (_, report) = MailingListTable.Build(files);
        Assert.Equal(699, report.Messages);
        Assert.Equal(183, report.ThreadStarts);
        Assert.Equal(39, report.Bots["gitbox"]);
        Assert.DoesNotContain(report.Skipped, s => !s.Reason.StartsWith("no Message-ID", StringComparison.Ordinal));
    }

    [Fact]
    public void Corrupt_messages_are_skipped_with_reasons_and_the_rest_is_kept()
    {
        var mbox = "garbage before any separator\n" +
            Message("a@x.org", "<1@x>", "Question one?", "How do I build it?") +
            "From nobody Mon Jan  1 00:00:00 2024\n\n\n" +
            "From junk Mon Jan  1 00:00:00 2024\n\u0001\u0002 not headers at all\n\n" +
            Message("b@x.org", null, "No id here", "Body") +
            Message("c@x.org", "<2@x>", "Re: Question one?", "> quoted\nAnswer", inReplyTo: "<1@x>");
        var (table, report) = MailingListTable.Build([Text("bad.mbox", mbox)]);
        Assert.Contains(report.Skipped, s => s.Reason.Contains("before the first 'From '", StringComparison.Ordinal));
        Assert.Contains(report.Skipped, s => s.Reason.Contains("empty message", StringComparison.Ordinal));
        Assert.Contains(report.Skipped, s => s.Index == 2 && (s.Reason.StartsWith("no RFC 5322 headers", StringComparison.Ordinal) || s.Reason.StartsWith("not a MIME message", StringComparison.Ordinal)));
        Assert.Contains(report.Skipped, s => s.Reason.StartsWith("no Message-ID", StringComparison.Ordinal));
        Assert.Equal(1, report.WithoutMessageId);
        var row = Assert.Single(table.Rows);
        Assert.Equal("Question one?", row.Values[0]);
        Assert.Equal("yes", row.Values[^1]);
        Assert.All(report.Lines(), l => Assert.False(string.IsNullOrWhiteSpace(l)));
    }

    [Fact]
    public void Mixed_charsets_and_transfer_encodings_decode()
    {
        var latin1 = "From x Mon Jan  1 00:00:00 2024\nFrom: =?ISO-8859-1?Q?Herv=E9?= <h@x.org>\nSubject: =?UTF-8?B?w6ljbGFpciDinJM=?=\nMessage-ID: <m1@x>\nDate: Mon, 1 Jan 2024 10:30:00 +0200\n" +
            "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"b\"\n\n--b\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nCaf=E9 cr=E8me na=EFve\n--b\nContent-Type: text/html; charset=utf-8\n\n<p>ignored</p>\n--b--\n\n" +
            "From y Mon Jan  1 00:00:00 2024\nFrom: k@x.org\nSubject: koi8\nMessage-ID: <m2@x>\nDate: Mon, 1 Jan 2024 11:00:00 +0000\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" +
            Convert.ToBase64String(Encoding.UTF8.GetBytes("Привет, мир — 日本語")) + "\n";
        var (messages, skipped) = MboxReader.Read("charsets.mbox", new MemoryStream(Encoding.ASCII.GetBytes(latin1)));
        Assert.Empty(skipped);
        Assert.Equal("Hervé", messages[0].FromName);
        Assert.Equal("éclair ✓", messages[0].Subject);
        Assert.Contains("Café crème naïve", messages[0].Body, StringComparison.Ordinal);
        Assert.Equal(10, messages[0].Date.Hour);
        Assert.Equal("Привет, мир — 日本語", messages[1].Body.Trim());
    }

    [Fact]
    public void A_10_MB_attachment_is_ignored_and_counted()
    {
        var payload = Convert.ToBase64String(new byte[10 * 1024 * 1024], Base64FormattingOptions.InsertLineBreaks);
        var mbox = "From x Mon Jan  1 00:00:00 2024\nFrom: a@x.org\nSubject: logs attached?\nMessage-ID: <big@x>\nDate: Mon, 1 Jan 2024 10:30:00 +0000\n" +
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nSee the attached heap dump.\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"heap.bin\"\nContent-Transfer-Encoding: base64\n\n" +
            payload + "\n--b--\n";
        var (table, report) = MailingListTable.Build([Text("big.mbox", mbox)]);
        Assert.Equal(1, report.AttachmentsIgnored);
        var row = Assert.Single(table.Rows);
        Assert.Equal("See the attached heap dump.", row.Values[1].Trim());
    }

    [Fact]
    public void Envelope_date_is_used_when_the_date_header_is_missing()
    {
        var mbox = "From git@apache.org  Wed Nov  1 13:05:00 2017\nFrom: someone@x.org\nSubject: no date\nMessage-ID: <d@x>\n\nbody\n";
        var (messages, _) = MboxReader.Read("nodate.mbox", new MemoryStream(Encoding.ASCII.GetBytes(mbox)));
        Assert.Equal(new DateTimeOffset(2017, 11, 1, 13, 5, 0, TimeSpan.Zero), messages[0].Date);
    }

    private static string Message(string from, string? id, string subject, string body, string? inReplyTo = null) =>
        $"From {from} Mon Jan  1 00:00:00 2024\nFrom: {from}\nSubject: {subject}\n{(id is null ? "" : $"Message-ID: {id}\n")}{(inReplyTo is null ? "" : $"In-Reply-To: {inReplyTo}\n")}Date: Mon, 1 Jan 2024 10:00:00 +0000\n\n{body}\n\n";

    /// <summary>An independent count with plain string matching over the raw headers (no MimeKit).</summary>
    private static int HandCountAnswered(string file)
    {
        var text = File.ReadAllText(Path.Combine(Folder, file), Encoding.Latin1);
        var messages = System.Text.RegularExpressions.Regex.Split(text, "(?m)^From ").Skip(1).Select(m => m[..Math.Max(0, m.IndexOf("\n\n", StringComparison.Ordinal))]).ToList();
        string? Header(string headers, string name)
        {
            var m = System.Text.RegularExpressions.Regex.Match(headers, $"(?im)^{name}:(.*(\\n[ \\t].*)*)");
            return m.Success ? m.Groups[1].Value : null;
        }

        var referenced = messages.SelectMany(h => (Header(h, "In-Reply-To") + " " + Header(h, "References")).Split([' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries)).ToHashSet(StringComparer.Ordinal);
        return messages.Count(h => Header(h, "In-Reply-To") is null && Header(h, "References") is null
            && !(Header(h, "From") ?? "").Contains("jenkins@", StringComparison.Ordinal)
            && Header(h, "Message-ID") is { } id && referenced.Contains(id.Trim()));
    }

}
