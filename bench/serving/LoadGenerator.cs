using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;

namespace MlFunctions.Bench.Serving;

/// <summary>One measured point: throughput in samples (instances) per second and request latency percentiles.</summary>
internal sealed record Point(string Variant, int Concurrency, int SamplesPerRequest, double SamplesPerSec, double P50Ms, double P99Ms, long Requests, long Errors, string? FirstError);

/// <summary>A pre-serialized request: the body and its headers, sent unchanged every time.</summary>
internal sealed record PreparedRequest(Uri Uri, byte[] Body, string ContentType, IReadOnlyList<KeyValuePair<string, string>> Headers);

/// <summary>
/// Closed-loop load: C clients, each sending its next request as soon as the previous answer is read. A point
/// runs a warm-up (not recorded), then the measured window; only requests that complete inside the window count.
/// </summary>
internal static class LoadGenerator
{
    public static HttpClient NewClient() => new(new SocketsHttpHandler
    {
        UseProxy = false,
        UseCookies = false,
        AutomaticDecompression = DecompressionMethods.None,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        MaxConnectionsPerServer = 1024, // one connection per client: HTTP/1.1 has no multiplexing
    })
    {
        Timeout = TimeSpan.FromMinutes(2),
    };

    /// <summary>Sends one request and reads the whole answer; throws on a non-2xx status.</summary>
    public static async Task<byte[]> SendAsync(HttpClient client, PreparedRequest r, CancellationToken ct = default)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, r.Uri) { Content = new ByteArrayContent(r.Body) };
        message.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(r.ContentType);
        foreach (var (k, v) in r.Headers)
            message.Headers.TryAddWithoutValidation(k, v);
        using var response = await client.SendAsync(message, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"{(int)response.StatusCode} {System.Text.Encoding.UTF8.GetString(body.AsSpan(0, Math.Min(body.Length, 300)))}");
        return body;
    }

    /// <summary>HTTP closed loop; client i cycles through <paramref name="requests"/> starting at i.</summary>
    public static Task<Point> RunHttpAsync(string variant, HttpClient client, IReadOnlyList<PreparedRequest> requests, int concurrency, int samplesPerRequest, TimeSpan warmup, TimeSpan duration) =>
        RunAsync(variant, concurrency, samplesPerRequest, warmup, duration, worker =>
        {
            int next = worker;
            return async () =>
            {
                var r = requests[next++ % requests.Count];
                await SendAsync(client, r).ConfigureAwait(false);
            };
        }, dedicatedThreads: false);

    /// <summary>
    /// The generic closed loop. <paramref name="makeWorker"/> gives each client its operation. With
    /// <paramref name="dedicatedThreads"/> each client runs on its own thread (for synchronous work such as a raw
    /// ONNX Runtime call, which would otherwise hold thread-pool threads).
    /// </summary>
    public static async Task<Point> RunAsync(string variant, int concurrency, int samplesPerRequest, TimeSpan warmup, TimeSpan duration,
        Func<int, Func<ValueTask>> makeWorker, bool dedicatedThreads)
    {
        long start = Stopwatch.GetTimestamp();
        long measureFrom = start + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        long measureTo = measureFrom + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var latencies = new List<long>[concurrency];
        var errors = new long[concurrency];
        string? firstError = null;

        async Task Loop(int w)
        {
            var op = makeWorker(w);
            var mine = latencies[w] = new List<long>(4096);
            while (true)
            {
                long t0 = Stopwatch.GetTimestamp();
                if (t0 >= measureTo)
                    break;
                try
                {
                    await op().ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    errors[w]++;
                    Interlocked.CompareExchange(ref firstError, e.GetBaseException().Message, null);
                    await Task.Delay(10).ConfigureAwait(false); // a failing target must not turn into a hot loop
                    continue;
                }
                long t1 = Stopwatch.GetTimestamp();
                if (t1 >= measureFrom && t1 <= measureTo)
                    mine.Add(t1 - t0);
            }
        }

        var tasks = new Task[concurrency];
        for (int w = 0; w < concurrency; w++)
        {
            int id = w;
            tasks[w] = dedicatedThreads
                ? Task.Factory.StartNew(() => Loop(id).GetAwaiter().GetResult(), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)
                : Task.Run(() => Loop(id));
        }
        await Task.WhenAll(tasks).ConfigureAwait(false);

        var all = latencies.SelectMany(l => l).ToArray();
        Array.Sort(all);
        double Percentile(double p) => all.Length == 0 ? double.NaN
            : all[Math.Min(all.Length - 1, (int)Math.Ceiling(p * all.Length) - 1)] * 1000.0 / Stopwatch.Frequency;
        double seconds = duration.TotalSeconds;
        return new Point(variant, concurrency, samplesPerRequest, all.Length * (double)samplesPerRequest / seconds,
            Percentile(0.50), Percentile(0.99), all.Length, errors.Sum(), firstError);
    }
}
