using System.Globalization;

namespace MlFunctions.Core.Datasets;

/// <summary>One implicit-feedback event (or, after <see cref="InteractionData.Aggregate"/>, one (user, item) pair: summed weight, last time).</summary>
public sealed record Interaction(string User, string Item, double Weight, DateTime Time);

/// <summary>Which CSV columns hold the user, the item, the weight (optional: 1 per row) and the time (optional: row order).</summary>
public sealed record InteractionColumns
{
    public string User { get; init; } = "user";

    public string Item { get; init; } = "item";

    public string? Weight { get; init; } = "weight";

    public string? Time { get; init; } = "time";

    /// <summary>
    /// "interactions" (the columns above), or "online_retail": the UCI Online Retail transaction log
    /// (InvoiceNo, StockCode, Quantity, InvoiceDate, CustomerID), cleaned by <see cref="OnlineRetail"/>.
    /// </summary>
    public string Format { get; init; } = InteractionData.PlainFormat;
}

/// <summary>What reading and cleaning kept and dropped, with the reason for each dropped count.</summary>
public sealed record InteractionsProfile
{
    public long RowsRead { get; init; }

    public long RowsKept { get; init; }

    /// <summary>Dropped rows by reason ("cancellation", "negative quantity", "no customer id", …).</summary>
    public IReadOnlyDictionary<string, long> Dropped { get; init; } = new Dictionary<string, long>();

    public int Users { get; init; }

    public int Items { get; init; }

    /// <summary>Distinct (user, item) pairs after aggregation.</summary>
    public long Pairs { get; init; }

    /// <summary>Pairs / (users × items).</summary>
    public double Density { get; init; }

    public DateTime? FirstTime { get; init; }

    public DateTime? LastTime { get; init; }

    public static InteractionsProfile Of(long read, IReadOnlyDictionary<string, long> dropped, IReadOnlyList<Interaction> rows, IReadOnlyList<Interaction> pairs)
    {
        var users = pairs.Select(p => p.User).Distinct(StringComparer.Ordinal).Count();
        var items = pairs.Select(p => p.Item).Distinct(StringComparer.Ordinal).Count();
        return new InteractionsProfile
        {
            RowsRead = read,
            RowsKept = rows.Count,
            Dropped = dropped,
            Users = users,
            Items = items,
            Pairs = pairs.Count,
            Density = users == 0 || items == 0 ? 0 : pairs.Count / ((double)users * items),
            FirstTime = rows.Count == 0 ? null : rows.Min(r => r.Time),
            LastTime = rows.Count == 0 ? null : rows.Max(r => r.Time),
        };
    }
}

/// <summary>A dense index for raw ids (users or items), in first-seen order of the sorted ids: stored with the model so serving maps raw ids.</summary>
public sealed class IdMap
{
    private readonly Dictionary<string, int> _index;

    public IdMap(IReadOnlyList<string> ids)
    {
        Ids = ids;
        _index = new Dictionary<string, int>(ids.Count, StringComparer.Ordinal);
        for (var i = 0; i < ids.Count; i++)
        {
            if (!_index.TryAdd(ids[i], i))
            {
                throw new ArgumentException($"id '{ids[i]}' appears twice in an id map");
            }
        }
    }

    /// <summary>Raw id of each index.</summary>
    public IReadOnlyList<string> Ids { get; }

    public int Count => Ids.Count;

    public bool TryIndex(string id, out int index) => _index.TryGetValue(id, out index);

    public int this[string id] => _index[id];

    /// <summary>Ordinal-sorted distinct ids: the map does not depend on row order.</summary>
    public static IdMap Fit(IEnumerable<string> ids) => new(ids.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray());
}

/// <summary>Per-user held-out items and the training pairs, as indices.</summary>
public sealed record InteractionSplit(
    IReadOnlyList<Interaction> Train,
    IReadOnlyList<Interaction> Val,
    IReadOnlyList<Interaction> Test);

/// <summary>Reading, aggregation and the leave-last-k-out split of interaction data: pure, no I/O beyond the given sources.</summary>
public static class InteractionData
{
    public const string PlainFormat = "interactions";
    public const string OnlineRetailFormat = "online_retail";

    private static readonly string[] TimeFormats = ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-ddTHH:mm:ss", "yyyy-MM-ddTHH:mm:ssZ", "yyyy-MM-dd", "M/d/yyyy H:mm"];

    /// <summary>Reads and cleans the rows of <paramref name="sources"/> in the given format; a broken row fails with its file, line and reason.</summary>
    public static (IReadOnlyList<Interaction> Rows, long Read, IReadOnlyDictionary<string, long> Dropped) Read(IReadOnlyList<CsvSource> sources, InteractionColumns columns) =>
        columns.Format switch
        {
            PlainFormat => ReadPlain(sources, columns),
            OnlineRetailFormat => OnlineRetail.Clean(sources),
            var f => throw new ArgumentException($"interaction format '{f}' is not known: use '{PlainFormat}' or '{OnlineRetailFormat}'"),
        };

