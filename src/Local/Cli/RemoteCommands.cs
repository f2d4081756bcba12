using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MlFunctions.Local.Cli;

/// <summary>
/// The verbs that talk to a running host over its JSON API (the same routes in the local host and the Functions app):
/// <c>runs list|show|report|cancel</c>, <c>sweeps list|show|trials</c>, <c>models list|versions|alias set|alias delete</c>
/// and <c>predict MODEL FILE</c>. Text tables for people, <c>--json</c> (the host's own JSON) for scripts.
/// </summary>
public static class RemoteCommands
{
    public const string DefaultUrl = LocalHost.DefaultUrl;

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static readonly Option<string> Url = new("--url")
    {
        Description = $"the host's base URL (env {HostClient.UrlVariable}; default {DefaultUrl}): a local host or an Azure Functions app",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(HostClient.UrlVariable) is { Length: > 0 } url ? url : DefaultUrl,
    };

    public static readonly Option<string?> Key = new("--key")
    {
        Description = $"the function key, sent as x-functions-key (env {HostClient.KeyVariable}; default for a loopback URL: ./.data/host-key.txt)",
        Recursive = true,
    };

    public static readonly Option<bool> Json = new("--json") { Description = "print the host's JSON instead of a table", Recursive = true };

    public static void AddTo(RootCommand root)
    {
        root.Options.Add(Url);
        root.Options.Add(Key);
        root.Options.Add(Json);
        root.Subcommands.Add(Runs());
        root.Subcommands.Add(Sweeps());
        root.Subcommands.Add(Models());
        root.Subcommands.Add(Predict());
    }

