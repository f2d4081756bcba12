using System.Text.Json;
using DurableTask.Core.Serializing;
using MlFunctions.Core.Json;

namespace MlFunctions.Local.Engine;

/// <summary>
/// DTFx's own converter is Newtonsoft with <c>$type</c> names, which leaks .NET type names into the
/// task hub and disagrees with the SDK shims (System.Text.Json). This one makes every payload the
/// client stores plain JSON, the same as Azure Functions stores.
/// </summary>
public sealed class StjDataConverter : DataConverter
{
    public static readonly StjDataConverter Instance = new();

    public override string? Serialize(object? value) => Serialize(value, formatted: false);

    public override string? Serialize(object? value, bool formatted) =>
        value is null ? null : JsonSerializer.Serialize(value, value.GetType(), MlJson.Options);

    public override object? Deserialize(string? data, Type objectType) =>
        data is null ? null : JsonSerializer.Deserialize(data, objectType, MlJson.Options);
}
