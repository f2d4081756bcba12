using Azure;
using Microsoft.AspNetCore.Http;
using MlFunctions.Api.Durable;
using MlFunctions.Core.Pipelines;

namespace MlFunctions.Api.Pipelines;

/// <summary>
/// Schedules per pipeline (<c>api/pipelines/{name}/schedules[/{schedule}[/pause|/resume]]</c>, all of them at
/// <c>api/pipelines/schedules</c>) and what upload markers led to (<c>api/pipelines/{name}/triggers</c>). Both
/// hosts map these; a bad CRON, zone or override is a 400 listing every problem. Writes honour <c>If-Match</c>
/// (412 when the schedule changed) and <c>If-None-Match: *</c> (create only); answers carry the <c>ETag</c>.
/// </summary>
public sealed class PipelineScheduleHandlers(PipelineScheduleStore schedules, IPipelineSpecStore specs, PipelineTriggerRecords triggers, TimeProvider time)
{
    private const int WriteAttempts = 3;

    /// <summary>PUT: creates (201) or replaces (200) the schedule. Replacing keeps its history and re-arms it now (no catch-up).</summary>
    public async Task HandlePut(HttpContext http)
    {
        var (name, id) = Names(http);
        var request = OrchestrationInputs.Read<PipelineScheduleRequest>(await HttpJson.ReadBodyAsync(http.Request, 256 * 1024), "schedule")
            ?? throw new BadRequestException("the body must be a schedule: {\"cron\": \"0 3 * * *\", \"timeZone\": \"UTC\", \"overrides\": {...}}");
        var problems = CronSchedule.Problems(request.Cron, request.TimeZone).ToList();
        if (request.Overrides is { } overrides && overrides.Any(p => string.Equals(p.Key, "name", StringComparison.OrdinalIgnoreCase)))
            problems.Add("overrides cannot rename the pipeline (drop 'name')");
        var spec = await specs.GetAsync(name, http.RequestAborted);
        if (spec is null)
            throw new BadRequestException($"no stored pipeline spec '{name}' (PUT api/pipelines/{name} stores one first)", StatusCodes.Status404NotFound);
        if (problems.Count == 0)
        {
            try
            {
                problems.AddRange(PipelineAutomation.WithOverrides(spec, request.Overrides).Problems().Select(p => "overrides: " + p));
            }
            catch (System.Text.Json.JsonException e)
            {
                problems.Add($"overrides do not fit a pipeline spec: {e.Message}");
            }
        }

        if (problems.Count > 0)
        {
            await HttpJson.ProblemsAsync(http, "schedule", problems);
            return;
        }

        var (ifMatch, createOnly) = Conditions(http);
        for (var attempt = 0; ; attempt++)
        {
            var existing = await schedules.GetAsync(name, id, http.RequestAborted);
            if (createOnly && existing is not null)
                throw new BadRequestException($"schedule {name}/{id} exists (If-None-Match: *)", StatusCodes.Status412PreconditionFailed);
            if (ifMatch is { } tag && (existing is null || existing.ETag != tag))
                throw new BadRequestException($"schedule {name}/{id} has changed (If-Match {tag} does not match)", StatusCodes.Status412PreconditionFailed);
            var now = time.GetUtcNow();
            var record = (existing?.Value ?? new PipelineScheduleRecord { Pipeline = name, Id = id, CreatedAt = now }) with
            {
                Cron = request.Cron!.Trim(),
                TimeZone = request.TimeZone ?? "UTC",
                Overrides = request.Overrides,
                LatestBatch = request.LatestBatch,
                Paused = request.Paused ?? existing?.Value.Paused ?? false,
                UpdatedAt = now,
                ArmedAt = now,
                NextOccurrence = null,
            };
            var etag = await schedules.TryWriteAsync(record, existing?.ETag, createOnly: existing is null, http.RequestAborted);
            if (etag is { } written)
            {
                await WriteAsync(http, existing is null ? StatusCodes.Status201Created : StatusCodes.Status200OK, record, written);
                return;
            }

            if (ifMatch is not null || createOnly || attempt + 1 >= WriteAttempts)
                throw new BadRequestException($"schedule {name}/{id} was changed concurrently; read it and try again", StatusCodes.Status412PreconditionFailed);
        }
    }

    /// <summary>GET one schedule, with its next occurrence and what its last fire did.</summary>
    public async Task HandleGet(HttpContext http)
    {
        var (name, id) = Names(http);
        var stored = await schedules.GetAsync(name, id, http.RequestAborted) ?? throw NotFound(name, id);
        await WriteAsync(http, StatusCodes.Status200OK, stored.Value, stored.ETag);
    }

    /// <summary>GET a pipeline's schedules.</summary>
    public async Task HandleList(HttpContext http) => await ListAsync(http, Name(http));

    /// <summary>GET every pipeline's schedules.</summary>
    public Task HandleListAll(HttpContext http) => ListAsync(http, null);

