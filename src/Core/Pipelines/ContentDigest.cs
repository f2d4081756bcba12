using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MlFunctions.Core.Json;

namespace MlFunctions.Core.Pipelines;

/// <summary>
/// Content digests of JSON-serializable values: sha256 over a canonical JSON form (MlJson names, object
/// members sorted by ordinal name, no whitespace), so two values that serialize to the same data have
/// the same digest whatever the member order of the type or dictionary that produced them.
/// </summary>
public static class ContentDigest
{
    private static readonly JsonWriterOptions Writer = new() { Encoder = MlJson.Options.Encoder, Indented = false };

    /// <summary>The canonical JSON text of <paramref name="value"/>.</summary>
    public static string CanonicalJson(object? value) => CanonicalJson(ToNode(value));

    public static string CanonicalJson(JsonNode? node)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, Writer))
        {
            Write(writer, node);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>sha256 (lowercase hex) of the canonical JSON of <paramref name="value"/>.</summary>
    public static string Of(object? value) => Sha256Hex(CanonicalJson(value));

    public static string Sha256Hex(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    public static JsonNode? ToNode(object? value) =>
        value is null ? null : JsonSerializer.SerializeToNode(value, value.GetType(), MlJson.Options);

    private static void Write(Utf8JsonWriter writer, JsonNode? node)
    {
        switch (node)
        {
            case null:
                writer.WriteNullValue();
                break;
            case JsonObject obj:
                writer.WriteStartObject();
                foreach (var (name, member) in obj.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(name);
                    Write(writer, member);
                }

                writer.WriteEndObject();
                break;
            case JsonArray array:
                writer.WriteStartArray();
                foreach (var item in array)
                {
                    Write(writer, item);
                }

                writer.WriteEndArray();
                break;
            default:
                node.WriteTo(writer);
                break;
        }
    }
}

/// <summary>
/// The identity of one step execution for caching: the key and the digest of each input member.
/// </summary>
/// <remarks>
/// The key is sha256 over (step name, step code version, canonical JSON of the step's <em>cache
/// content</em>). The cache content is a projection of the step input that holds only content: dataset
/// content hashes, parameter values, upstream artifact hashes. It must never hold artifact names or
/// paths. Kubeflow Pipelines keys its cache on artifact names/URIs, so a step whose input blob was
/// rewritten in place under the same name is served a stale cached result (kubeflow/pipelines#4857);
/// keying on content makes a changed byte a miss and a renamed-but-identical artifact a hit.
/// </remarks>
public sealed record StepFingerprint(string CacheKey, IReadOnlyDictionary<string, string> Inputs)
{
    private const string Scheme = "mlf-step-cache/v1";

    public static StepFingerprint Compute(string step, string codeVersion, object? cacheContent)
    {
        var node = ContentDigest.ToNode(cacheContent);
        var key = ContentDigest.Sha256Hex($"{Scheme}\n{step}\n{codeVersion}\n{ContentDigest.CanonicalJson(node)}");

        // Per-member digests make lineage say which input changed between two runs, not only that one did.
        var inputs = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (node is JsonObject obj)
        {
            foreach (var (name, member) in obj)
            {
                inputs[name] = ContentDigest.Sha256Hex(ContentDigest.CanonicalJson(member));
            }
        }
        else
        {
            inputs["input"] = ContentDigest.Sha256Hex(ContentDigest.CanonicalJson(node));
        }

        return new StepFingerprint(key, inputs);
    }
}
