using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Client;
using MlFunctions.Api.Durable;
using MlFunctions.Core;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Api.Pipelines;

/// <summary>
/// Pipelines from a spec: store a spec under its name, start a run from a spec in the body or the stored one, and
/// list runs by pipeline and state. A spec is checked before anything is scheduled: a 400 lists every problem.
/// </summary>
public sealed class PipelineHandlers(IPipelineSpecStore specs)
{
    /// <summary>PUT api/pipelines/{name}: stores the body as the pipeline's spec (its name is the route's).</summary>
    public async Task HandlePut(HttpContext http)
    {
        var name = Name(http);
        var spec = await ReadSpecAsync(http, name) ?? throw new BadRequestException("the body must be a pipeline spec");
        if (await ProblemsAsync(http, spec))
            return;
        await specs.PutAsync(spec, http.RequestAborted);
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, spec);
    }

    /// <summary>GET api/pipelines/{name}: the stored spec, 404 when none.</summary>
    public async Task HandleGet(HttpContext http)
    {
        var name = Name(http);
        var spec = await specs.GetAsync(name, http.RequestAborted) ?? throw new BadRequestException($"no stored pipeline spec '{name}'", StatusCodes.Status404NotFound);
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, spec);
    }

    /// <summary>
    /// POST api/pipelines/{name}/runs: starts <c>TrainingPipeline</c> with the spec in the body, or with the stored
    /// spec when the body is empty. 202 with the Durable management links; the run id is <c>{name}-{12 hex}</c>.
    /// </summary>
    public async Task HandleStart(HttpContext http, DurableTaskClient client, ManagementLinkFactory links)
    {
        var name = Name(http);
        var spec = await ReadSpecAsync(http, name)
            ?? await specs.GetAsync(name, http.RequestAborted)
            ?? throw new BadRequestException($"no spec in the body and no stored pipeline spec '{name}' (PUT api/pipelines/{name} stores one)", StatusCodes.Status404NotFound);
        if (await ProblemsAsync(http, spec))
            return;
        var id = OrchestrationStarter.ReadInstanceId(http.Request) ?? $"{name}-{Guid.NewGuid().ToString("N")[..12]}";
        await OrchestrationStarter.StartAsync(http, client, OrchestrationNames.TrainingPipeline, spec, id, links);
    }

    /// <summary>GET api/pipelines/runs[?pipeline=NAME][&amp;state=Running|Completed|Failed|...]: newest first.</summary>
    public static async Task HandleList(HttpContext http, DurableTaskClient client)
    {
        string? pipeline = http.Request.Query["pipeline"];
        string? state = http.Request.Query["state"];
        var query = new OrchestrationQuery { FetchInputsAndOutputs = true, PageSize = 100, InstanceIdPrefix = pipeline is null ? null : pipeline + "-" };
        if (state is not null)
        {
            if (!Enum.TryParse<OrchestrationRuntimeStatus>(state, ignoreCase: true, out var status))
                throw new BadRequestException($"unknown state '{state}'; use one of {string.Join(", ", Enum.GetNames<OrchestrationRuntimeStatus>())}");
            query = query with { Statuses = [status] };
        }

        var runs = new List<PipelineRunSummary>();
        await foreach (var instance in client.GetAllInstancesAsync(query).WithCancellation(http.RequestAborted))
        {
            // MnistPipeline: runs started before MNIST became the built-in spec, still in the task hub's history.
            if (instance.Name is not (OrchestrationNames.TrainingPipeline or OrchestrationNames.MnistPipeline))
                continue;
            var name = instance.Name == OrchestrationNames.MnistPipeline ? "mnist" : Safe(() => instance.ReadInputAs<PipelineSpec>()?.Name);
            if (pipeline is not null && name != pipeline)
                continue;
            runs.Add(new PipelineRunSummary(
                instance.InstanceId,
                name,
                instance.Name,
                instance.RuntimeStatus.ToString(),
                Safe(() => instance.ReadCustomStatusAs<PipelineProgress>()),
                instance.CreatedAt,
                instance.LastUpdatedAt,
                instance.FailureDetails?.ErrorMessage));
        }

        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new { runs = runs.OrderByDescending(r => r.CreatedAt).ToList() });
    }

    private static T? Safe<T>(Func<T?> read)
    {
        try
        {
            return read();
        }
        catch (System.Text.Json.JsonException)
        {
            return default;
        }
    }

    private static async Task<PipelineSpec?> ReadSpecAsync(HttpContext http, string name)
    {
        var spec = OrchestrationInputs.Read<PipelineSpec>(await HttpJson.ReadBodyAsync(http.Request), "pipeline spec");
        if (spec is null)
            return null;
        if (spec.Name.Length > 0 && spec.Name != name)
            throw new BadRequestException($"the spec is named '{spec.Name}' but the route names pipeline '{name}'");
        return spec with { Name = name };
    }

    private static async Task<bool> ProblemsAsync(HttpContext http, PipelineSpec spec)
    {
        var problems = spec.Problems();
        if (problems.Count == 0)
            return false;
        await HttpJson.ProblemsAsync(http, "pipeline spec", problems);
        return true;
    }

    private static string Name(HttpContext http)
    {
        var name = (string)http.Request.RouteValues["name"]!;
        return Core.Datasets.DatasetLayout.IsValidName(name) && !PipelineSpec.ReservedNames.Contains(name)
            ? name
            : throw new BadRequestException($"'{name}' is not a valid pipeline name: 1-63 characters of a-z, 0-9, '-', '_' or '.', starting with a letter or digit");
    }
}

/// <summary>One run in the list: what started it, its state and its current step.</summary>
public sealed record PipelineRunSummary(
    string RunId,
    string? Pipeline,
    string Orchestration,
    string State,
    PipelineProgress? Progress,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastUpdatedAt,
    string? Failure);
