using System.Text;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace MlFunctions.Core.Transforms;

/// <summary>How text columns become term slots.</summary>
public enum TextTermMode
{
    /// <summary>Each token goes to bucket FNV-1a(token) mod <see cref="TextOptions.Buckets"/>: no vocabulary to store, no OOV.</summary>
    Hashing,

    /// <summary>The <see cref="TextOptions.MaxVocabulary"/> tokens in the most train documents keep a slot; the rest share one OOV slot.</summary>
    Vocabulary,
}

/// <summary>Settings of text columns (the spec's <c>transform.text</c> block); fitted on the train split only.</summary>
public sealed record TextOptions
{
    public TextTermMode Mode { get; init; } = TextTermMode.Hashing;

    /// <summary>Hashing: the number of buckets.</summary>
    public int Buckets { get; init; } = 4096;

    /// <summary>Vocabulary: the most document-frequent tokens kept.</summary>
    public int MaxVocabulary { get; init; } = 5000;

    /// <summary>Vocabulary: a token in fewer train documents than this goes to the OOV slot.</summary>
    public int MinDocumentFrequency { get; init; } = 1;

    /// <summary>Tokens shorter than this are dropped.</summary>
    public int MinTokenLength { get; init; } = 2;

    /// <summary>Drop quoted mail text first: lines starting with '>', "On … wrote:" lines and everything after an "-----Original Message-----".</summary>
    public bool StripQuoted { get; init; }

    /// <summary>Append per-column flags: stack trace, code, question mark, link, and log length (standardized on train).</summary>
    public bool Flags { get; init; }

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Mode == TextTermMode.Hashing && Buckets is < 1 or > 1 << 20)
            problems.Add($"transform.text.buckets must be between 1 and {1 << 20}, got {Buckets}");
        if (Mode == TextTermMode.Vocabulary && MaxVocabulary is < 1 or > 1 << 20)
            problems.Add($"transform.text.maxVocabulary must be between 1 and {1 << 20}, got {MaxVocabulary}");
        if (MinDocumentFrequency < 1)
            problems.Add($"transform.text.minDocumentFrequency must be at least 1, got {MinDocumentFrequency}");
        if (MinTokenLength is < 1 or > 32)
            problems.Add($"transform.text.minTokenLength must be between 1 and 32, got {MinTokenLength}");
        return problems;
    }
}

/// <summary>
/// One text column's fitted encoding: lower-cased word tokens → term slots (hashed buckets, or a vocabulary plus
/// one OOV slot) weighted by TF-IDF with the idf of the train documents (smooth: ln((1 + N) / (1 + df)) + 1), the
/// term part L2-normalized, then the optional flags. A pure function of the text and this record, so training,
/// evaluation and serving encode a document identically.
/// </summary>
public sealed partial record TextEncoding
{
    /// <summary>The flags appended after the term slots when <see cref="Flags"/> is set, in this order.</summary>
    public static readonly IReadOnlyList<string> FlagNames = ["stack_trace", "code", "question", "link", "log_length"];

    [JsonPropertyName("mode")]
    public TextTermMode Mode { get; init; }

    [JsonPropertyName("buckets")]
    public int Buckets { get; init; }

    [JsonPropertyName("vocabulary")]
    public IReadOnlyList<string> Vocabulary { get; init; } = [];

    /// <summary>The idf of each term slot (buckets, or vocabulary then OOV).</summary>
    [JsonPropertyName("idf")]
    public IReadOnlyList<double> Idf { get; init; } = [];

    [JsonPropertyName("minTokenLength")]
    public int MinTokenLength { get; init; } = 2;

    [JsonPropertyName("stripQuoted")]
    public bool StripQuoted { get; init; }

    [JsonPropertyName("flags")]
    public bool Flags { get; init; }

    /// <summary>log(1 + tokens) on train: mean and std, so the length flag is standardized.</summary>
    [JsonPropertyName("lengthCenter")]
    public double LengthCenter { get; init; }

    [JsonPropertyName("lengthScale")]
    public double LengthScale { get; init; } = 1;

