using System.Text.Json;
using System.Text.Json.Serialization;

namespace MlFunctions.Core.Json;

/// <summary>
/// The JSON settings for everything that crosses a process boundary: orchestration inputs and outputs,
/// queue messages, blobs and HTTP bodies. Both hosts use these, so the JSON stored by the local engine
/// and by Azure Functions is the same.
/// </summary>
public static class MlJson
{
    public static readonly JsonSerializerOptions Options = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,

            // Error messages quote names ('x'); the default encoder would write \u0027. These bodies are
            // JSON for API clients, never embedded in HTML.
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
