using System.Text.RegularExpressions;

namespace MlFunctions.Orchestrations.Pipelines;

public enum StepTargetKind
{
    Activity,
    SubOrchestration,
}

/// <summary>
/// A step definition: which activity or sub-orchestration does the work, the version of that code, and
/// the step's cache content. Define steps once (static fields) and run them with
/// <see cref="PipelineRun.StepAsync{TIn, TOut}"/>.
/// </summary>
/// <remarks>
/// <see cref="CacheContent"/> projects the input onto what determines the output: content hashes of
/// datasets and upstream artifacts, and parameter values. Leave out names, paths, URIs and run ids:
/// they do not change the output, and keying on them is how Kubeflow serves stale results
/// (kubeflow/pipelines#4857; see <see cref="Core.Pipelines.StepFingerprint"/>). Bump
/// <see cref="CodeVersion"/> when the step's code changes what it produces.
/// </remarks>
public sealed partial class PipelineStep<TIn, TOut>
{
    private PipelineStep(string name, string codeVersion, StepTargetKind kind, string target, Func<TIn, object?> cacheContent)
    {
        // The name becomes part of a blob name (lineage) and must read well in a run report.
        if (!StepNames.IsValid(name))
        {
            throw new ArgumentException($"Step name '{name}' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.", nameof(name));
        }

        ArgumentException.ThrowIfNullOrWhiteSpace(codeVersion);
        ArgumentException.ThrowIfNullOrWhiteSpace(target);
        ArgumentNullException.ThrowIfNull(cacheContent);
        Name = name;
        CodeVersion = codeVersion;
        Kind = kind;
        Target = target;
        CacheContent = cacheContent;
    }

    public string Name { get; }

    public string CodeVersion { get; }

    public StepTargetKind Kind { get; }

    /// <summary>The activity or orchestration name (a constant from <see cref="Core.ActivityNames"/> or <see cref="Core.OrchestrationNames"/>).</summary>
    public string Target { get; }

    public Func<TIn, object?> CacheContent { get; }

    public static PipelineStep<TIn, TOut> Activity(string name, string codeVersion, string activity, Func<TIn, object?> cacheContent) =>
        new(name, codeVersion, StepTargetKind.Activity, activity, cacheContent);

    public static PipelineStep<TIn, TOut> SubOrchestration(string name, string codeVersion, string orchestration, Func<TIn, object?> cacheContent) =>
        new(name, codeVersion, StepTargetKind.SubOrchestration, orchestration, cacheContent);
}

internal static partial class StepNames
{
    public static bool IsValid(string? name) => name is not null && Pattern().IsMatch(name);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex Pattern();
}
