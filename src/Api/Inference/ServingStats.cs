using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using Microsoft.AspNetCore.Http;
using MlFunctions.Serving;

namespace MlFunctions.Api.Inference;

/// <summary>
/// This process's serving figures per model and version, read off the <see cref="ServingMetrics"/> instruments with a
/// <see cref="MeterListener"/> (the same measurements Prometheus / Application Insights get): requests by status, a latency
/// histogram with p50/p99, and prediction-cache hits and misses. Since the process started; in Azure Functions each
/// instance counts its own (the fleet-wide view is Application Insights').
/// </summary>
public sealed class ServingStats : IDisposable
{
    /// <summary>Histogram bucket upper bounds in ms: 1–2–5 steps from 0.5 ms (a cached hit) to 10 s (a cold model load).</summary>
    public static readonly double[] BoundsMs = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];

    // The last 2048 latencies per version give p50/p99 exactly over recent traffic at 16 KB per version.
    private const int Window = 2048;

    private readonly ConcurrentDictionary<(string Model, string Version), Version> versions = new();
    private readonly MeterListener listener = new();
    private readonly DateTimeOffset since = DateTimeOffset.UtcNow;

    public ServingStats(ServingMetrics metrics)
    {
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument, metrics.Requests) || ReferenceEquals(instrument, metrics.Duration) ||
                ReferenceEquals(instrument, metrics.CacheHits) || ReferenceEquals(instrument, metrics.CacheMisses))
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var v = For(tags);
            if (ReferenceEquals(instrument, metrics.Requests))
                v.Count(Status(tags), value);
            else if (ReferenceEquals(instrument, metrics.CacheHits))
                Interlocked.Add(ref v.CacheHits, value);
            else if (ReferenceEquals(instrument, metrics.CacheMisses))
                Interlocked.Add(ref v.CacheMisses, value);
        });
        listener.SetMeasurementEventCallback<double>((instrument, seconds, tags, _) =>
        {
            if (ReferenceEquals(instrument, metrics.Duration))
                For(tags).Record(seconds * 1000);
        });
        listener.Start();
    }

    /// <summary>GET api/serving/{model}/stats: per version, then the traffic share of each.</summary>
    public Task HandleGet(HttpContext http)
    {
        var model = (string)http.Request.RouteValues["model"]!;
        var rows = versions.Where(kv => kv.Key.Model == model).OrderBy(kv => kv.Key.Version, StringComparer.Ordinal).Select(kv => kv.Value.Snapshot(kv.Key.Version)).ToList();
        var total = rows.Sum(r => r.Requests);
        return HttpJson.WriteAsync(http, StatusCodes.Status200OK, new
        {
            model,
            since,
            requests = total,
            boundsMs = BoundsMs,
            versions = rows.Select(r => r with { TrafficShare = total == 0 ? 0 : (double)r.Requests / total }),
        });
    }

    private Version For(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string model = "", version = "";
        foreach (var tag in tags)
        {
            if (tag.Key == "model")
                model = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "";
            else if (tag.Key == "version")
                version = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "";
        }

        return versions.GetOrAdd((model, version), _ => new Version());
    }

    private static int Status(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == "status" && tag.Value is int s)
                return s;
        }

        return 200;
    }

    public void Dispose() => listener.Dispose();

    /// <summary>Creates the listener when the host starts, so the figures count from the first request, not from the first look at them.</summary>
    public sealed class Starter(ServingStats stats) : Microsoft.Extensions.Hosting.IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.FromResult(stats);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    public sealed record VersionStats(string Version, long Requests, long ClientErrors, long ServerErrors, double ErrorRate, double? P50Ms, double? P99Ms,
        long[] Histogram, long CacheHits, long CacheMisses, double? CacheHitRate, double TrafficShare);

    private sealed class Version
    {
        public long CacheHits;
        public long CacheMisses;
        private readonly object gate = new();
        private readonly long[] buckets = new long[BoundsMs.Length + 1];
        private readonly double[] recent = new double[Window];
        private long requests, clientErrors, serverErrors, recorded;

        public void Count(int status, long n)
        {
            Interlocked.Add(ref requests, n);
            // 499 (the client went away) is nobody's error, as in the dataplane's own accounting.
            if (status >= 500)
                Interlocked.Add(ref serverErrors, n);
            else if (status >= 400 && status != 499)
                Interlocked.Add(ref clientErrors, n);
        }

        public void Record(double ms)
        {
            var i = Array.BinarySearch(BoundsMs, ms);
            lock (gate)
            {
                buckets[i >= 0 ? i : ~i]++;
                recent[recorded++ % Window] = ms;
            }
        }

        public VersionStats Snapshot(string version)
        {
            double[] window;
            long[] histogram;
            lock (gate)
            {
                window = recent.Take((int)Math.Min(recorded, Window)).Order().ToArray();
                histogram = (long[])buckets.Clone();
            }

            double? Quantile(double q) => window.Length == 0 ? null : window[(int)Math.Min(window.Length - 1, Math.Ceiling(q * window.Length) - 1)];
            var n = Interlocked.Read(ref requests);
            var errors = Interlocked.Read(ref serverErrors);
            var hits = Interlocked.Read(ref CacheHits);
            var misses = Interlocked.Read(ref CacheMisses);
            return new VersionStats(version, n, Interlocked.Read(ref clientErrors), errors, n == 0 ? 0 : (double)errors / n, Quantile(0.5), Quantile(0.99),
                histogram, hits, misses, hits + misses == 0 ? null : (double)hits / (hits + misses), 0);
        }
    }
}
