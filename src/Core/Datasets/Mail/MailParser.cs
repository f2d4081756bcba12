using System.Globalization;
using System.Text;
using MimeKit;

namespace MlFunctions.Core.Datasets.Mail;

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

    /// <summary>False for a served message without any date: its hour and weekday fields are then missing.</summary>
    public bool DateKnown { get; init; } = true;

    /// <summary>The List-Id ("dev.maven.apache.org"), else the Mailing-List address, else the file's name.</summary>
    public string List { get; init; } = "";

    /// <summary>Parts that are attachments (not read: only the text body is a feature).</summary>
    public int Attachments { get; init; }

    /// <summary>A thread start has neither In-Reply-To nor References.</summary>
    public bool IsThreadStart => Parents.Count == 0;

    /// <summary>The feature fields of a message, named as the mailing-list table's columns; ingest and serving both take them from here.</summary>
    public IReadOnlyDictionary<string, string> Fields() => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [MailFields.Subject] = Subject,
        [MailFields.Body] = Body,
        [MailFields.List] = List,
        [MailFields.Hour] = DateKnown ? Date.Hour.ToString(CultureInfo.InvariantCulture) : "",
        [MailFields.Weekday] = DateKnown ? Date.DayOfWeek.ToString()[..3].ToLowerInvariant() : "",
    };
}

/// <summary>The column names of a message's fields (<see cref="MailMessage.Fields"/>) and the raw-message serving input.</summary>
public static class MailFields
{
    public const string Subject = "subject";
    public const string Body = "body";
    public const string List = "list";

    /// <summary>The hour of the Date header in the sender's own offset (0-23).</summary>
    public const string Hour = "hour";

    /// <summary>"mon" … "sun".</summary>
    public const string Weekday = "weekday";

    /// <summary>The served model's raw RFC 5322 input (BYTES): the message as a mail client would save it.</summary>
    public const string Message = "message";
}

/// <summary>
/// One mail message parsed by MimeKit (RFC 5322 headers, MIME multipart, quoted-printable and base64, charsets) into
/// the fields threading, labeling and the features need. The mbox reader (ingest) and serving's raw-message input
/// both parse here, so a message scores the same whether it came from an archive or a request.
/// </summary>
public static class MailParser
{
    /// <summary>
    /// One mbox chunk (its <c>From </c> envelope line, then the RFC 5322 message) parsed by MimeKit, or the reason it
    /// cannot be used. <paramref name="file"/> names the archive (the list's fallback name and the reasons' pointer).
    /// </summary>
    public static (MailMessage? Message, string? Reason) Parse(string file, int index, ReadOnlyMemory<byte> chunk)
    {
        var span = chunk.Span;
        var lineEnd = span.IndexOf((byte)'\n');
        var envelope = Encoding.Latin1.GetString(lineEnd < 0 ? span : span[..lineEnd]).TrimEnd('\r');
        if (lineEnd < 0 || IsBlank(span[(lineEnd + 1)..]))
            return (null, $"'{Shorten(envelope)}' starts an empty message");
        return ParseMessage(file, index, chunk[(lineEnd + 1)..], envelope);
    }

    /// <summary>
    /// A raw RFC 5322 message as served (<c>POST /v2/models/{model}/infer</c> with a <c>message</c> input): an mbox
    /// <c>From </c> envelope line first is allowed and used for the date when the Date header is missing. The same
    /// MimeKit parse as ingest, so a served message has the fields its archived copy had.
    /// </summary>
    public static (MailMessage? Message, string? Reason) ParseRaw(string text, string file = "request")
    {
        var bytes = Encoding.UTF8.GetBytes(text.Replace("\r\n", "\n", StringComparison.Ordinal));
        if (bytes.AsSpan().StartsWith("From "u8))
            return Parse(file, 0, bytes);
        if (IsBlank(bytes))
            return (null, "the message is empty");
        // A request without a Date header still scores: its hour and weekday are missing values, which the transform imputes.
        return ParseMessage(file, 0, bytes, null, requireDate: false);
    }

    private static (MailMessage? Message, string? Reason) ParseMessage(string file, int index, ReadOnlyMemory<byte> message, string? envelope, bool requireDate = true)
    {
        MimeMessage mime;
        try
        {
            using var body = new MemoryStream(message.ToArray(), writable: false);
            mime = MimeMessage.Load(new ParserOptions { RespectContentLength = false }, body);
        }
        catch (Exception e) when (e is FormatException or ParseException or ArgumentException or InvalidOperationException)
        {
            return (null, $"not a MIME message: {e.Message}");
        }

        if (mime.Headers.Count == 0 || (mime.From.Count == 0 && mime.Subject is null && mime.MessageId is null))
            return (null, "no RFC 5322 headers (From, Subject, Message-ID are all missing)");

        var from = mime.From.Mailboxes.FirstOrDefault();
        var date = mime.Headers.Contains(HeaderId.Date) && mime.Date != DateTimeOffset.MinValue ? mime.Date : envelope is null ? null : EnvelopeDate(envelope);
        if (date is null && requireDate)
            return (null, envelope is null ? "no usable date: the Date header is missing or unreadable" : $"no usable date: the Date header is missing or unreadable and the envelope line '{Shorten(envelope)}' has none");

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
            Date = date ?? DateTimeOffset.UnixEpoch,
            DateKnown = date is not null,
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

    private static bool IsBlank(ReadOnlySpan<byte> span)
    {
        foreach (var b in span)
        {
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
                return false;
        }

        return true;
    }

    private static string Shorten(string s) => s.Length <= 80 ? s : s[..77] + "...";
}