    private static (IReadOnlyList<Interaction>, long, IReadOnlyDictionary<string, long>) ReadPlain(IReadOnlyList<CsvSource> sources, InteractionColumns columns)
    {
        var names = new List<string> { columns.User, columns.Item };
        if (columns.Weight is { } w)
        {
            names.Add(w);
        }

        if (columns.Time is { } t)
        {
            names.Add(t);
        }

        var rows = new List<Interaction>();
        var dropped = new SortedDictionary<string, long>(StringComparer.Ordinal);
        long read = 0;
        foreach (var record in CsvTableReader.ReadRecords(sources, columns: names))
        {
            read++;
            var v = record.Values;
            string user = v[0].Trim(), item = v[1].Trim();
            if (user.Length == 0 || item.Length == 0)
            {
                dropped["empty user or item"] = dropped.GetValueOrDefault("empty user or item") + 1;
                continue;
            }

            var weight = 1.0;
            var next = 2;
            if (columns.Weight is not null)
            {
                if (!double.TryParse(v[next], NumberStyles.Float, CultureInfo.InvariantCulture, out weight) || !double.IsFinite(weight))
                {
                    throw new InvalidDataException($"{record.Source} line {record.Line}: weight '{v[next]}' is not a number");
                }

                next++;
                if (weight <= 0)
                {
                    dropped["non-positive weight"] = dropped.GetValueOrDefault("non-positive weight") + 1;
                    continue;
                }
            }

            var time = DateTime.UnixEpoch.AddSeconds(read);
            if (columns.Time is not null)
            {
                time = ParseTime(v[next], record);
            }

            rows.Add(new Interaction(user, item, weight, time));
        }

        return (rows, read, dropped);
    }

    /// <summary>A time as ISO-like text or Unix seconds.</summary>
    public static DateTime ParseTime(string text, CsvRecord record)
    {
        var s = text.Trim();
        if (DateTime.TryParseExact(s, TimeFormats, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var t))
        {
            return t;
        }

        if (long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var unix))
        {
            return DateTime.UnixEpoch.AddSeconds(unix);
        }

        throw new InvalidDataException($"{record.Source} line {record.Line}: time '{text}' is neither yyyy-MM-dd HH:mm:ss nor Unix seconds");
    }

    /// <summary>One row per (user, item): weights summed, the latest time kept. Ordered by user, then time, then item.</summary>
    public static IReadOnlyList<Interaction> Aggregate(IEnumerable<Interaction> rows) =>
        rows.GroupBy(r => (r.User, r.Item))
            .Select(g => new Interaction(g.Key.User, g.Key.Item, g.Sum(r => r.Weight), g.Max(r => r.Time)))
            .OrderBy(p => p.User, StringComparer.Ordinal).ThenBy(p => p.Time).ThenBy(p => p.Item, StringComparer.Ordinal)
            .ToList();

    /// <summary>
    /// Leave-last-k-out by time per user: each user's <paramref name="k"/> latest pairs (ties broken by item id)
    /// go to test, the <paramref name="k"/> latest of the rest to val, the remainder to train. A user holds out only
    /// while at least one pair stays in train, so no held-out user is cold. No train pair is later than its user's
    /// val or test pairs, and no val pair later than the test pairs.
    /// </summary>
    public static InteractionSplit LeaveLastOut(IReadOnlyList<Interaction> pairs, int k = 1, bool validation = true)
    {
        if (k < 1)
        {
            throw new ArgumentException($"leave-last-k-out needs k >= 1, got {k}");
        }

        List<Interaction> train = [], val = [], test = [];
        foreach (var user in pairs.GroupBy(p => p.User, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var ordered = user.OrderBy(p => p.Time).ThenBy(p => p.Item, StringComparer.Ordinal).ToList();
            var rest = ordered.Count;
            if (rest > k)
            {
                test.AddRange(ordered.GetRange(rest - k, k));
                rest -= k;
            }

            if (validation && rest > k)
            {
                val.AddRange(ordered.GetRange(rest - k, k));
                rest -= k;
            }

            train.AddRange(ordered.GetRange(0, rest));
        }

        return new InteractionSplit(train, val, test);
    }
}

/// <summary>Counts of the UCI Online Retail cleaning, by reason.</summary>
public static class OnlineRetail
{
    public const string Cancellation = "cancellation (InvoiceNo starts with C)";
    public const string NegativeQuantity = "non-positive quantity";
    public const string NoCustomer = "no CustomerID";

