using System.Text.Json;
using MlFunctions.Core;
using MlFunctions.Core.Json;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;

namespace MlFunctions.Api.Durable;

/// <summary>
/// Checks a start request's input before anything is scheduled, for the orchestrations whose input has
/// rules: a bad sweep spec or training job is a 400 listing every problem, not a failed instance later.
/// The orchestrations check again (they can be started by other means).
/// </summary>
public static class OrchestrationInputs
{
    public static void EnsureValid(string orchestration, JsonElement? body)
    {
        var problems = orchestration switch
        {
            OrchestrationNames.HyperparameterSweep => Read<SweepInput>(body, orchestration) is { Spec: { } spec } ? spec.Validate() : ["the input needs a spec: {\"spec\": {...}}"],
            OrchestrationNames.TrainModel => Read<TrainModelInput>(body, orchestration) is { Job: not null } input ? input.Validate() : ["the input needs a job: {\"job\": {...}}"],
            OrchestrationNames.TrainingPipeline => Read<MlFunctions.Core.Pipelines.PipelineSpec>(body, orchestration) is { } pipeline
                ? pipeline.Problems()
                : ["the input needs a pipeline spec"],
            _ => [],
        };
        if (problems.Count > 0)
        {
            throw new BadRequestException($"invalid {orchestration} input: {string.Join("; ", problems)}");
        }
    }

    /// <summary>
    /// <c>POST api/orchestrators/MnistPipeline</c> with an <see cref="MlFunctions.Core.Pipelines.MnistPipelineInput"/>: the
    /// former orchestration's input, mapped onto the built-in MNIST spec (<see cref="MlFunctions.Core.Pipelines.MnistPipelineInput.ToSpec"/>)
    /// so existing clients keep starting the same run, now a <c>TrainingPipeline</c>. Every problem of the spec is a 400.
    /// </summary>
    public static MlFunctions.Core.Pipelines.PipelineSpec LegacyMnistSpec(JsonElement? body)
    {
        var legacy = Read<MlFunctions.Core.Pipelines.MnistPipelineInput>(body, OrchestrationNames.MnistPipeline);
        if (legacy?.Dataset is null)
            throw new BadRequestException("invalid MnistPipeline input: the input needs a dataset: {\"dataset\": {\"name\": \"mnist\", \"sourceDirectories\": [...]}} (or sourceContainer/sourcePrefix). MnistPipeline is now the built-in mnist spec on TrainingPipeline; POST api/pipelines/{name}/runs with a spec for everything a spec can say");
        var spec = legacy.ToSpec();
        var problems = spec.Problems();
        if (problems.Count > 0)
            throw new BadRequestException($"invalid {OrchestrationNames.MnistPipeline} input: {string.Join("; ", problems)}");
        return spec;
    }

    /// <summary>Reads a typed body; shape errors (missing required fields, wrong types) are a 400 with the parser's words.</summary>
    public static T? Read<T>(JsonElement? body, string what)
        where T : class
    {
        if (body is null)
        {
            return null;
        }

        try
        {
            return body.Value.Deserialize<T>(MlJson.Options);
        }
        catch (JsonException e)
        {
            throw new BadRequestException($"invalid {what} input: {e.Message}");
        }
    }
}
