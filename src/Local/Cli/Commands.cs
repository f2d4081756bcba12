using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using MlFunctions.Api;
using MlFunctions.Local.Http;

namespace MlFunctions.Local.Cli;

/// <summary>One verb whose command parses its own options: host configuration (--urls, --Local:…, --workers) goes on to the host builder.</summary>
public sealed record PassthroughVerb(string Name, string Usage, Func<string[], Task<int>> RunAsync);

/// <summary>
/// The command line (<c>dotnet run --project src/Local -- VERB</c>, or <c>mlf VERB</c> as a dotnet tool), on System.CommandLine:
/// verbs that talk to a running host (<see cref="RemoteCommands"/>: runs, sweeps, models, predict) and the verbs that run the
/// embedded host (<see cref="Passthrough"/>: serve, probe and the case studies). Exit codes: 0 ok, 1 failed, 2 usage.
/// </summary>
public static class Commands
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int UsageError = 2;

    private const string HostOptions = """

        options of the verbs that run the embedded host:
          --urls URL            where HTTP listens (default http://127.0.0.1:7071)
          --workers N           training worker processes on the training-jobs queue (default 1, 0 = none)
          --Local:TaskHub NAME  task hub (default MlFunctionsHub); --Local:ApiKey KEY; --Local:DataPath DIR

        pipeline triggers (as the Functions app's blob and timer triggers):
          upload a batch to uploads/datasets/mnist/{batch}/ and write _SUCCESS last: one mnist pipeline run per content
          --Pipelines:Mnist:WatchUploads false        stop polling the uploads container (default true)
          --Pipelines:Mnist:PollSeconds S             seconds between polls (default 10)
          --Pipelines:Mnist:Schedule "0 0 3 * * 0"    CRON (UTC, with seconds) of scheduled retraining (default off)
          --Pipelines:Mnist:DataDirectories:0 DIR     folders a scheduled run registers (default: latest upload batch)
        """;

    private const string ServeUsage = """
          serve                 run the host (engine, Azurite if AzureWebJobsStorage is unset, HTTP, dashboard at /) until Ctrl-C
        """;

    private const string ProbeUsage = """
          probe                 run the host, start a FanOutProbe through its HTTP API, print the result
                                  --count N (default 100)  --delay-ms D (default 0)  --sequential  --keep-serving
        """;

    /// <summary>
    /// The verbs that run the embedded host, each with its own option parser (their options include the host's
    /// configuration keys, which no fixed grammar can list). A case-study verb is one line here:
    /// <c>new("ct", CtCommand.Usage, CtCommand.RunAsync),</c>.
    /// </summary>
    public static readonly IReadOnlyList<PassthroughVerb> Passthrough =
    [
        new("serve", ServeUsage, ServeAsync),
        new("probe", ProbeUsage, ProbeAsync),
        new("mnist", MnistCommand.Usage, MnistCommand.RunAsync),
        new("run", RunCommand.Usage, RunCommand.RunAsync),
        new("recommender", RecommenderCommand.Usage, RecommenderCommand.RunAsync),
        new("mailing-list", MailingListCommand.Usage, MailingListCommand.RunAsync),
        new("ct", CtCommand.Usage, CtCommand.RunAsync),
    ];

    public static Task<int> RunAsync(string[] args) => RunAsync(args, Console.Out, Console.Error, CancellationToken.None);

    /// <summary>The entry point, with its writers: tests call it in-process and read what a user would see.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var verb = Passthrough.FirstOrDefault(v => v.Name == args.FirstOrDefault());
        if (verb is not null)
            return await RunPassthroughAsync(verb, args.Skip(1).ToArray(), output, error);

        var root = Build();
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var problem in parsed.Errors)
                await error.WriteLineAsync("error: " + problem.Message);
            var command = parsed.CommandResult.Command;
            await error.WriteLineAsync($"see: {string.Join(' ', Path(command))} --help");
            return UsageError;
        }

        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false }, cancellationToken);
        }
        catch (CliUsageException e)
        {
            await error.WriteLineAsync("error: " + e.Message);
            return UsageError;
        }
        catch (CliException e)
        {
            await error.WriteLineAsync("error: " + e.Message);
            return Failed;
        }
    }

    /// <summary>The whole grammar: remote verbs with their options, and the passthrough verbs listed for the root's help.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand("MlFunctions: a serverless ML life cycle. Verbs that talk to a running host take --url/--key " +
            $"(or {HostClient.UrlVariable}/{HostClient.KeyVariable}) and --json; the verbs that run the embedded host list their options with VERB --help.");
        RemoteCommands.AddTo(root);
        foreach (var verb in Passthrough)
            root.Subcommands.Add(new Command(verb.Name, Describe(verb.Usage)) { TreatUnmatchedTokensAsErrors = false });
        return root;
    }

    private static async Task<int> RunPassthroughAsync(PassthroughVerb verb, string[] args, TextWriter output, TextWriter error)
    {
        if (args.Any(a => a is "-h" or "--help" or "-?"))
        {
            await output.WriteLineAsync($"usage: dotnet run --project src/Local -c Release -- {verb.Name} [options]\n\n{verb.Usage}{HostOptions}");
            return Ok;
        }

        try
        {
            return await verb.RunAsync(args.Select(a => a == "--workers" ? "--Local:Workers" : a).ToArray());
        }
        catch (InvalidOperationException e) when (e.Message.Contains("Azurite", StringComparison.Ordinal))
        {
            await error.WriteLineAsync($"error: {e.Message}");
            return Failed;
        }
    }

    /// <summary>A usage block's first line without its verb and arguments: the one-line description the root's help lists.</summary>
    private static string Describe(string usage)
    {
        var first = usage.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
        var gap = first.IndexOf("  ", StringComparison.Ordinal);
        return gap < 0 ? first : first[gap..].Trim();
    }

    private static IEnumerable<string> Path(Command command)
    {
        var names = new List<string>();
        for (Command? c = command; c is not null and not RootCommand; c = c.Parents.OfType<Command>().FirstOrDefault())
            names.Insert(0, c.Name);
        names.Insert(0, "mlf");
        return names;
    }

    private static async Task<int> ServeAsync(string[] args)
    {
        await using var app = LocalHost.Build(args);
        await app.StartAsync();
        PrintBanner(app);
        await app.WaitForShutdownAsync();
        return 0;
    }

    private static async Task<int> ProbeAsync(string[] args)
    {
        var options = ProbeArgs.Parse(args, out var hostArgs);
        var clock = Stopwatch.StartNew();
        await using var app = LocalHost.Build(hostArgs);
        await app.StartAsync();
        PrintBanner(app);

        var baseUrl = BaseUrl(app);
        var key = app.Services.GetRequiredService<ApiKeys>().Key;
        using var http = new HttpClient { BaseAddress = new Uri(baseUrl) };
        http.DefaultRequestHeaders.Add(ApiKeys.HeaderName, key);

        var input = new { count = options.Count, delayMs = options.DelayMs, sequential = options.Sequential };
        var started = Stopwatch.StartNew();
        using var start = await http.PostAsJsonAsync($"/api/orchestrators/FanOutProbe", input);
        var links = await start.Content.ReadFromJsonAsync<JsonObject>()
            ?? throw new InvalidOperationException("the starter returned no body");
        if ((int)start.StatusCode != 202)
        {
            Console.Error.WriteLine($"start failed: {(int)start.StatusCode} {links.ToJsonString()}");
            return 1;
        }

        var statusUri = (string)links["statusQueryGetUri"]!;
        Console.WriteLine($"started FanOutProbe {links["id"]} (count={options.Count}, delayMs={options.DelayMs}, sequential={options.Sequential})");
        JsonObject status;
        while (true)
        {
            using var poll = await http.GetAsync(statusUri);
            status = await poll.Content.ReadFromJsonAsync<JsonObject>() ?? [];
            if ((int)poll.StatusCode != 202)
            {
                break;
            }

            await Task.Delay(200);
        }

        started.Stop();
        var runtime = (string?)status["runtimeStatus"];
        Console.WriteLine($"runtimeStatus={runtime} output={status["output"]?.ToJsonString()}");
        var perSecond = options.Count / Math.Max(started.Elapsed.TotalSeconds, 1e-9);
        Console.WriteLine(
            $"RESULT probe status={runtime} activities={status["output"]?.ToJsonString()} seconds={started.Elapsed.TotalSeconds:F2} activities_per_s={perSecond:F1} wall_s={clock.Elapsed.TotalSeconds:F1}");
        if (options.KeepServing)
        {
            await app.WaitForShutdownAsync();
        }
        else
        {
            await app.StopAsync();
        }

        return runtime == "Completed" ? 0 : 1;
    }

    private static void PrintBanner(WebApplication app)
    {
        var keys = app.Services.GetRequiredService<ApiKeys>();
        Console.WriteLine($"MlFunctions local host listening on {BaseUrl(app)}");
        Console.WriteLine(keys.Generated
            ? $"function key (x-functions-key or ?code=): {keys.Key}  (stored in {keys.KeyFile})"
            : "function key: from Local:ApiKey");
        Console.WriteLine($"health: {BaseUrl(app)}/{ApiRoutes.Health}");
        Console.WriteLine($"dashboard: {BaseUrl(app)}/");
    }

    public static string BaseUrl(WebApplication app) =>
        app.Services.GetRequiredService<ManagementLinks>().ListeningUrl ?? LocalHost.DefaultUrl;

    private sealed record ProbeArgs(int Count, int DelayMs, bool Sequential, bool KeepServing)
    {
        public static ProbeArgs Parse(string[] args, out string[] hostArgs)
        {
            int count = 100, delay = 0;
            bool sequential = false, keep = false;
            var rest = new List<string>();
            for (var i = 0; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case "--count": count = int.Parse(args[++i]); break;
                    case "--delay-ms": delay = int.Parse(args[++i]); break;
                    case "--sequential": sequential = true; break;
                    case "--keep-serving": keep = true; break;
                    default: rest.Add(args[i]); break;
                }
            }

            hostArgs = rest.ToArray();
            return new ProbeArgs(count, delay, sequential, keep);
        }
    }
}
