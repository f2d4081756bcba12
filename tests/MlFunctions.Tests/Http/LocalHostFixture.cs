using Microsoft.AspNetCore.Builder;
using MlFunctions.Local;
using MlFunctions.Local.Cli;
using MlFunctions.Tests.Infrastructure;
using Xunit;

namespace MlFunctions.Tests.Http;

/// <summary>The local host in-process on a free port, on the shared test Azurite with its own task hub.</summary>
public sealed class LocalHostFixture : IAsyncLifetime
{
    public const string Key = "fixture-key";

    private readonly string data = Directory.CreateTempSubdirectory("mlf-host-").FullName;

    public WebApplication App { get; private set; } = null!;

    public string BaseUrl { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        var storage = await TestStorage.ConnectionStringAsync();
        App = LocalHost.Build(
        [
            "--urls", "http://127.0.0.1:0", "--AzureWebJobsStorage", storage, "--Local:TaskHub", TestStorage.NewTaskHub("http"),
            "--Local:ApiKey", Key, "--Local:DataPath", data, "--Logging:LogLevel:Default", "Warning",

            // TrainModel tests play the worker themselves on the shared queue.
            "--Local:Workers", "0",
        ]);
        await App.StartAsync();
        BaseUrl = Commands.BaseUrl(App);
    }

    public async Task DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }

    public ApiClient Client(string key = Key) => new(BaseUrl, key);
}

[CollectionDefinition(nameof(LocalHostCollection))]
public sealed class LocalHostCollection : ICollectionFixture<LocalHostFixture>;
