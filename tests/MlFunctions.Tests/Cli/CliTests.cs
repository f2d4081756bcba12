using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using MlFunctions.Local.Cli;
using MlFunctions.Tests.Http;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;
using Xunit.Abstractions;

namespace MlFunctions.Tests.Cli;

/// <summary>
/// The CLI in-process (<see cref="Commands.RunAsync(string[], TextWriter, TextWriter, CancellationToken)"/>) against the
/// local host fixture: help on every verb, exit codes 0/1/2, --json, and one clear line (never a stack trace) for a
/// missing key, a bad key, an unknown run and a stopped host.
/// </summary>
[Collection(nameof(LocalHostCollection))]
public sealed class CliTests(LocalHostFixture host, ITestOutputHelper log)
{
    private async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await Commands.RunAsync(args, output, error, CancellationToken.None);
        log.WriteLine($"$ mlf {string.Join(' ', args)}  → {code}\n{output}{error}");
        return (code, output.ToString(), error.ToString());
    }

    private string[] Remote(params string[] args) => [.. args, "--url", host.BaseUrl, "--key", LocalHostFixture.Key];

    [Fact]
    public async Task EveryVerbHasHelpAndExitsZero()
    {
        var paths = new List<string[]>();
        void Walk(Command command, string[] path)
        {
            foreach (var sub in command.Subcommands)
            {
                string[] next = [.. path, sub.Name];
                paths.Add(next);
                Walk(sub, next);
            }
        }

        Walk(Commands.Build(), []);
        Assert.Contains(paths, p => p.SequenceEqual(new[] { "models", "alias", "set" }));
        Assert.All(Commands.Passthrough, v => Assert.Contains(paths, p => p.SequenceEqual(new[] { v.Name })));
        foreach (var path in paths.Prepend([]))
        {
            var (code, output, error) = await RunAsync([.. path, "--help"]);
            Assert.Equal(0, code);
            Assert.Equal("", error);
            Assert.Contains("sage", output); // System.CommandLine's "Usage:", the passthrough verbs' "usage:"
        }

        var mnist = await RunAsync("mnist", "--help");
        Assert.Contains(MnistCommand.Usage.Trim().Split('\n')[0].Trim(), mnist.Out);
    }

    [Theory]
    [InlineData]                                   // no verb
    [InlineData("no-such-verb")]
    [InlineData("runs")]                           // a group without its verb
    [InlineData("runs", "show")]                   // a missing argument
    [InlineData("models", "alias", "set", "m", "champion", "not-a-number")]
    public async Task UsageErrorsExitTwoWithAMessage(params string[] args)
    {
        var (code, _, error) = await RunAsync(args);
        Assert.Equal(2, code);
        Assert.Contains("error", error);
        Assert.DoesNotContain("   at ", error); // no stack trace
    }

    [Fact]
    public async Task APassthroughVerbKeepsItsOwnParserAndExitCode()
    {
        // `run` without a spec file is its own usage error (it prints to the console itself): 2, as before the table.
        Assert.Equal(2, (await RunAsync("run")).Code);
        Assert.Equal(2, (await RunAsync("run", "no-such-spec.json")).Code);
    }

    [Fact]
    public async Task RunsListAsJsonIsTheHostsJson()
    {
        var (code, output, error) = await RunAsync(Remote("runs", "list", "--json"));
        Assert.True(code == 0, error);
        Assert.NotNull(JsonNode.Parse(output)!["runs"]!.AsArray());

        var table = await RunAsync(Remote("runs", "list", "--pipeline", "no-such-pipeline"));
        Assert.Equal(0, table.Code);
        Assert.Contains("no runs match these filters", table.Out);
    }

    [Fact]
    public async Task ModelsAndSweepsListsAnswerOnTheFixture()
    {
        foreach (var verb in new[] { "models", "sweeps" })
        {
            var (code, output, error) = await RunAsync(Remote(verb, "list", "--json"));
            Assert.True(code == 0, error);
            Assert.NotNull(JsonNode.Parse(output)![verb]!.AsArray());
        }
    }

    [Fact]
    public async Task AMissingKeyIsOneClearLineAndExitOne()
    {
        Assert.Null(Environment.GetEnvironmentVariable(HostClient.KeyVariable));
        var (code, _, error) = await RunAsync("runs", "list", "--url", host.BaseUrl);
        Assert.Equal(1, code);
        Assert.StartsWith("error: no API key: pass --key KEY or set MLF_KEY", error);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public async Task ABadKeyIsRefusedWithAClearLine()
    {
        var (code, _, error) = await RunAsync("sweeps", "list", "--url", host.BaseUrl, "--key", "not-the-key");
        Assert.Equal(1, code);
        Assert.Contains("refused the API key (401)", error);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public async Task AnUnknownRunSweepAndModelGetTheHostsMessage()
    {
        var run = await RunAsync(Remote("runs", "show", "no-such-run"));
        Assert.Equal(1, run.Code);
        Assert.Contains("no pipeline run 'no-such-run'", run.Err);
        Assert.Contains("HTTP 404", run.Err);

        var sweep = await RunAsync(Remote("sweeps", "trials", "no-such-sweep"));
        Assert.Equal(1, sweep.Code);
        Assert.Contains("HTTP 404", sweep.Err);

        var file = Path.Combine(Path.GetTempPath(), $"row-{Guid.NewGuid():N}.csv");
        await File.WriteAllTextAsync(file, "1,2\n");
        var model = await RunAsync(Remote("predict", "no-such-model", file));
        Assert.Equal(1, model.Code);
        Assert.Contains("no-such-model", model.Err);
        Assert.DoesNotContain("   at ", run.Err + sweep.Err + model.Err);
    }

    [Fact]
    public async Task RunsFollowWaitsForTheEndAndExitsByItsState()
    {
        using var http = new HttpClient { BaseAddress = new Uri(host.BaseUrl) };
        http.DefaultRequestHeaders.Add("x-functions-key", LocalHostFixture.Key);

        // A completed orchestration: exit 0 and its final state.
        var started = await http.PostAsync("api/orchestrators/FanOutProbe", new StringContent("{\"count\":3}", System.Text.Encoding.UTF8, "application/json"));
        var id = (string)JsonNode.Parse(await started.Content.ReadAsStringAsync())!["id"]!;
        var ok = await RunAsync(Remote("runs", "follow", id, "--interval", "0.2"));
        Assert.True(ok.Code == 0, ok.Err);
        Assert.Contains($"run {id} Completed", ok.Out);

        // A pipeline run that fails at its first step (no data under its prefix): exit 1 with the reason, on one line.
        var pipeline = "follow-" + Guid.NewGuid().ToString("N")[..6];
        var spec = $$"""
            {"dataset": {"kind": "tabular", "sourceContainer": "uploads", "sourcePrefix": "datasets/{{pipeline}}/nothing-here"},
             "columns": {"label": "approved"}, "sweep": {"algorithm": "random", "maxTrials": 1, "parallelTrials": 1, "epochs": 1}, "metric": "auc"}
            """;
        var run = await http.PostAsync($"api/pipelines/{pipeline}/runs", new StringContent(spec, System.Text.Encoding.UTF8, "application/json"));
        Assert.True(run.StatusCode == HttpStatusCode.Accepted, await run.Content.ReadAsStringAsync());
        var runId = (string)JsonNode.Parse(await run.Content.ReadAsStringAsync())!["id"]!;
        var failed = await RunAsync(Remote("runs", "follow", runId, "--interval", "0.2"));
        Assert.Equal(1, failed.Code);
        Assert.Contains($"run {runId} Failed: ", failed.Out);

        var json = await RunAsync(Remote("runs", "follow", runId, "--json"));
        Assert.Equal("Failed", (string?)JsonNode.Parse(json.Out)!["runtimeStatus"]);

        var missing = await RunAsync(Remote("runs", "follow", "no-such-run"));
        Assert.Equal(1, missing.Code);
        Assert.Contains("no orchestration instance 'no-such-run'", missing.Err);
        Assert.DoesNotContain("   at ", missing.Err);

        var usage = await RunAsync(Remote("runs", "follow", id, "--interval", "0"));
        Assert.Equal(2, usage.Code);
    }

    [Fact]
    public async Task SweepsTrialsPagesWithTopAndSkip()
    {
        var bad = await RunAsync(Remote("sweeps", "trials", "any-sweep", "--top", "0"));
        Assert.Equal(1, bad.Code);
        Assert.Contains("top must be an integer between 1 and 1000; got '0'", bad.Err);
    }

    [Fact]
    public async Task AStoppedHostIsNamedWithHowToStartOne()
    {
        // A port that was free a moment ago and that nothing listens on: the connection is refused.
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var (code, _, error) = await RunAsync("runs", "list", "--url", $"http://127.0.0.1:{port}", "--key", "k");
        Assert.Equal(1, code);
        Assert.Contains($"the host at http://127.0.0.1:{port}/ did not answer", error);
        Assert.Contains("serve", error);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public async Task TheUrlAndKeyComeFromTheEnvironmentWhenNotGiven()
    {
        Environment.SetEnvironmentVariable(HostClient.UrlVariable, host.BaseUrl);
        Environment.SetEnvironmentVariable(HostClient.KeyVariable, LocalHostFixture.Key);
        try
        {
            var (code, output, error) = await RunAsync("models", "list", "--json");
            Assert.True(code == 0, error);
            Assert.NotNull(JsonNode.Parse(output)!["models"]);
        }
        finally
        {
            Environment.SetEnvironmentVariable(HostClient.UrlVariable, null);
            Environment.SetEnvironmentVariable(HostClient.KeyVariable, null);
        }
    }
}

/// <summary>How <c>predict</c> turns a file into the V2 request each kind of model expects, from the model's metadata inputs.</summary>
public sealed class PredictRequestTests
{
    private static JsonArray Inputs(params (string Name, string Datatype, long[] Shape)[] inputs) =>
        new(inputs.Select(i => (JsonNode)new JsonObject { ["name"] = i.Name, ["datatype"] = i.Datatype, ["shape"] = new JsonArray(i.Shape.Select(d => (JsonNode)d).ToArray()) }).ToArray());

    private static FileInfo Temp(string extension, string? text = null)
    {
        var path = Path.Combine(Path.GetTempPath(), $"predict-{Guid.NewGuid():N}{extension}");
        if (text is not null)
            File.WriteAllText(path, text);
        return new FileInfo(path);
    }

    [Fact]
    public void AnImageIsResizedToTheInputAndSentAsRawGrayLevels()
    {
        var file = Temp(".png");
        using (var image = new Image<Rgb24>(56, 56, new Rgb24(0, 0, 0)))
        {
            for (var y = 0; y < 56; y++)
                for (var x = 28; x < 56; x++)
                    image[x, y] = new Rgb24(255, 255, 255); // right half white
            image.SaveAsPng(file.FullName);
        }

        var request = PredictRequest.Build(Inputs(("input", "FP32", [-1, 1, 28, 28])), file);
        var input = request["inputs"]![0]!;
        Assert.Equal("[1,1,28,28]", input["shape"]!.ToJsonString());
        var data = input["data"]!.AsArray().Select(v => (double)v!).ToArray();
        Assert.Equal(784, data.Length);
        Assert.Equal(0, data[0]);                // top-left: black
        Assert.Equal(255, data[27]);             // top-right: white
    }

    [Fact]
    public void ACsvRowWithItsHeaderNamesTheColumnsInAnyOrder()
    {
        var inputs = Inputs(("income", "FP32", [-1]), ("city", "BYTES", [-1]));
        var request = PredictRequest.Build(inputs, Temp(".csv", "city,applicant,income\n\"Porto, PT\",a1,52.5\n"));
        var tensors = request["inputs"]!.AsArray();
        Assert.Equal(52.5, (double)tensors[0]!["data"]![0]!);
        Assert.Equal("Porto, PT", (string)tensors[1]!["data"]![0]!);

        // Without a header, the values are in the inputs' order; a wrong count is a usage error that says so.
        Assert.Equal("Graz", (string)PredictRequest.Build(inputs, Temp(".csv", "40,Graz\n"))["inputs"]![1]!["data"]![0]!);
        var e = Assert.Throws<CliUsageException>(() => PredictRequest.Build(inputs, Temp(".csv", "40\n")));
        Assert.Contains("the model takes 2 columns (income,city)", e.Message);
        Assert.Throws<CliUsageException>(() => PredictRequest.Build(inputs, Temp(".csv", "lots,Graz\n")));
    }

    [Fact]
    public void AMailLikeTextFileFillsTheNamedColumnsAndTheBody()
    {
        var inputs = Inputs(("subject", "BYTES", [-1]), ("body", "BYTES", [-1]));
        var request = PredictRequest.Build(inputs, Temp(".txt", "Subject: Re: build fails\n\nIt fails on line 3.\nThanks"));
        var tensors = request["inputs"]!.AsArray();
        Assert.Equal("Re: build fails", (string)tensors[0]!["data"]![0]!);
        Assert.Equal("It fails on line 3.\nThanks", (string)tensors[1]!["data"]![0]!);
    }

    [Fact]
    public void ARecommenderTakesTheUserIdFromTheFile()
    {
        var request = PredictRequest.Build(Inputs(("user", "BYTES", [-1]), ("k", "INT64", [1])), Temp(".txt", "u42\n"));
        Assert.Equal("u42", (string)request["inputs"]![0]!["data"]![0]!);
        Assert.Throws<CliUsageException>(() => PredictRequest.Build(Inputs(("input", "FP32", [-1, 1, 28, 28])), Temp(".csv", "1,2")));
    }
}
