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
            OrchestrationNames.MnistPipeline => Read<MlFunctions.Core.Pipelines.MnistPipelineInput>(body, orchestration) is { Dataset: not null } mnist
                ? Orchestrations.Pipelines.MnistPipeline.Problems(mnist)
                : ["the input needs a dataset: {\"dataset\": {\"name\": \"mnist\", \"sourceDirectories\": [...]}}"],
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
