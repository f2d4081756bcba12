using System.Diagnostics;
using System.Net;

namespace MlFunctions.Tests.Infrastructure;

/// <summary>
/// A real local host in its own OS process (the built MlFunctions.Local.dll running `serve`), so tests
/// can kill -9 it and run two of them on one task hub.
/// </summary>
public sealed class HostProcess : IAsyncDisposable
{
    private readonly ChildProcess process;

    private HostProcess(ChildProcess process, string baseUrl)
    {
        this.process = process;
        BaseUrl = baseUrl;
    }

    public string BaseUrl { get; }

    public int Pid => process.Pid;

    public string Output => process.Output;

    public static async Task<HostProcess> StartAsync(string storage, string taskHub, string key, string dataPath, params string[] extra)
    {
        var dll = RepoPaths.ProjectOutput("Local", "MlFunctions.Local.dll");
        if (!File.Exists(dll))
        {
            throw new InvalidOperationException($"{dll} is missing: build src/Local first (dotnet build MlFunctions.sln)");
        }

        var port = FreePorts.Next();
        var start = new ProcessStartInfo("dotnet");
        foreach (var arg in new[]
                 {
                     dll, "serve", "--urls", $"http://127.0.0.1:{port}", "--Local:TaskHub", taskHub, "--Local:ApiKey", key,
                     "--Local:DataPath", dataPath, "--Logging:LogLevel:Default", "Warning", "--Local:Workers", "0",
                 }.Concat(extra))
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["AzureWebJobsStorage"] = storage;
        var host = new HostProcess(ChildProcess.Start(start), $"http://127.0.0.1:{port}");
        using var http = new HttpClient();
        await Eventually.GetAsync(
            async () =>
            {
                if (host.process.HasExited)
                {
                    throw new InvalidOperationException("host exited during start:\n" + host.Output);
                }

                try
                {
                    return (await http.GetAsync($"{host.BaseUrl}/api/health")).StatusCode;
                }
                catch (HttpRequestException)
                {
                    return HttpStatusCode.ServiceUnavailable;
                }
            },
            status => status == HttpStatusCode.OK,
            TimeSpan.FromSeconds(90),
            "host health");
        return host;
    }

    /// <summary>SIGKILL: no shutdown hooks, no lock release, in-flight work is simply lost.</summary>
    public void KillHard() => process.KillHard();

    public ValueTask DisposeAsync()
    {
        process.Dispose();
        return ValueTask.CompletedTask;
    }
}
