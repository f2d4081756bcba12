using Microsoft.AspNetCore.Builder;
using MlFunctions.Local;
using MlFunctions.Local.Training;
using Xunit;

namespace MlFunctions.Tests.Infrastructure;

/// <summary>
/// An in-process local host with one real TorchSharp worker process on its own task hub and jobs queue,
/// for the end-to-end tests that train.
/// </summary>
public static class WorkerHost
{
    public static async Task<WebApplication> StartAsync(string name, string key, string dataPath, params string[] settings)
    {
        Assert.True(
            WorkerProcesses.FindWorker(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build()) is not null,
            "the training worker is not built: dotnet build MlFunctions.sln");
        var app = LocalHost.Build(
        [
            "--urls", "http://127.0.0.1:0", "--AzureWebJobsStorage", await TestStorage.ConnectionStringAsync(),
            "--Local:TaskHub", TestStorage.NewTaskHub(name), "--Local:ApiKey", key, "--Local:DataPath", dataPath,
            "--Local:Workers", "1", "--Dispatch:JobsQueue", $"training-{name}-" + Guid.NewGuid().ToString("N")[..8],
            "--Worker:Threads", "2", "--Worker:PollIntervalMilliseconds", "200", "--Logging:LogLevel:Default", "Warning",
            .. settings,
        ]);
        await app.StartAsync();
        return app;
    }
}
