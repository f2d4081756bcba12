using System.Diagnostics;
using System.Net;
using System.Text;

namespace MlFunctions.Tests.Infrastructure;

/// <summary>
/// A real local host in its own OS process (the built MlFunctions.Local.dll running `serve`), so tests
/// can kill -9 it and run two of them on one task hub.
/// </summary>
public sealed class HostProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly StringBuilder output = new();

    private HostProcess(Process process, string baseUrl)
    {
        this.process = process;
        BaseUrl = baseUrl;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string BaseUrl { get; }

    public int Pid => process.Id;

    public string Output
    {
        get
        {
            lock (output)
            {
                return output.ToString();
            }
        }
    }

    public static async Task<HostProcess> StartAsync(string storage, string taskHub, string key, string dataPath, params string[] extra)
    {
        var dll = RepoPaths.ProjectOutput("Local", "MlFunctions.Local.dll");
        if (!File.Exists(dll))
        {
            throw new InvalidOperationException($"{dll} is missing: build src/Local first (dotnet build MlFunctions.sln)");
        }

        var port = FreePorts.Next();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
                 {
                     dll, "serve", "--urls", $"http://127.0.0.1:{port}", "--Local:TaskHub", taskHub, "--Local:ApiKey", key,
                     "--Local:DataPath", dataPath, "--Logging:LogLevel:Default", "Warning", "--Local:Workers", "0",
                 }.Concat(extra))
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["AzureWebJobsStorage"] = storage;
        var host = new HostProcess(Process.Start(start)!, $"http://127.0.0.1:{port}");
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
    public void KillHard()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: false);
            process.WaitForExit(10_000);
        }
    }

    public async ValueTask DisposeAsync()
    {
        KillHard();
        await Task.CompletedTask;
        process.Dispose();
    }


    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }
}
