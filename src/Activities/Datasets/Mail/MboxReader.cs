using System.Globalization;
using System.IO.Compression;
using System.Text;
using MimeKit;

namespace MlFunctions.Activities.Datasets.Mail;

/// <summary>One parsed mail: what threading, labeling and the features need.</summary>
public sealed record MailMessage
{
    public required string File { get; init; }

    /// <summary>0-based position in its file (corrupt messages count too), for reasons that point at it.</summary>
    public required int Index { get; init; }

    /// <summary>The Message-ID without angle brackets; null when the header is missing.</summary>
    public string? MessageId { get; init; }

    /// <summary>The In-Reply-To id (if any) followed by every References id.</summary>
    public IReadOnlyList<string> Parents { get; init; } = [];

    /// <summary>The sender's address, lower case.</summary>
    public string FromAddress { get; init; } = "";

    public string FromName { get; init; } = "";

    public string Subject { get; init; } = "";

    /// <summary>The text/plain body (or the HTML body's text), decoded from its transfer encoding and charset.</summary>
    public string Body { get; init; } = "";

    /// <summary>The Date header with the sender's offset, or the envelope date (UTC) when the header is missing or unreadable.</summary>
    public DateTimeOffset Date { get; init; }

    /// <summary>The List-Id ("dev.maven.apache.org"), else the Mailing-List address, else the file's name.</summary>
    public string List { get; init; } = "";

    /// <summary>Parts that are attachments (not read: only the text body is a feature).</summary>
    public int Attachments { get; init; }

    /// <summary>A thread start has neither In-Reply-To nor References.</summary>
    public bool IsThreadStart => Parents.Count == 0;
}

/// <summary>A message the reader could not use, and why.</summary>
public sealed record MboxSkip(string File, int Index, long Offset, string Reason);

/// <summary>
/// Reads classic mboxo archives: a message starts at every line beginning with <c>From </c> (as Python's
/// <c>mailbox.mbox</c>), and each message is parsed on its own by MimeKit (RFC 5322 headers, MIME multipart,
/// quoted-printable and base64, charsets), so a corrupt message is skipped with its reason and never ends the file.
/// </summary>
public static class MboxReader
{
    private static readonly byte[] Separator = "From "u8.ToArray();

