using System.IO.Compression;
using MlFunctions.Core.Datasets.Mail;

namespace MlFunctions.Activities.Datasets.Mail;

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
            var (message, reason) = MailParser.Parse(name, i, bytes.AsMemory(start, end - start));
            if (message is not null)
                messages.Add(message);
            else
                skipped.Add(new MboxSkip(name, i, start, reason!));
        }

        return (messages, skipped);
    }

    /// <summary>
    /// Every message of one archive as its raw bytes (the <c>From </c> envelope line included), in the order and with the
    /// indexes <see cref="Read"/> gives them: e.g. to send an archived message to the served model as raw RFC 5322 text.
    /// </summary>
    public static IReadOnlyList<ReadOnlyMemory<byte>> RawMessages(byte[] bytes)
    {
        var starts = MessageStarts(bytes);
        return starts.Select((start, i) => (ReadOnlyMemory<byte>)bytes.AsMemory(start, (i + 1 < starts.Count ? starts[i + 1] : bytes.Length) - start)).ToList();
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

}
