using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using MlFunctions.Api;
using MlFunctions.Local.Http;

namespace MlFunctions.Local.Cli;

/// <summary>The command line of the local host: <c>serve</c>, <c>probe</c> and <c>mnist</c> (the main job).</summary>
public static class Commands
{
    private static readonly string Usage = """
        usage: dotnet run --project src/Local -- <command> [options]

        commands:
          serve                 run the host (engine, Azurite if AzureWebJobsStorage is unset, HTTP) until Ctrl-C
          probe                 run the host, start a FanOutProbe through its HTTP API, print the result
                                  --count N (default 100)  --delay-ms D (default 0)  --sequential  --keep-serving
        """ + "\n" + MnistCommand.Usage + RunCommand.Usage + "\n" + RecommenderCommand.Usage + "\n" + MailingListCommand.Usage + "\n" + """

        options for every command:
          --urls URL            where HTTP listens (default http://127.0.0.1:7071)
          --workers N           training worker processes on the training-jobs queue (default 1, 0 = none)
          --Local:TaskHub NAME  task hub (default MlFunctionsHub); --Local:ApiKey KEY; --Local:DataPath DIR

        pipeline triggers (as the Functions app's blob and timer triggers):
          upload a batch to uploads/datasets/mnist/{batch}/ and write _SUCCESS last: one MnistPipeline run per content
          --Pipelines:Mnist:WatchUploads false        stop polling the uploads container (default true)
          --Pipelines:Mnist:PollSeconds S             seconds between polls (default 10)
          --Pipelines:Mnist:Schedule "0 0 3 * * 0"    CRON (UTC, with seconds) of scheduled retraining (default off)
          --Pipelines:Mnist:DataDirectories:0 DIR     folders a scheduled run registers (default: latest upload batch)
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var command = args.FirstOrDefault();
        var rest = args.Skip(1).Select(a => a == "--workers" ? "--Local:Workers" : a).ToArray();
        try
        {
            return command switch
            {
                "serve" => await ServeAsync(rest),
                "probe" => await ProbeAsync(rest),
                "mnist" => await MnistCommand.RunAsync(rest),
                "run" => await RunCommand.RunAsync(rest),
                "recommender" => await RecommenderCommand.RunAsync(rest),
                "mailing-list" => await MailingListCommand.RunAsync(rest),
                "ct" => await CtCommand.RunAsync(rest),
                "-h" or "--help" or "help" => Print(Usage, 0),
                null => Print(Usage, 2),
                _ => Print($"unknown command '{command}'\n\n{Usage}", 2),
            };
        }
        catch (InvalidOperationException e) when (e.Message.Contains("Azurite", StringComparison.Ordinal))
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
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
    }

    public static string BaseUrl(WebApplication app) =>
        app.Services.GetRequiredService<ManagementLinks>().ListeningUrl ?? LocalHost.DefaultUrl;

    private static int Print(string text, int code)
    {
        (code == 0 ? Console.Out : Console.Error).WriteLine(text);
        return code;
    }

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
