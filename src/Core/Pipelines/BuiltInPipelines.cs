using System.Text.Json;
using MlFunctions.Core.Json;

namespace MlFunctions.Core.Pipelines;

/// <summary>
/// The pipeline specs that ship inside Core (embedded from <c>examples/pipelines/</c>), so the CLI, the triggers and the
/// Functions app run the same spec without a file on disk. <see cref="Mnist"/> is <c>examples/pipelines/mnist.json</c>:
/// the MNIST case study as a spec, with its default budget (≥ 99.2% on t10k: measured 99.53% in 223 s on 2 cores) and
/// its <c>quick</c> budget. Its <c>sourceDirectories</c> are relative to <c>examples/pipelines/</c> (for
/// <c>run examples/pipelines/mnist.json</c>); every other caller sets the dataset's source.
/// </summary>
public static class BuiltInPipelines
{
    public const string MnistName = "mnist";

    /// <summary>The names of the built-in specs.</summary>
    public static IReadOnlyList<string> Names { get; } = [MnistName];

    /// <summary>The MNIST spec, parsed fresh on each call (records are immutable, but a caller's <c>with</c> should not surprise another).</summary>
    public static PipelineSpec Mnist => Get(MnistName);

    /// <summary>The built-in spec <paramref name="name"/>; an unknown name throws naming the ones there are.</summary>
    public static PipelineSpec Get(string name)
    {
        if (!Names.Contains(name))
            throw new ArgumentException($"no built-in pipeline '{name}'; built in: {string.Join(", ", Names)}", nameof(name));
        return JsonSerializer.Deserialize<PipelineSpec>(Text(name), MlJson.Options)
            ?? throw new InvalidDataException($"the built-in pipeline {name}.json is null");
    }

    /// <summary>The spec file as shipped.</summary>
    public static string Text(string name)
    {
        var resource = $"MlFunctions.Core.Pipelines.BuiltIn.{name}.json";
        using var stream = typeof(BuiltInPipelines).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"Core has no embedded resource {resource}; is examples/pipelines/{name}.json in Core.csproj?");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