    /// <summary>DELETE: 204, or 404 when there is none; the runs it started are untouched.</summary>
    public async Task HandleDelete(HttpContext http)
    {
        var (name, id) = Names(http);
        var (ifMatch, _) = Conditions(http);
        if (!await schedules.TryDeleteAsync(name, id, ifMatch, http.RequestAborted))
        {
            if (ifMatch is not null && await schedules.GetAsync(name, id, http.RequestAborted) is not null)
                throw new BadRequestException($"schedule {name}/{id} has changed (If-Match does not match)", StatusCodes.Status412PreconditionFailed);
            throw NotFound(name, id);
        }

        http.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    /// <summary>POST .../pause: the schedule stops firing; its occurrences while paused are never made up.</summary>
    public Task HandlePause(HttpContext http) => SetPausedAsync(http, paused: true);

    /// <summary>POST .../resume: fires again from the next occurrence after now.</summary>
    public Task HandleResume(HttpContext http) => SetPausedAsync(http, paused: false);

    /// <summary>GET api/pipelines/{name}/triggers: what each upload marker of the pipeline led to, newest first.</summary>
    public async Task HandleTriggers(HttpContext http)
    {
        var name = Name(http);
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new { triggers = await triggers.ListAsync(name, http.RequestAborted) });
    }

    private async Task SetPausedAsync(HttpContext http, bool paused)
    {
        var (name, id) = Names(http);
        var (ifMatch, _) = Conditions(http);
        for (var attempt = 0; ; attempt++)
        {
            var stored = await schedules.GetAsync(name, id, http.RequestAborted) ?? throw NotFound(name, id);
            if (ifMatch is { } tag && stored.ETag != tag)
                throw new BadRequestException($"schedule {name}/{id} has changed (If-Match {tag} does not match)", StatusCodes.Status412PreconditionFailed);
            if (stored.Value.Paused == paused)
            {
                await WriteAsync(http, StatusCodes.Status200OK, stored.Value, stored.ETag);
                return;
            }

            var now = time.GetUtcNow();
            var record = stored.Value with { Paused = paused, UpdatedAt = now, ArmedAt = paused ? stored.Value.ArmedAt : now, NextOccurrence = null };
            if (await schedules.TryWriteAsync(record, stored.ETag, ct: http.RequestAborted) is { } written)
            {
                await WriteAsync(http, StatusCodes.Status200OK, record, written);
                return;
            }

            if (ifMatch is not null || attempt + 1 >= WriteAttempts)
                throw new BadRequestException($"schedule {name}/{id} was changed concurrently; try again", StatusCodes.Status412PreconditionFailed);
        }
    }

    private async Task ListAsync(HttpContext http, string? pipeline)
    {
        var list = (await schedules.ListAsync(pipeline, http.RequestAborted))
            .Select(s => WithNext(s.Value))
            .OrderBy(s => s.Pipeline, StringComparer.Ordinal)
            .ThenBy(s => s.Id, StringComparer.Ordinal)
            .ToList();
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new { schedules = list });
    }

    private async Task WriteAsync(HttpContext http, int status, PipelineScheduleRecord record, ETag etag)
    {
        http.Response.Headers.ETag = etag.ToString("H");
        await HttpJson.WriteAsync(http, status, WithNext(record));
    }

    private PipelineScheduleRecord WithNext(PipelineScheduleRecord record)
    {
        if (record.Paused)
            return record with { NextOccurrence = null };
        try
        {
            var cron = CronSchedule.Parse(record.Cron, record.TimeZone);
            var after = time.GetUtcNow() > record.FireAfter ? time.GetUtcNow() : record.FireAfter;
            return record with { NextOccurrence = cron.NextAfter(after) };
        }
        catch (ArgumentException)
        {
            return record with { NextOccurrence = null };
        }
    }

    private static (ETag? IfMatch, bool CreateOnly) Conditions(HttpContext http)
    {
        string? ifMatch = http.Request.Headers.IfMatch;
        string? ifNoneMatch = http.Request.Headers.IfNoneMatch;
        return (string.IsNullOrWhiteSpace(ifMatch) || ifMatch.Trim() == "*" ? null : new ETag(ifMatch.Trim()), ifNoneMatch?.Trim() == "*");
    }

    private static BadRequestException NotFound(string name, string id) =>
        new($"no schedule '{id}' for pipeline '{name}'", StatusCodes.Status404NotFound);

    private static string Name(HttpContext http)
    {
        var name = (string)http.Request.RouteValues["name"]!;
        return PipelineAutomation.NameProblem("pipeline name", name, pipeline: true) is { } problem ? throw new BadRequestException(problem) : name;
    }

    private static (string Name, string Id) Names(HttpContext http)
    {
        var name = Name(http);
        var id = (string)http.Request.RouteValues["schedule"]!;
        return PipelineAutomation.NameProblem("schedule id", id, pipeline: false) is { } problem ? throw new BadRequestException(problem) : (name, id);
    }
}
