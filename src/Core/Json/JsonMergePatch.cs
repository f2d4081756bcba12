using System.Text.Json.Nodes;

namespace MlFunctions.Core.Json;

/// <summary>
/// JSON Merge Patch (RFC 7386): an object in the patch merges into the target member by member, a null removes the
/// member, anything else (numbers, strings, arrays) replaces it whole. Pipeline budgets are merge patches over a spec.
/// </summary>
public static class JsonMergePatch
{
    /// <summary>The target with the patch applied. Neither input is changed.</summary>
    public static JsonNode? Apply(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject members)
            return patch?.DeepClone();

        var result = target is JsonObject o ? (JsonObject)o.DeepClone() : [];
        foreach (var (name, value) in members)
        {
            if (value is null)
            {
                result.Remove(name);
                continue;
            }

            var current = result[name];
            result.Remove(name);
            result[name] = Apply(current, value);
        }

        return result;
    }
}
