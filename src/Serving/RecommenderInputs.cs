using MlFunctions.Core.Datasets;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Transforms;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving;

/// <summary>
/// How a recommender is served: a request carries raw user ids as V2 <c>BYTES</c> (input <see cref="UserInput"/>,
/// shape [n]) and optionally how many items to return (<see cref="KInput"/>, INT64 or INT32 [1], default
/// <see cref="DefaultK"/>). Serving maps each id through the stored id map, scores the user against the whole
/// catalogue with the model (one run of [items, 2] (user, item) pairs), drops the items the user already has
/// (<see cref="InteractionTransform.Seen"/>) and answers the top k item ids (<see cref="ItemsOutput"/>, BYTES
/// [n, k]) with their scores (<see cref="ScoresOutput"/>, FP32 [n, k]). An unknown user gets the most popular
/// items, scored 0 and flagged in <see cref="FallbackOutput"/> (BOOL [n]). The client never computes top-k.
/// </summary>
internal sealed class RecommenderInputs
{
    public const string UserInput = "user";
    public const string KInput = "k";
    public const string ItemsOutput = "items";
    public const string ScoresOutput = "scores";
    public const string FallbackOutput = "fallback";
    public const int DefaultK = 10;

    private readonly InteractionTransform _transform;
    private readonly IdMap _users;
    private readonly HashSet<int>[] _seen;
    private readonly long[] _pairs;

    public RecommenderInputs(InteractionTransform transform)
    {
        _transform = transform;
        _users = transform.UserMap();
        _seen = Enumerable.Range(0, _users.Count).Select(u => u < transform.Seen.Count ? transform.Seen[u].ToHashSet() : []).ToArray();
        _pairs = new long[Items * 2];
    }

    public int Items => _transform.Items.Count;

    public static IReadOnlyList<TensorMetadata> Metadata { get; } = [new(UserInput, Datatype.BYTES, [-1]), new(KInput, Datatype.INT64, [1])];

    public static IReadOnlyList<TensorMetadata> OutputMetadata { get; } =
        [new(ItemsOutput, Datatype.BYTES, [-1, -1]), new(ScoresOutput, Datatype.FP32, [-1, -1]), new(FallbackOutput, Datatype.BOOL, [-1])];

    /// <summary>The users and k of a request; every problem is a 400 naming what to send instead.</summary>
    public (string[] Users, int K) Parse(IReadOnlyList<InferTensor> inputs)
    {
        string[]? users = null;
        var k = Math.Min(DefaultK, Items);
        foreach (var input in inputs)
        {
            switch (input.Name)
            {
                case UserInput:
                    if (input.Datatype != Datatype.BYTES || input.Data is not string[] ids)
                        throw InferenceError.Invalid($"Input '{UserInput}' must be BYTES: the raw user ids as the data has them (e.g. \"17850\"), not {input.Datatype}.");
                    if (input.Shape.Length is not (1 or 2) || (input.Shape.Length == 2 && input.Shape[1] != 1) || ids.Length == 0)
                        throw InferenceError.Invalid($"Input '{UserInput}' must have shape [n] (or [n, 1]) with n >= 1; got [{string.Join(",", input.Shape)}].");
                    users = ids;
                    break;
                case KInput:
                    long value = input.Data switch
                    {
                        long[] { Length: 1 } l => l[0],
                        int[] { Length: 1 } i => i[0],
                        _ => throw InferenceError.Invalid($"Input '{KInput}' must be one INT64 or INT32 value; got {input.Datatype} [{string.Join(",", input.Shape)}]."),
                    };
                    if (value < 1 || value > Items)
                        throw InferenceError.Invalid($"Input '{KInput}' is {value}: it must be between 1 and the catalogue's {Items} items.");
                    k = (int)value;
                    break;
                default:
                    throw InferenceError.Invalid($"Unknown input '{input.Name}'; a recommender takes '{UserInput}' (BYTES user ids) and optionally '{KInput}' (INT64).");
            }
        }

        return (users ?? throw InferenceError.Invalid($"Missing input '{UserInput}': send the raw user ids as BYTES, shape [n]."), k);
    }

    /// <summary>Top k for each user; <paramref name="score"/> runs the model on int64 (user, item) pairs [items, 2] and returns one score per item.</summary>
    public IReadOnlyList<InferTensor> Recommend(string[] users, int k, Func<long[], float[]> score, string[] outputs)
    {
        var ids = new string[users.Length * k];
        var scores = new float[users.Length * k];
        var fallback = new bool[users.Length];
        for (var r = 0; r < users.Length; r++)
        {
            IReadOnlyList<(int Item, float Score)> top;
            if (_users.TryIndex(users[r].Trim(), out var u))
            {
                long[] pairs;
                lock (_pairs)
                {
                    pairs = (long[])_pairs.Clone();
                }

                for (var i = 0; i < Items; i++)
                {
                    pairs[2 * i] = u;
                    pairs[(2 * i) + 1] = i;
                }

                top = RankingMetrics.TopK(score(pairs), _seen[u], k);
            }
            else
            {
                fallback[r] = true;
                top = _transform.Popular.Take(k).Select(i => (i, 0f)).ToList();
            }

            for (var j = 0; j < k; j++)
            {
                // A user who has seen nearly everything may have fewer than k unseen items: the rest stay empty.
                ids[(r * k) + j] = j < top.Count ? _transform.Items[top[j].Item] : "";
                scores[(r * k) + j] = j < top.Count ? top[j].Score : 0f;
            }
        }

        var all = new Dictionary<string, InferTensor>
        {
            [ItemsOutput] = new(ItemsOutput, Datatype.BYTES, [users.Length, k], ids),
            [ScoresOutput] = new(ScoresOutput, Datatype.FP32, [users.Length, k], scores),
            [FallbackOutput] = new(FallbackOutput, Datatype.BOOL, [users.Length], fallback),
        };
        return outputs.Select(o => all[o]).ToList();
    }
}