    /// <summary>Every message of one archive (gzip by name), in file order, with the skipped ones and their reasons.</summary>
    public static (IReadOnlyList<MailMessage> Messages, IReadOnlyList<MboxSkip> Skipped) Read(string name, Stream stream)
    {
        byte[] bytes;
        using (var buffer = new MemoryStream())
        {
            if (name.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
            {
                using var gz = new GZipStream(stream, CompressionMode.Decompress, leaveOpen: true);
                gz.CopyTo(buffer);
            }
            else
            {
                stream.CopyTo(buffer);
            }

            bytes = buffer.ToArray();
        }

        var messages = new List<MailMessage>();
        var skipped = new List<MboxSkip>();
        var starts = MessageStarts(bytes);
        if (starts.Count == 0 || !IsBlank(bytes.AsSpan(0, starts.Count > 0 ? starts[0] : bytes.Length)))
        {
            skipped.Add(new MboxSkip(name, -1, 0, starts.Count == 0
                ? $"no 'From ' separator line in {bytes.Length:N0} bytes: not an mbox archive"
                : $"{starts[0]:N0} bytes before the first 'From ' separator line are not part of any message"));
        }

        for (var i = 0; i < starts.Count; i++)
        {
            var start = starts[i];
            var end = i + 1 < starts.Count ? starts[i + 1] : bytes.Length;
            var (message, reason) = Parse(name, i, bytes.AsMemory(start, end - start));
            if (message is not null)
                messages.Add(message);
            else
                skipped.Add(new MboxSkip(name, i, start, reason!));
        }

        return (messages, skipped);
    }

    private static List<int> MessageStarts(byte[] bytes)
    {
        var starts = new List<int>();
        for (var at = 0; at < bytes.Length;)
        {
            if (bytes.AsSpan(at).StartsWith(Separator))
                starts.Add(at);
            var newline = bytes.AsSpan(at).IndexOf((byte)'\n');
            if (newline < 0)
                break;
            at += newline + 1;
        }

        return starts;
    }

    private static bool IsBlank(ReadOnlySpan<byte> span)
    {
        foreach (var b in span)
        {
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
                return false;
        }

        return true;
    }

    private static (MailMessage? Message, string? Reason) Parse(string file, int index, ReadOnlyMemory<byte> chunk)
    {
        var span = chunk.Span;
        var lineEnd = span.IndexOf((byte)'\n');
        var envelope = Encoding.Latin1.GetString(lineEnd < 0 ? span : span[..lineEnd]).TrimEnd('\r');
        if (lineEnd < 0 || IsBlank(span[(lineEnd + 1)..]))
            return (null, $"'{Shorten(envelope)}' starts an empty message");

        MimeMessage mime;
        try
        {
            using var body = new MemoryStream(chunk[(lineEnd + 1)..].ToArray(), writable: false);
            mime = MimeMessage.Load(new ParserOptions { RespectContentLength = false }, body);
        }
        catch (Exception e) when (e is FormatException or ParseException or ArgumentException or InvalidOperationException)
        {
            return (null, $"not a MIME message: {e.Message}");
        }

        if (mime.Headers.Count == 0 || (mime.From.Count == 0 && mime.Subject is null && mime.MessageId is null))
            return (null, "no RFC 5322 headers (From, Subject, Message-ID are all missing)");

        var from = mime.From.Mailboxes.FirstOrDefault();
        var date = mime.Headers.Contains(HeaderId.Date) && mime.Date != DateTimeOffset.MinValue ? mime.Date : EnvelopeDate(envelope);
        if (date is null)
            return (null, $"no usable date: the Date header is missing or unreadable and the envelope line '{Shorten(envelope)}' has none");

        var parents = new List<string>();
        if (Id(mime.InReplyTo) is { } inReplyTo)
            parents.Add(inReplyTo);
        parents.AddRange(mime.References.Select(Id).OfType<string>().Where(r => !parents.Contains(r, StringComparer.Ordinal)));
        return (new MailMessage
        {
            File = file,
            Index = index,
            MessageId = Id(mime.MessageId),
            Parents = parents,
            FromAddress = (from?.Address ?? "").Trim().ToLowerInvariant(),
            FromName = from?.Name ?? "",
            Subject = mime.Subject ?? "",
            Body = BodyText(mime),
            Date = date.Value,
            List = ListName(mime, file),
            Attachments = mime.Attachments.Count(),
        }, null);
    }

    /// <summary>The text/plain body, else the HTML body converted to text, else empty.</summary>
    private static string BodyText(MimeMessage mime)
    {
        if (mime.TextBody is { } text)
            return text;
        return mime.HtmlBody is { } html ? StripTags(html) : "";
    }

    private static string StripTags(string html)
    {
        var sb = new StringBuilder(html.Length);
        var inTag = false;
        foreach (var ch in html)
        {
            if (ch == '<')
                inTag = true;
            else if (ch == '>')
            {
                inTag = false;
                sb.Append(' ');
            }
            else if (!inTag)
                sb.Append(ch);
        }

        return System.Net.WebUtility.HtmlDecode(sb.ToString());
    }

    private static string ListName(MimeMessage mime, string file)
    {
        var listId = mime.Headers[HeaderId.ListId];
        if (!string.IsNullOrWhiteSpace(listId))
        {
            var open = listId.LastIndexOf('<');
            var close = listId.LastIndexOf('>');
            var id = open >= 0 && close > open ? listId[(open + 1)..close] : listId;
            return id.Trim().ToLowerInvariant();
        }

        var mailingList = mime.Headers["Mailing-List"];
        if (!string.IsNullOrWhiteSpace(mailingList) && mailingList.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, var contact, ..])
            return contact.TrimEnd(';').Replace("-help@", ".", StringComparison.OrdinalIgnoreCase).ToLowerInvariant();
        return Path.GetFileNameWithoutExtension(file).ToLowerInvariant();
    }

    private static string? Id(string? id)
    {
        if (string.IsNullOrWhiteSpace(id))
            return null;
        return id.Trim().Trim('<', '>').Trim();
    }

    /// <summary>The asctime date at the end of a <c>From sender Wed Nov  1 00:00:00 2017</c> envelope line, as UTC.</summary>
    public static DateTimeOffset? EnvelopeDate(string envelope)
    {
        var parts = envelope.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 6)
            return null;
        var text = string.Join(' ', parts[^5..]);
        return DateTime.TryParseExact(text, ["ddd MMM d HH:mm:ss yyyy", "ddd MMM dd HH:mm:ss yyyy"], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var d)
            ? new DateTimeOffset(d, TimeSpan.Zero)
            : null;
    }

    private static string Shorten(string s) => s.Length <= 80 ? s : s[..77] + "...";
}
