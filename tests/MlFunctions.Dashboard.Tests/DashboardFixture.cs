using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Local;
using MlFunctions.Local.Training;
using MlFunctions.Tests.Infrastructure;
using Xunit;

namespace MlFunctions.Dashboard.Tests;

/// <summary>
/// One local host with a real training worker, one small tabular pipeline run to completion (made-up loans CSV,
/// two trials of a few epochs), and one headless Debian chromium driven by Playwright. Shared by the page tests.
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    public const string Key = "dashboard-e2e-key";
    private readonly string data = Directory.CreateTempSubdirectory("mlf-dashboard-e2e-").FullName;
    private WebApplication? app;
    private IPlaywright? playwright;

    public string BaseUrl { get; private set; } = "";

    public IServiceProvider Services => app!.Services;

    public string Pipeline { get; } = "loans-ui-" + Guid.NewGuid().ToString("N")[..6];

    public string RunId { get; private set; } = "";

    public PipelineRunResult Result { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    public string Screenshots { get; } = Path.Combine(RepoPaths.Root, "TestResults", "screenshots");

    public TimeSpan PipelineTime { get; private set; }

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Screenshots);
        if (!File.Exists(BrowserFactAttribute.ChromiumPath))
        {
            return; // every test is skipped with the reason; do not spend minutes training for nothing
        }

        Assert.True(WorkerProcesses.FindWorker(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build()) is not null,
            "the training worker is not built: dotnet build MlFunctions.sln");
        app = LocalHost.Build(
        [
            "--urls", "http://127.0.0.1:0", "--AzureWebJobsStorage", await TestStorage.ConnectionStringAsync(),
            "--Local:TaskHub", TestStorage.NewTaskHub("dashboard"), "--Local:ApiKey", Key, "--Local:DataPath", data,
            "--Local:Workers", "1", "--Dispatch:JobsQueue", "training-dashboard-" + Guid.NewGuid().ToString("N")[..8],
            "--Worker:Threads", "2", "--Worker:PollIntervalMilliseconds", "200", "--Logging:LogLevel:Default", "Warning",
        ]);
        await app.StartAsync();
        BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/') + "/";

        var clock = System.Diagnostics.Stopwatch.StartNew();
        RunId = await StartPipelineAsync();
        Result = await WaitResultAsync(RunId);
        PipelineTime = clock.Elapsed;

        playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = BrowserFactAttribute.ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
            await Browser.DisposeAsync();
        playwright?.Dispose();
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>A page at 1280×800 with the key already stored, as after the user typed it once.</summary>
    public async Task<IPage> PageAsync(string? key = Key)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 } });
        if (key is not null)
            await context.AddInitScriptAsync($"localStorage.setItem('mlf-api-key', {System.Text.Json.JsonSerializer.Serialize(key)});");
        return await context.NewPageAsync();
    }

    public HttpClient Api()
    {
        var http = new HttpClient { BaseAddress = new Uri(BaseUrl), Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Add("x-functions-key", Key);
        return http;
    }

    private async Task<string> StartPipelineAsync()
    {
        var prefix = $"datasets/{Pipeline}/batch-1";
        var container = new BlobServiceClient(await TestStorage.ConnectionStringAsync()).GetBlobContainerClient("uploads");
        await container.CreateIfNotExistsAsync();
        await container.GetBlobClient($"{prefix}/loans.csv").UploadAsync(BinaryData.FromString(LoansCsv(400, 7)), overwrite: true);
        var spec = new PipelineSpec
        {
            Dataset = new PipelineDataset { Kind = DatasetKinds.Tabular, SourceContainer = "uploads", SourcePrefix = prefix },
            Columns = new() { Label = "approved", Ignore = ["applicant"] },
            Sweep = new PipelineSweep { Algorithm = "random", MaxTrials = 2, ParallelTrials = 2, Epochs = 6 },
            RetrainEpochs = 8,
            Metric = "auc",
        };
        using var api = Api();
        var started = await api.PostAsJsonAsync($"api/pipelines/{Pipeline}/runs", spec, MlJson.Options);
        var body = await started.Content.ReadFromJsonAsync<JsonObject>();
        Assert.True(started.StatusCode == HttpStatusCode.Accepted, body?.ToJsonString());
        return (string)body!["id"]!;
    }

    private async Task<PipelineRunResult> WaitResultAsync(string id)
    {
        using var api = Api();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(10);
        while (true)
        {
            var response = await api.GetAsync($"runtime/webhooks/durabletask/instances/{id}");
            if (response.StatusCode != HttpStatusCode.Accepted && response.StatusCode != HttpStatusCode.NotFound)
            {
                var final = await response.Content.ReadFromJsonAsync<JsonObject>();
                Assert.True((string?)final!["runtimeStatus"] == "Completed", final.ToJsonString());
                return final["output"]!.Deserialize<PipelineRunResult>(MlJson.Options)!;
            }

            Assert.True(DateTime.UtcNow < deadline, $"pipeline run {id} not done in 10 minutes");
            await Task.Delay(1000);
        }
    }

    /// <summary>Made-up loan decisions (as the tabular end-to-end test): approval from income, debt and employment.</summary>
    private static string LoansCsv(int rows, int seed)
    {
        var rng = new Random(seed);
        var csv = new StringBuilder("applicant,income,debt,employed,city,approved\n");
        string[] cities = ["Lyon", "Porto", "Graz", "Turku"];
        for (var i = 0; i < rows; i++)
        {
            var income = 20 + (rng.NextDouble() * 100);
            var debt = rng.NextDouble() * 50;
            var employed = rng.NextDouble() < 0.7;
            var score = (0.08 * income) - (0.12 * debt) + (employed ? 1.5 : -1.5) - 3 + (rng.NextDouble() - 0.5);
            var approved = 1 / (1 + Math.Exp(-3 * score)) > rng.NextDouble();
            csv.Append(CultureInfo.InvariantCulture, $"a{i},{income:F1},{debt:F1},{(employed ? "yes" : "no")},{cities[rng.Next(cities.Length)]},{(approved ? "yes" : "no")}\n");
        }

        return csv.ToString();
    }
}

[CollectionDefinition(Name)]
public sealed class DashboardCollection : ICollectionFixture<DashboardFixture>
{
    public const string Name = "dashboard";
}
