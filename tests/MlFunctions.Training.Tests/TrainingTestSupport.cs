using MlFunctions.Activities.Datasets;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;
using MlFunctions.Tests.Infrastructure;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace MlFunctions.Training.Tests;

// Training tests run one at a time: torch's dropout RNG and its thread pool are process-wide, and two trainings
// at once on the 2 CI cores would only slow each other down.

/// <summary>A real MNIST slice uploaded as a prepared dataset (the format the transform activity writes).</summary>
public static class PreparedMnist
{
    public const string Container = "prepared";

    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static PreparedDataRef? cached;

    public static string DatasetsRoot => RepoPaths.SharedDatasets;

    /// <summary>2,000 training images (mnist-train part 0), 500 val and 500 test images (t10k), uploaded once per run.</summary>
    public static async Task<PreparedDataRef> UploadAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (cached is not null)
                return cached;
            PreparedShard train, val, test;
            using (var reader = IdxLabeledReader.OpenMnist(Path.Combine(DatasetsRoot, "mnist-train"), "train"))
                train = reader.ReadShard(2000);
            using (var reader = IdxLabeledReader.OpenMnist(Path.Combine(DatasetsRoot, "mnist"), "t10k"))
            {
                val = reader.ReadShard(500);
                test = reader.ReadShard(500);
            }

            var blobs = new BlobServiceClient(await TestStorage.ConnectionStringAsync());
            var container = blobs.GetBlobContainerClient(Container);
            await container.CreateIfNotExistsAsync();
            var prefix = "mnist-slice-" + Guid.NewGuid().ToString("N")[..8];
            var splits = new Dictionary<string, PreparedShard> { ["train"] = train, ["val"] = val, ["test"] = test };
            var (manifest, _) = await PreparedDatasetWriter.WriteAsync(
                container, prefix, new DatasetRef("mnist-slice", prefix, prefix), new PreparationRecipe(), "slice", TransformSpec.Mnist(), 10, splits, CancellationToken.None);
            cached = new PreparedDataRef(Container, prefix, manifest.ContentHash);
            return cached;
        }
        finally
        {
            Gate.Release();
        }
    }
}

/// <summary>Test configuration for the worker: Azurite, 2 torch threads, CPU, fast polling.</summary>
public static class WorkerConfig
{
    public static async Task<Dictionary<string, string?>> SettingsAsync(string queueSuffix, params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = await TestStorage.ConnectionStringAsync(),
            ["Worker:Threads"] = "2",
            ["Worker:Device"] = "auto",
            ["Worker:JobsQueue"] = $"training-jobs-{queueSuffix}",
            ["Worker:PoisonQueue"] = $"training-jobs-{queueSuffix}-poison",
            ["Worker:PollIntervalMilliseconds"] = "200",
            ["Worker:HeartbeatSeconds"] = "2",
            ["Worker:CallbackBackoffMilliseconds"] = "100",
        };
        foreach (var (k, v) in extra)
            settings[k] = v;
        return settings;
    }

    public static IConfiguration Build(Dictionary<string, string?> settings) => new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
}

/// <summary>
/// Stands in for the orchestration's sendEventPostUri: an HttpListener that records every TrainingEvent POSTed to
/// it (with the event name from the URL), and can refuse the first N requests to exercise the worker's retries.
/// </summary>
public sealed class CallbackReceiver : IDisposable
{
    private readonly HttpListener listener = new();
    private readonly ConcurrentQueue<(string EventName, TrainingEvent Event)> received = new();
    private readonly Task loop;
    private int failuresLeft;

    public CallbackReceiver(int failFirst = 0)
    {
        failuresLeft = failFirst;
        var port = FreePorts.Next();
        BaseUri = $"http://127.0.0.1:{port}/";
        listener.Prefixes.Add(BaseUri);
        listener.Start();
        loop = Task.Run(LoopAsync);
    }

    public string BaseUri { get; }

    /// <summary>A sendEventPostUri-shaped callback for <paramref name="instance"/>.</summary>
    public string CallbackFor(string instance) => $"{BaseUri}runtime/webhooks/durabletask/instances/{instance}/raiseEvent/{{eventName}}?taskHub=test&code=secret";

    public IReadOnlyList<(string EventName, TrainingEvent Event)> Events => received.ToArray();

    public IReadOnlyList<TrainingEvent> For(string jobId, string? kind = null) =>
        received.Select(r => r.Event).Where(e => e.JobId == jobId && (kind is null || e.Kind == kind)).ToArray();

    public Task<TrainingEvent> WaitForAsync(string jobId, string kind, TimeSpan? within = null) =>
        Eventually.GetAsync(
            () => Task.FromResult(For(jobId, kind).FirstOrDefault()),
            e => e is not null,
            within ?? TimeSpan.FromSeconds(180),
            $"{kind} event for {jobId}")!;

    public void Dispose()
    {
        listener.Stop();
        listener.Close();
        try
        {
            loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
    }

    private async Task LoopAsync()
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
            var body = await reader.ReadToEndAsync();
            if (Interlocked.Decrement(ref failuresLeft) >= 0)
            {
                context.Response.StatusCode = 503;
                context.Response.Close();
                continue;
            }

            var segments = context.Request.Url!.AbsolutePath.Split('/');
            var eventName = Uri.UnescapeDataString(segments[^1]);
            var ok = context.Request.Url.Query.Contains("code=secret", StringComparison.Ordinal);
            if (ok)
                received.Enqueue((eventName, JsonSerializer.Deserialize<TrainingEvent>(body, MlJson.Options)!));
            context.Response.StatusCode = ok ? 202 : 401;
            context.Response.Close();
        }
    }

}

/// <summary>The built worker (MlFunctions.GpuWorker.dll) in its own OS process, so a test can SIGKILL it.</summary>
/// <summary>The built training worker as a child process of the test (see <see cref="ChildProcess"/>).</summary>
public static class WorkerProcess
{
    /// <summary>The worker next to this test assembly (the project reference copies it with its runtimeconfig).</summary>
    public static string WorkerDll
    {
        get
        {
            var local = Path.Combine(AppContext.BaseDirectory, "MlFunctions.GpuWorker.dll");
            var own = Path.Combine(RepoPaths.Root, "src", "GpuWorker", "bin", RepoPaths.Configuration, "net10.0", "linux-x64", "MlFunctions.GpuWorker.dll");
            return File.Exists(Path.ChangeExtension(own, ".runtimeconfig.json")) ? own : local;
        }
    }

    public static ChildProcess Start(Dictionary<string, string?> settings, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet");
        start.ArgumentList.Add(WorkerDll);
        foreach (var a in args)
            start.ArgumentList.Add(a);
        foreach (var (key, value) in settings)
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        start.Environment["Logging__LogLevel__Default"] = "Information";
        return ChildProcess.Start(start);
    }
}

public static class Jobs
{
    public static TrainingJob Mnist(string model, PreparedDataRef data, string? callback, HyperParameters hp, bool exportOnnx = true) => new()
    {
        JobId = $"{model}-{Guid.NewGuid():N}"[..20],
        Model = model,
        Hyperparameters = hp,
        Data = data,
        CallbackUri = callback,
        ExportOnnx = exportOnnx,
        Labels = new Dictionary<string, string> { ["run"] = "tests" },
    };
}