    private static Command Runs()
    {
        var pipeline = new Option<string?>("--pipeline") { Description = "only this pipeline's runs" };
        var state = new Option<string?>("--state") { Description = "only runs in this state (Running, Completed, Failed, Terminated, Pending, Suspended)" };
        var list = new Command("list", "list pipeline runs, newest first") { pipeline, state };
        list.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var query = Query(("pipeline", p.GetValue(pipeline)), ("state", p.GetValue(state)));
            var body = await host.GetAsync("api/pipelines/runs" + query, ct);
            if (json)
                return Print(output, body);
            var runs = body?["runs"]?.AsArray() ?? [];
            if (runs.Count == 0)
                return Say(output, "no runs" + (query.Length > 0 ? " match these filters" : " yet"));
            Table.Write(output, ["RUN", "PIPELINE", "STATE", "CREATED", "PROGRESS"], runs.Select(r => new[]
            {
                Str(r?["runId"]), Str(r?["pipeline"]), Str(r?["state"]), Time(r?["createdAt"]),
                Str(r?["progress"]?["step"] ?? r?["progress"]?["phase"]) + (r?["failure"] is { } f ? " " + Str(f) : ""),
            }));
            return Commands.Ok;
        }));

        var run = new Argument<string>("run") { Description = "the pipeline run id" };
        var show = new Command("show", "a run's steps: state, cached or not (and from which run), attempts, duration, output digest, error") { run };
        show.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var id = p.GetValue(run)!;
            var body = await host.GetAsync($"api/pipelines/runs/{Uri.EscapeDataString(id)}", ct);
            if (json)
                return Print(output, body);
            var steps = body?["steps"]?.AsArray() ?? [];
            await output.WriteLineAsync($"run {id}: {steps.Count} steps, {Str(body?["executed"])} executed, {Str(body?["cached"])} cached, " +
                $"{Str(body?["skipped"])} skipped, {Str(body?["failed"])} failed");
            Table.Write(output, ["#", "STEP", "STATUS", "CACHED", "ATTEMPTS", "DURATION", "OUTPUT", "ERROR"], steps.Select(s => new[]
            {
                Str(s?["sequence"]), Str(s?["step"]), Str(s?["status"]),
                s?["cached"]?.GetValue<bool>() == true ? "from " + Str(s?["cachedFromRunId"]) : "",
                Str(s?["attempts"]), Duration(s?["startedAt"], s?["endedAt"]), Short(Str(s?["outputDigest"])), Str(s?["error"]),
            }));
            return Commands.Ok;
        }));

        var reportRun = new Argument<string>("run") { Description = "the pipeline run id" };
        var report = new Command("report", "the run's Markdown report (written by its report step)") { reportRun };
        report.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var text = await host.GetTextAsync($"api/pipelines/runs/{Uri.EscapeDataString(p.GetValue(reportRun)!)}/report", ct);
            if (json)
                return Print(output, new JsonObject { ["run"] = p.GetValue(reportRun), ["markdown"] = text });
            await output.WriteLineAsync(text);
            return Commands.Ok;
        }));

        var cancelRun = new Argument<string>("run") { Description = "the pipeline run id" };
        var reason = new Option<string>("--reason") { Description = "why (kept with the run)", DefaultValueFactory = _ => "cancelled from the CLI" };
        var cancel = new Command("cancel", "terminate a running pipeline run (Durable terminate)") { cancelRun, reason };
        cancel.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var id = p.GetValue(cancelRun)!;
            await host.SendAsync(HttpMethod.Post,
                $"runtime/webhooks/durabletask/instances/{Uri.EscapeDataString(id)}/terminate{Query(("reason", p.GetValue(reason)))}", null, ct);
            return json ? Print(output, new JsonObject { ["run"] = id, ["cancelled"] = true }) : Say(output, $"run {id}: termination requested");
        }));

        var followRun = new Argument<string>("run") { Description = "the pipeline run (or any orchestration instance) id" };
        var interval = new Option<double>("--interval") { Description = "seconds between polls (default 2)", DefaultValueFactory = _ => 2 };
        var follow = new Command("follow", "wait for a run to end, printing its step and a progress bar as they change; exit 0 if it completed, 1 if not") { followRun, interval };
        follow.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var id = p.GetValue(followRun)!;
            var every = p.GetValue(interval);
            if (every is < 0.1 or > 3600)
                throw new CliUsageException($"--interval must be between 0.1 and 3600 seconds; got {every}");
            var path = $"runtime/webhooks/durabletask/instances/{Uri.EscapeDataString(id)}";
            var last = "";
            while (true)
            {
                JsonNode? status;
                try
                {
                    status = await host.GetAsync(path, ct);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    await output.WriteLineAsync($"stopped following; run {id} goes on in the host");
                    return 130;
                }

                var state = Str(status?["runtimeStatus"]);
                if (state is "Completed" or "Failed" or "Terminated" or "Canceled")
                {
                    if (json)
                        Print(output, status);
                    else
                        await output.WriteLineAsync($"run {id} {state}" + (state == "Completed" ? "" : ": " + Str(status?["output"])));
                    return state == "Completed" ? Commands.Ok : Commands.Failed;
                }

                // Pipelines report {step, stepsRecorded, stepsTotal} as their custom status; other orchestrations show the state alone.
                var progress = status?["customStatus"] as JsonObject;
                var line = $"{state} [{Str(progress?["step"] ?? progress?["phase"]) switch { "" => "starting", var step => step }}]";
                if (progress?["stepsTotal"]?.GetValue<int>() is > 0 and var total)
                {
                    var done = progress["stepsRecorded"]?.GetValue<int>() ?? 0;
                    line += $" {PipelineProgressPrinter.Bar(done, total)} {done}/{total} steps";
                }

                if (!json && line != last)
                {
                    await output.WriteLineAsync($"{DateTime.Now:HH:mm:ss} {line}");
                    last = line;
                }

                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(every), ct);
                }
                catch (OperationCanceledException)
                {
                    await output.WriteLineAsync($"stopped following; run {id} goes on in the host");
                    return 130;
                }
            }
        }));

        return new Command("runs", "pipeline runs: list, show, follow, report, cancel") { list, show, follow, report, cancel };
    }

    private static Command Sweeps()
    {
        var list = new Command("list", "list sweeps");
        list.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var body = await host.GetAsync("api/sweeps", ct);
            if (json)
                return Print(output, body);
            var sweeps = body?["sweeps"]?.AsArray() ?? [];
            if (sweeps.Count == 0)
                return Say(output, "no sweeps yet");
            Table.Write(output, ["SWEEP", "NAME", "ALGORITHM", "STATUS", "TRIALS", "OBJECTIVE", "BEST"], sweeps.Select(s => new[]
            {
                Str(s?["sweepId"]), Str(s?["name"]), Str(s?["algorithm"]), Str(s?["status"]), Str(s?["trialCount"]),
                $"{Str(s?["objective"]?["direction"])} {Str(s?["objective"]?["metric"])}".Trim(), Num(s?["best"]?["objective"]),
            }));
            return Commands.Ok;
        }));

        var sweep = new Argument<string>("sweep") { Description = "the sweep id" };
        var show = new Command("show", "a sweep: spec, status, outcome, best trial") { sweep };
        show.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var body = await host.GetAsync($"api/sweeps/{Uri.EscapeDataString(p.GetValue(sweep)!)}", ct);
            if (json)
                return Print(output, body);
            foreach (var (name, value) in body?.AsObject() ?? [])
                await output.WriteLineAsync($"{name,-14} {(value is JsonValue ? Str(value) : value?.ToJsonString())}");
            return Commands.Ok;
        }));

        var trialsOf = new Argument<string>("sweep") { Description = "the sweep id" };
        var top = new Option<int?>("--top") { Description = "at most this many trials (1-1000; the host's default is 1000)" };
        var skip = new Option<int?>("--skip") { Description = "skip this many of the best first (for paging)" };
        var trials = new Command("trials", "a sweep's trials, best first: objective, status, params") { trialsOf, top, skip };
        trials.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var query = Query(("top", p.GetValue(top)?.ToString(CultureInfo.InvariantCulture)), ("skip", p.GetValue(skip)?.ToString(CultureInfo.InvariantCulture)));
            var body = await host.GetAsync($"api/sweeps/{Uri.EscapeDataString(p.GetValue(trialsOf)!)}/trials" + query, ct);
            if (json)
                return Print(output, body);
            var rows = body?["trials"]?.AsArray() ?? [];
            var total = body?["total"]?.GetValue<int>() ?? rows.Count;
            var from = body?["skip"]?.GetValue<int>() ?? 0;
            var shown = rows.Count == total ? $"{total} trials" : $"trials {from + 1}-{from + rows.Count} of {total}";
            await output.WriteLineAsync($"{shown}, objective {Str(body?["objective"]?["direction"])} {Str(body?["objective"]?["metric"])}");
            Table.Write(output, ["RANK", "TRIAL", "STATUS", "OBJECTIVE", "EARLY-STOPPED", "PARAMS"], rows.Select(t => new[]
            {
                Str(t?["rank"]), Str(t?["runId"]), Str(t?["status"]), Num(t?["objective"]),
                Str(t?["tags"]?["early_stopped"] ?? t?["tags"]?["earlyStopped"]),
                string.Join(" ", (t?["params"]?.AsObject() ?? []).Select(kv => $"{kv.Key}={Num(kv.Value)}")),
            }));
            return Commands.Ok;
        }));

        return new Command("sweeps", "hyperparameter sweeps: list, show, trials") { list, show, trials };
    }

    private static Command Models()
    {
        var list = new Command("list", "registered models with their latest version and aliases");
        list.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var body = await host.GetAsync("api/registry/models", ct);
            if (json)
                return Print(output, body);
            var models = body?["models"]?.AsArray() ?? [];
            if (models.Count == 0)
                return Say(output, "no registered models yet");
            Table.Write(output, ["MODEL", "LATEST", "VERSIONS", "ALIASES"], models.Select(m => new[]
            {
                Str(m?["name"]), Str(m?["latestVersion"]), Str(m?["versions"]?.AsArray().Count),
                string.Join(" ", (m?["aliases"]?.AsObject() ?? []).Select(kv => $"{kv.Key}→v{kv.Value}")),
            }));
            return Commands.Ok;
        }));

        var model = new Argument<string>("model") { Description = "the registered model's name" };
        var versions = new Command("versions", "a model's versions: metrics, sha256, lineage") { model };
        versions.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var body = await host.GetAsync($"api/registry/models/{Uri.EscapeDataString(p.GetValue(model)!)}/versions", ct);
            if (json)
                return Print(output, body);
            Table.Write(output, ["VERSION", "CREATED", "SHA256", "RUN", "METRICS"], (body?["versions"]?.AsArray() ?? []).Select(v => new[]
            {
                Str(v?["version"]), Time(v?["createdAt"]), Short(Str(v?["sha256"])), Str(v?["lineage"]?["pipelineRunId"]),
                string.Join(" ", (v?["metrics"]?.AsObject() ?? []).Select(kv => $"{kv.Key}={Num(kv.Value)}")),
            }));
            return Commands.Ok;
        }));

        var setModel = new Argument<string>("model") { Description = "the registered model's name" };
        var setAlias = new Argument<string>("alias") { Description = "the alias (champion, challenger, ...)" };
        var setVersion = new Argument<int>("version") { Description = "the version the alias points to" };
        var set = new Command("set", "point an alias at a version") { setModel, setAlias, setVersion };
        set.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var path = $"api/registry/models/{Uri.EscapeDataString(p.GetValue(setModel)!)}/aliases/{Uri.EscapeDataString(p.GetValue(setAlias)!)}";
            var body = await host.SendAsync(HttpMethod.Put, path, new JsonObject { ["version"] = p.GetValue(setVersion) }, ct);
            return json ? Print(output, body) : Say(output, $"{p.GetValue(setModel)}@{p.GetValue(setAlias)} → v{Str(body?["version"])}" +
                (body?["previousVersion"] is { } previous ? $" (was v{previous})" : ""));
        }));

        var deleteModel = new Argument<string>("model") { Description = "the registered model's name" };
        var deleteAlias = new Argument<string>("alias") { Description = "the alias to remove" };
        var delete = new Command("delete", "remove an alias") { deleteModel, deleteAlias };
        delete.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var path = $"api/registry/models/{Uri.EscapeDataString(p.GetValue(deleteModel)!)}/aliases/{Uri.EscapeDataString(p.GetValue(deleteAlias)!)}";
            var body = await host.SendAsync(HttpMethod.Delete, path, null, ct);
            return json ? Print(output, body ?? new JsonObject { ["deleted"] = true }) : Say(output, $"{p.GetValue(deleteModel)}@{p.GetValue(deleteAlias)} removed");
        }));

        var alias = new Command("alias", "move or remove a model's aliases") { set, delete };
        return new Command("models", "the model registry: list, versions, alias set, alias delete") { list, versions, alias };
    }

    private static Command Predict()
    {
        var model = new Argument<string>("model") { Description = "the served model (its name; the champion alias serves it)" };
        var file = new Argument<FileInfo>("file") { Description = "an image (image models), a CSV row with or without its header (tabular), a text file (text models) or a user id (recommenders)" };
        var version = new Option<int?>("--version") { Description = "score this version instead of the served one" };
        var command = new Command("predict", "score one input with a served model: the V2 request is built from the model's inputs") { model, file, version };
        command.SetAction((p, ct) => WithHost(p, async (host, json, output) =>
        {
            var info = p.GetValue(file)!;
            if (!info.Exists)
                throw new CliUsageException($"'{info.FullName}' does not exist");
            var name = Uri.EscapeDataString(p.GetValue(model)!);
            var versionPath = p.GetValue(version) is { } v ? $"/versions/{v}" : "";
            var metadata = await host.GetAsync($"v2/models/{name}{versionPath}", ct);
            var request = PredictRequest.Build(metadata?["inputs"]?.AsArray() ?? [], info);
            var answer = await host.SendAsync(HttpMethod.Post, $"v2/models/{name}{versionPath}/infer", request, ct);
            if (json)
                return Print(output, answer);
            await output.WriteLineAsync($"{Str(answer?["model_name"])} v{Str(answer?["model_version"])}");
            foreach (var tensor in answer?["outputs"]?.AsArray() ?? [])
            {
                var data = tensor?["data"]?.AsArray() ?? [];
                var shown = string.Join(", ", data.Take(10).Select(Num)) + (data.Count > 10 ? $", … ({data.Count} values)" : "");
                await output.WriteLineAsync($"  {Str(tensor?["name"]),-14} {Str(tensor?["datatype"]),-6} [{string.Join(",", tensor?["shape"]?.AsArray() ?? [])}]  {shown}");
            }

            return Commands.Ok;
        }));
        return command;
    }

    /// <summary>Runs an action with the host client of --url/--key (or their environment variables, or the local key file).</summary>
    private static async Task<int> WithHost(ParseResult parsed, Func<HostClient, bool, TextWriter, Task<int>> action)
    {
        var url = parsed.GetValue(Url)!;
        var key = parsed.GetValue(Key) is { Length: > 0 } given ? given : Environment.GetEnvironmentVariable(HostClient.KeyVariable);
        if (string.IsNullOrEmpty(key) && Uri.TryCreate(url, UriKind.Absolute, out var uri))
            key = HostClient.LocalKeyFile(uri);
        using var host = new HostClient(url, key);
        return await action(host, parsed.GetValue(Json), parsed.InvocationConfiguration.Output);
    }

    private static string Query(params (string Name, string? Value)[] pairs)
    {
        var given = pairs.Where(p => !string.IsNullOrEmpty(p.Value)).Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value!)}").ToList();
        return given.Count == 0 ? "" : "?" + string.Join('&', given);
    }

    private static int Print(TextWriter output, JsonNode? body)
    {
        output.WriteLine(body?.ToJsonString(Indented) ?? "null");
        return Commands.Ok;
    }

    private static int Say(TextWriter output, string line)
    {
        output.WriteLine(line);
        return Commands.Ok;
    }

    private static string Str(JsonNode? node) => node switch
    {
        null => "",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => node.ToJsonString(),
    };

    private static string Str(int? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "";

    private static string Num(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue<double>(out var d) ? (Math.Abs(d - Math.Round(d)) < 1e-12 && Math.Abs(d) < 1e15 ? d.ToString("0", CultureInfo.InvariantCulture) : d.ToString("G4", CultureInfo.InvariantCulture)) : Str(node);

    private static string Time(JsonNode? node) =>
        DateTimeOffset.TryParse(Str(node), CultureInfo.InvariantCulture, DateTimeStyles.None, out var t) ? t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : Str(node);

    private static string Duration(JsonNode? start, JsonNode? end) =>
        DateTimeOffset.TryParse(Str(start), CultureInfo.InvariantCulture, DateTimeStyles.None, out var a) &&
        DateTimeOffset.TryParse(Str(end), CultureInfo.InvariantCulture, DateTimeStyles.None, out var b)
            ? (b - a).TotalSeconds < 120 ? $"{(b - a).TotalSeconds:F1} s" : $"{(b - a).TotalMinutes:F1} min"
            : "";

    private static string Short(string digest) => digest.Replace("sha256:", "", StringComparison.Ordinal) is { Length: > 12 } d ? d[..12] : digest;
}

/// <summary>Plain aligned columns: what <c>kubectl get</c> prints, readable in any terminal and in CI logs.</summary>
public static class Table
{
    public static void Write(TextWriter output, IReadOnlyList<string> headers, IEnumerable<string[]> rows)
    {
        var all = rows.Select(r => r.Select(c => c.ReplaceLineEndings(" ")).ToArray()).ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => i < r.Length ? r[i].Length : 0))).ToArray();
        string Line(IReadOnlyList<string> cells) => string.Join("  ", cells.Select((c, i) => i == cells.Count - 1 ? c : c.PadRight(widths[i]))).TrimEnd();
        output.WriteLine(Line(headers));
        foreach (var row in all)
            output.WriteLine(Line(row));
    }
}
