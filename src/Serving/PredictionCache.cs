using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using MlFunctions.Core.Registry;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving;

/// <summary>Prediction cache settings (Clipper's cache): bounded by entries and by output bytes.</summary>
public sealed record PredictionCacheOptions
{
    /// <summary>On by default: an ONNX graph without random ops is deterministic, so equal inputs give equal outputs.</summary>
    public bool Enabled { get; init; } = true;
    public int MaxEntries { get; init; } = 10_000;

    /// <summary>Bytes of cached outputs (10,000 MNIST answers of 10 floats are 400 KB; the bound is for wide outputs).</summary>
    public long MaxBytes { get; init; } = 64L * 1024 * 1024;
}

/// <summary>
/// Clipper's prediction cache: a bounded LRU of outputs keyed by (model, version, sha256 of the request's inputs,
/// requested outputs and <c>transformed</c> flag). The version is part of the key, so a moved alias or a policy
/// choosing another version can never be answered from another version's entries.
/// </summary>
internal sealed class PredictionCache(PredictionCacheOptions options)
{
    internal readonly record struct Key(string Model, int Version, string Hash);

    private sealed record Entry(Key Key, IReadOnlyList<InferTensor> Outputs, long Bytes);

    private readonly Lock _lock = new();
    private readonly Dictionary<Key, LinkedListNode<Entry>> _map = [];
    private readonly LinkedList<Entry> _lru = new(); // most recent first
    private long _bytes;

    public int Count { get { lock (_lock) return _map.Count; } }

    public bool TryGet(Key key, out IReadOnlyList<InferTensor> outputs)
    {
        lock (_lock)
        {
            if (_map.TryGetValue(key, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                outputs = node.Value.Outputs;
                return true;
            }
        }
        outputs = [];
        return false;
    }

    public void Add(Key key, IReadOnlyList<InferTensor> outputs)
    {
        long bytes = outputs.Sum(o => o.Data is string[] s ? s.Sum(x => (long)x.Length * 2) : (long)Buffer.ByteLength(o.Data));
        if (bytes > options.MaxBytes)
            return;
        lock (_lock)
        {
            if (_map.ContainsKey(key))
                return;
            _map[key] = _lru.AddFirst(new Entry(key, outputs, bytes));
            _bytes += bytes;
            while (_map.Count > options.MaxEntries || _bytes > options.MaxBytes)
            {
                var last = _lru.Last!;
                _lru.RemoveLast();
                _map.Remove(last.Value.Key);
                _bytes -= last.Value.Bytes;
            }
        }
    }

    /// <summary>
    /// The cache key of a request. Inputs are hashed in name order with their datatype, shape and raw bytes (strings
    /// length-prefixed), so two requests share a key only when every tensor is bit-for-bit equal. ~2 µs for an MNIST image.
    /// </summary>
    public static Key KeyFor(ModelVersion version, InferRequest request, bool transformed)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Text(string s) => AppendText(hash, s);
        foreach (var input in request.Inputs.OrderBy(i => i.Name, StringComparer.Ordinal))
        {
            Text(input.Name);
            Text(input.Datatype);
            Text(string.Join(',', input.Shape));
            if (input.Data is string[] strings)
                foreach (var s in strings)
                    Text(s);
            else
                hash.AppendData(MemoryMarshal.CreateReadOnlySpan(ref MemoryMarshal.GetArrayDataReference(input.Data), Buffer.ByteLength(input.Data)));
        }
        Text(request.Outputs is null ? "*" : string.Join(',', request.Outputs.Select(o => o.Name).Order(StringComparer.Ordinal)));
        Text(transformed ? "t" : "r");
        return new Key(version.Name, version.Version, Convert.ToHexString(hash.GetHashAndReset()));
    }

    private static void AppendText(IncrementalHash hash, string s)
    {
        Span<byte> length = stackalloc byte[8];
        var bytes = Encoding.UTF8.GetBytes(s);
        BitConverter.TryWriteBytes(length, (long)bytes.Length);
        hash.AppendData(length);
        hash.AppendData(bytes);
    }
}
