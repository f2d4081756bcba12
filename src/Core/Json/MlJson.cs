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
        };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