    /// <summary>The columns every file must have (others, like Description, are ignored).</summary>
    public static readonly IReadOnlyList<string> Columns = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "CustomerID"];

    /// <summary>
    /// Drops cancellations (InvoiceNo "C…"), rows with quantity ≤ 0 and rows without a CustomerID, counting each
    /// reason once per row (in that order: a cancelled row with a negative quantity counts as a cancellation).
    /// Every kept row is one purchase line of weight 1; the customer id loses the CSV's ".0".
    /// </summary>
    public static (IReadOnlyList<Interaction> Rows, long Read, IReadOnlyDictionary<string, long> Dropped) Clean(IReadOnlyList<CsvSource> sources)
    {
        var rows = new List<Interaction>();
        var dropped = new SortedDictionary<string, long>(StringComparer.Ordinal) { [Cancellation] = 0, [NegativeQuantity] = 0, [NoCustomer] = 0 };
        long read = 0;
        foreach (var record in CsvTableReader.ReadRecords(sources, columns: Columns))
        {
            read++;
            var v = record.Values;
            var invoice = v[0].Trim();
            if (invoice.StartsWith('C') || invoice.StartsWith('c'))
            {
                dropped[Cancellation]++;
                continue;
            }

            if (!double.TryParse(v[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var quantity))
            {
                throw new InvalidDataException($"{record.Source} line {record.Line}: Quantity '{v[2]}' is not a number");
            }

            if (quantity <= 0)
            {
                dropped[NegativeQuantity]++;
                continue;
            }

            var customer = v[4].Trim();
            if (customer.Length == 0)
            {
                dropped[NoCustomer]++;
                continue;
            }

            if (customer.EndsWith(".0", StringComparison.Ordinal))
            {
                customer = customer[..^2];
            }

            var item = v[1].Trim();
            if (item.Length == 0)
            {
                throw new InvalidDataException($"{record.Source} line {record.Line}: StockCode is empty");
            }

            rows.Add(new Interaction(customer, item, 1, InteractionData.ParseTime(v[3], record)));
        }

        return (rows, read, dropped);
    }
}

/// <summary>How interaction data is prepared: where the columns are and how many of each user's last pairs are held out.</summary>
public sealed record InteractionsRecipe
{
    public InteractionColumns Columns { get; init; } = new();

    /// <summary>k of leave-last-k-out, for test and again for val.</summary>
    public int HoldOut { get; init; } = 1;

    /// <summary>Popular items kept in the transform as the unknown-user fallback.</summary>
    public int PopularCount { get; init; } = 100;
}

/// <summary>Prepared interactions: shards (float [user, item, weight], label = item), the id-map transform and the profile.</summary>
public sealed record InteractionsPrepared(
    IReadOnlyDictionary<string, PreparedShard> Shards,
    Transforms.InteractionTransform Transform,
    InteractionsProfile Profile,
    InteractionSplit Split);

/// <summary>Raw interaction files to training data, pure: clean, aggregate, id maps over every pair, leave-last-k-out by time.</summary>
public static class InteractionPreparation
{
    public static InteractionsPrepared Prepare(IReadOnlyList<CsvSource> sources, InteractionsRecipe recipe)
    {
        var (rows, read, dropped) = InteractionData.Read(sources, recipe.Columns);
        if (rows.Count == 0)
        {
            throw new InvalidDataException($"no interactions left after cleaning {read} rows ({string.Join(", ", dropped.Select(d => $"{d.Value} {d.Key}"))})");
        }

        var pairs = InteractionData.Aggregate(rows);
        var profile = InteractionsProfile.Of(read, dropped, rows, pairs);
        var split = InteractionData.LeaveLastOut(pairs, recipe.HoldOut);
        var users = IdMap.Fit(pairs.Select(p => p.User));
        var items = IdMap.Fit(pairs.Select(p => p.Item));
        PreparedShard Shard(IReadOnlyList<Interaction> part)
        {
            var features = new float[part.Count * 3];
            var labels = new int[part.Count];
            for (var i = 0; i < part.Count; i++)
            {
                features[3 * i] = users[part[i].User];
                features[(3 * i) + 1] = labels[i] = items[part[i].Item];
                features[(3 * i) + 2] = (float)part[i].Weight;
            }

            return new PreparedShard([3], features, labels);
        }

        var shards = new Dictionary<string, PreparedShard>
        {
            [PreparedLayout.Train] = Shard(split.Train),
            [PreparedLayout.Val] = Shard(split.Val),
            [PreparedLayout.Test] = Shard(split.Test),
        };

        // Serving excludes what the served model was trained on: the final retrain's train+val pairs. The test pairs
        // stay recommendable, so evaluating through serving scores exactly the offline full-catalogue ranking.
        var seen = new List<int>[users.Count];
        for (var u = 0; u < seen.Length; u++)
        {
            seen[u] = [];
        }

        var popularity = new int[items.Count];
        foreach (var p in split.Train.Concat(split.Val))
        {
            seen[users[p.User]].Add(items[p.Item]);
            popularity[items[p.Item]]++;
        }

        var transform = new Transforms.InteractionTransform
        {
            Users = users.Ids,
            Items = items.Ids,
            Seen = seen.Select(s => s.Order().ToArray()).ToArray(),
            Popular = Enumerable.Range(0, items.Count).OrderByDescending(i => popularity[i]).ThenBy(i => i).Take(recipe.PopularCount).ToArray(),
        };
        return new InteractionsPrepared(shards, transform, profile, split);
    }
}