    [JsonIgnore]
    public int TermSlots => Mode == TextTermMode.Hashing ? Buckets : Vocabulary.Count + 1;

    [JsonIgnore]
    public int Width => TermSlots + (Flags ? FlagNames.Count : 0);

    // Keyed by the vocabulary list itself, not a field: record equality and `with` copies stay about the data.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IReadOnlyList<string>, Dictionary<string, int>> Indexes = new();

    private Dictionary<string, int> Index => Indexes.GetValue(Vocabulary, v => v.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i, StringComparer.Ordinal));

    /// <summary>Fits the term slots, idf and length statistics on the train documents only.</summary>
    public static TextEncoding Fit(IEnumerable<string?> trainDocuments, TextOptions options)
    {
        var docs = trainDocuments.Select(d => Prepare(d, options.StripQuoted)).ToList();
        var tokenized = docs.Select(d => Tokenize(d, options.MinTokenLength)).ToList();
        var n = tokenized.Count;
        var lengths = tokenized.Select(t => Math.Log(1 + t.Count)).ToList();
        var lengthMean = n > 0 ? lengths.Average() : 0;
        var lengthStd = n > 0 ? Math.Sqrt(lengths.Sum(l => (l - lengthMean) * (l - lengthMean)) / n) : 1;
        var shell = new TextEncoding
        {
            Mode = options.Mode,
            Buckets = options.Mode == TextTermMode.Hashing ? options.Buckets : 0,
            MinTokenLength = options.MinTokenLength,
            StripQuoted = options.StripQuoted,
            Flags = options.Flags,
            LengthCenter = lengthMean,
            LengthScale = lengthStd > 1e-12 ? lengthStd : 1,
        };
        if (options.Mode == TextTermMode.Vocabulary)
        {
            var df = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var tokens in tokenized)
            {
                foreach (var t in tokens.Distinct(StringComparer.Ordinal))
                    df[t] = df.GetValueOrDefault(t) + 1;
            }

            // Most documents first, ties by text: the layout is a function of the train data alone.
            shell = shell with
            {
                Vocabulary = df.Where(kv => kv.Value >= options.MinDocumentFrequency)
                    .OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
                    .Take(options.MaxVocabulary).Select(kv => kv.Key).ToList(),
            };
        }

        var slotDf = new int[shell.TermSlots];
        foreach (var tokens in tokenized)
        {
            foreach (var slot in tokens.Select(shell.SlotOf).Distinct())
                slotDf[slot]++;
        }

        return shell with { Idf = slotDf.Select(d => Math.Log((1.0 + n) / (1.0 + d)) + 1).ToArray() };
    }

    /// <summary>Writes <see cref="Width"/> features of <paramref name="text"/> (null is an empty document).</summary>
    public void Encode(string? text, Span<float> destination)
    {
        destination[..Width].Clear();
        var body = Prepare(text, StripQuoted);
        var tokens = Tokenize(body, MinTokenLength);
        var counts = new Dictionary<int, int>();
        foreach (var t in tokens)
        {
            var slot = SlotOf(t);
            counts[slot] = counts.GetValueOrDefault(slot) + 1;
        }

        double norm = 0;
        foreach (var (slot, count) in counts)
        {
            var w = count * Idf[slot];
            destination[slot] = (float)w;
            norm += w * w;
        }

        if (norm > 0)
        {
            var inv = 1 / Math.Sqrt(norm);
            foreach (var slot in counts.Keys)
                destination[slot] = (float)(destination[slot] * inv);
        }

        if (!Flags)
            return;
        var at = TermSlots;
        destination[at] = StackTrace().IsMatch(body) ? 1f : 0f;
        destination[at + 1] = LooksLikeCode(body) ? 1f : 0f;
        destination[at + 2] = body.Contains('?', StringComparison.Ordinal) ? 1f : 0f;
        destination[at + 3] = Link().IsMatch(body) ? 1f : 0f;
        destination[at + 4] = (float)((Math.Log(1 + tokens.Count) - LengthCenter) / LengthScale);
    }

    /// <summary>Problems that make the encoding unusable (a hand-edited or truncated transform).</summary>
    public IReadOnlyList<string> Problems(string column)
    {
        var problems = new List<string>();
        if (Mode == TextTermMode.Hashing && Buckets < 1)
            problems.Add($"text column '{column}' hashes into {Buckets} buckets");
        if (Idf.Count != TermSlots)
            problems.Add($"text column '{column}' has {Idf.Count} idf values for {TermSlots} term slots");
        if (Idf.Any(v => !double.IsFinite(v)))
            problems.Add($"text column '{column}' has a non-finite idf");
        if (!double.IsFinite(LengthScale) || LengthScale == 0)
            problems.Add($"text column '{column}' has length scale {LengthScale}");
        return problems;
    }

    /// <summary>Lower-cased runs of letters and digits at least <paramref name="minLength"/> long.</summary>
    public static List<string> Tokenize(string text, int minLength)
    {
        var tokens = new List<string>();
        var sb = new StringBuilder();
        foreach (var ch in text)
        {
            if (char.IsLetterOrDigit(ch))
            {
                sb.Append(char.ToLowerInvariant(ch));
                continue;
            }

            Flush();
        }

        Flush();
        return tokens;

        void Flush()
        {
            if (sb.Length >= minLength && sb.Length <= 64)
                tokens.Add(sb.ToString());
            sb.Clear();
        }
    }

    /// <summary>The text as encoded: line endings normalized and, with <paramref name="stripQuoted"/>, the quoted reply text removed.</summary>
    public static string Prepare(string? text, bool stripQuoted)
    {
        if (string.IsNullOrEmpty(text))
            return "";
        text = text.Replace("\r\n", "\n", StringComparison.Ordinal);
        if (!stripQuoted)
            return text;
        var kept = new StringBuilder(text.Length);
        foreach (var line in text.Split('\n'))
        {
            var t = line.TrimStart();
            if (t.StartsWith("-----Original Message-----", StringComparison.OrdinalIgnoreCase))
                break;
            if (t.StartsWith('>') || QuoteHeader().IsMatch(t))
                continue;
            kept.Append(line).Append('\n');
        }

        return kept.ToString();
    }

    private int SlotOf(string token)
    {
        if (Mode == TextTermMode.Hashing)
            return (int)(Fnv1a(token) % (uint)Buckets);
        return Index.TryGetValue(token, out var i) ? i : Vocabulary.Count;
    }

    /// <summary>FNV-1a over the token's UTF-8 bytes: fixed by this code, unlike string.GetHashCode, which varies per process.</summary>
    public static uint Fnv1a(string token)
    {
        var hash = 2166136261u;
        Span<byte> buffer = stackalloc byte[256];
        var n = Encoding.UTF8.GetBytes(token.AsSpan(0, Math.Min(token.Length, 64)), buffer);
        foreach (var b in buffer[..n])
            hash = unchecked((hash ^ b) * 16777619u);
        return hash;
    }

    private static bool LooksLikeCode(string text)
    {
        if (text.Contains("```", StringComparison.Ordinal))
            return true;
        var lines = 0;
        foreach (var line in text.Split('\n'))
        {
            var t = line.TrimEnd();
            if (t.EndsWith(';') || t.EndsWith('{') || t.EndsWith('}') || CodeLine().IsMatch(t))
                lines++;
            if (lines >= 2)
                return true;
        }

        return false;
    }

    [GeneratedRegex(@"^On .{4,200}wrote:\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex QuoteHeader();

    [GeneratedRegex(@"(\bat [\w$.<>]+\([\w$.]*(\.java:\d+|Native Method|Unknown Source)\)|Exception in thread|\b[\w.]+(Exception|Error): |Traceback \(most recent call last\)|File ""[^""]+"", line \d+)", RegexOptions.CultureInvariant)]
    private static partial Regex StackTrace();

    [GeneratedRegex(@"(https?://|www\.)\S+", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex Link();

    [GeneratedRegex(@"^\s*(<[a-zA-Z][\w.-]*>.*</[\w.-]+>|(import|def|class|public|private|return|mvn|\$) .+)$", RegexOptions.CultureInvariant)]
    private static partial Regex CodeLine();
}
