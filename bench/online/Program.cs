using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using MlFunctions.Activities.Registry;
using MlFunctions.Bench.Online;
using MlFunctions.Bench.Serving;
using MlFunctions.Core.Registry;
using MlFunctions.Local;
using MlFunctions.Local.Cli;

// Online validation benchmark (issue #15, section 3), not a test. On the real local host over Azurite:
//   models: two real MNIST classifiers (ridge on 10,000 training images; nearest class mean from 100), t10k images
//           served with their true labels as feedback;
//   bandit: Thompson over champion (weaker) and challenger (better), label feedback after every answer;
//   A/B:    a 50/50 abtest until its sequential test calls the difference;
//   cache:  throughput on 16 repeated inputs at concurrency 16, heavy CNN, cache on vs off (per-model setting);
//   rollout: the better challenger rolled out 5 → 25 → 50 → 100 % under label feedback (promoted), then a broken
//            candidate (the ridge fit on labels off by one; rolled back at its first stage);
//   logging: throughput of the MLP (cache off) with payload logging on vs a second host with it off, in 3 interleaved
//            rounds (median ratio).
// Usage: bench/online/run.sh [bandit requests = 2000] [seconds per throughput point = 8]
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
int banditRequests = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 2000;
var duration = TimeSpan.FromSeconds(args.Length > 1 ? double.Parse(args[1], CultureInfo.InvariantCulture) : 8);
var warmup = TimeSpan.FromSeconds(2);
const string Key = "online-bench-key";
const int Concurrency = 16;
const int LoggingRounds = 3;
ThreadPool.GetMinThreads(out int minWorkers, out int minIo);
ThreadPool.SetMinThreads(Math.Max(minWorkers, 64), minIo);

var data = Directory.CreateTempSubdirectory("mlf-online-bench-").FullName;
string hub = "onlinebench" + Guid.NewGuid().ToString("N")[..8];
WebApplication StartHost(params string[] extra) => LocalHost.Build(
[
    "--urls", "http://127.0.0.1:0", "--Local:ApiKey", Key, "--Local:DataPath", data, "--Local:TaskHub", hub, "--Local:Workers", "0",
    "--Logging:LogLevel:Default", "Warning", "--Logging:LogLevel:MlFunctions.Serving", "Error",
    "--Serving:PolicyStateRefreshInterval", "00:00:00.200",
    "--Serving:ModelPredictionCache:cnn-nocache:Enabled", "false",
    "--Serving:ModelPredictionCache:mlp-nocache:Enabled", "false",
    .. extra,
]);

// ---- models and data: two real MNIST classifiers of different accuracy, served t10k images with their true labels ----
// The better one is ridge regression on 10,000 training images, the weaker a nearest-class-mean model from 100 (both
// linear, fitted in closed form in about a second: the main job's MLP and CNN would take minutes to train here).
string datasets = Environment.GetEnvironmentVariable("MLF_DATASETS") is { Length: > 0 } env ? env : Path.GetFullPath(Path.Combine("..", "shared", "datasets"));
var (trainImages, trainLabels) = OnlineModels.ReadMnist(Path.Combine(datasets, "mnist-train"), "train", 10_000);
var (pool, labels) = OnlineModels.ReadMnist(Path.Combine(datasets, "mnist"), "t10k", 10_000);
var fit = System.Diagnostics.Stopwatch.StartNew();
var ridge = OnlineModels.Ridge(trainImages, trainLabels, lambda: 10);
var weaker = OnlineModels.Centroid(trainImages.Take(100).ToList(), trainLabels.Take(100).ToList());
// The rollout's bad candidate: the same ridge fit on labels shifted by one class (a broken label mapping).
var broken = OnlineModels.Ridge(trainImages, trainLabels.Select(y => (y + 1) % OnlineModels.Classes).ToList(), lambda: 10);
double Accuracy(Linear w) => pool.Select((x, i) => OnlineModels.Predict(w, x) == labels[i] ? 1.0 : 0.0).Average();
double accGood = Accuracy(ridge), accWeak = Accuracy(weaker);
Console.WriteLine($"models (fitted in {fit.Elapsed.TotalSeconds:F1} s): champion (nearest mean, 100 images) t10k accuracy {accWeak:F3}, challenger (ridge, 10,000 images) {accGood:F3}, on {pool.Count} t10k images");
// The payload-logging and cache points measure serving cost, not accuracy: a 784-64-10 MLP (more work per request than the linear models).
var teacher = OnlineModels.Teacher(seed: 11);

static string Body(string? id, float[] x, long[] shape) => JsonSerializer.Serialize(new { id, inputs = new[] { new { name = "input", shape, datatype = "FP32", data = x } } });

var clock = System.Diagnostics.Stopwatch.StartNew();
double bestShare, regretVsUniform, cacheSpeedup, loggingOverhead;
int abToSignificance;
bool rolloutPromoted = false, rolloutRolledBack = false;
try
{
    await using (var host = StartHost())
    {
        await host.StartAsync();
        string url = Commands.BaseUrl(host);
        var registry = host.Services.GetRequiredService<IModelRegistry>();
        var container = host.Services.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(BlobModelRegistry.DefaultContainerName);
        await container.CreateIfNotExistsAsync();
        async Task<int> Register(string model, byte[] onnx, string alias, string output, long[] inputShape, int outputs)
        {
            string sha = Convert.ToHexStringLower(SHA256.HashData(onnx));
            string blob = $"{model}/artifacts/{sha[..16]}.onnx";
            await container.GetBlobClient(blob).UploadAsync(BinaryData.FromBytes(onnx), overwrite: true);
            var v = await registry.RegisterVersionAsync(model, new ModelVersionDraft
            {
                ArtifactUri = $"{BlobModelRegistry.DefaultContainerName}/{blob}",
                Sha256 = sha,
                Signature = new ModelSignature([new TensorSignature("input", "FP32", inputShape)], [new TensorSignature(output, "FP32", [-1, outputs])]),
                Lineage = new ModelLineage { PipelineRunId = "online-bench-" + model + alias },
            });
            await registry.SetAliasAsync(model, alias, v.Version);
            return v.Version;
        }
        int weakVersion = await Register("mnist", OnlineModels.Onnx(weaker), RegistryNames.Champion, OnlineModels.Output, [-1, OnlineModels.Features], 10);
        int goodVersion = await Register("mnist", OnlineModels.Onnx(ridge), "challenger", OnlineModels.Output, [-1, OnlineModels.Features], 10);
        await Register("mlp-nocache", OnlineModels.Onnx(teacher), RegistryNames.Champion, OnlineModels.Output, [-1, OnlineModels.Features], 10);
        var heavy = BenchModels.HeavyCnn();
        await Register("cnn-cache", heavy.Onnx, RegistryNames.Champion, BenchModel.Output, heavy.BatchShape(-1), heavy.OutputSize);
        await Register("cnn-nocache", heavy.Onnx, RegistryNames.Champion, BenchModel.Output, heavy.BatchShape(-1), heavy.OutputSize);

        using var http = LoadGenerator.NewClient();
        http.DefaultRequestHeaders.Add(MlFunctions.Local.Http.ApiKeys.HeaderName, Key);
        async Task Put(object policy)
        {
            using var r = await http.PutAsync($"{url}/api/serving/mnist/policy", JsonContent.Create(policy));
            if (!r.IsSuccessStatusCode)
                throw new InvalidOperationException($"policy: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        }
        // One request and its label feedback; returns the serving version and the feedback answer.
        async Task<(int Version, JsonElement Feedback)> Serve(string id, int i)
        {
            using var r = await http.PostAsync($"{url}/v2/models/mnist/infer", new StringContent(Body(id, pool[i], [1, OnlineModels.Features]), Encoding.UTF8, "application/json"));
            r.EnsureSuccessStatusCode();
            int version = int.Parse(r.Headers.GetValues("X-Model-Version").Single(), CultureInfo.InvariantCulture);
            using var f = await http.PostAsync($"{url}/v2/models/mnist/feedback", JsonContent.Create(new { id, label = labels[i] }));
            var text = await f.Content.ReadAsStringAsync();
            if (!f.IsSuccessStatusCode)
                throw new InvalidOperationException($"feedback: {(int)f.StatusCode} {text}");
            return (version, JsonDocument.Parse(text).RootElement.Clone());
        }

        // ---- bandit ----
        await Put(new { kind = "bandit", algorithm = "thompson", arms = new[] { "champion", "challenger" }, seed = 1 });
        var served = new int[banditRequests];
        int next = -1;
        var banditClock = System.Diagnostics.Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
        {
            for (int i; (i = Interlocked.Increment(ref next)) < banditRequests;)
                served[i] = (await Serve($"bandit-{i}", i % pool.Count)).Version;
        }));
        bestShare = served.Skip(banditRequests / 2).Count(v => v == goodVersion) / (double)(banditRequests - (banditRequests / 2));
        double regret = served.Sum(v => v == goodVersion ? 0 : accGood - accWeak);
        regretVsUniform = regret / (banditRequests * (accGood - accWeak) / 2);
        Console.WriteLine($"bandit (thompson, 4 clients): {banditRequests} requests + feedback in {banditClock.Elapsed.TotalSeconds:F1} s; " +
            $"better model served {bestShare:P1} of the last half; pseudo-regret {regret:F1} vs {banditRequests * (accGood - accWeak) / 2:F1} for a 50/50 split");

        // ---- A/B ----
        await Put(new { kind = "abtest", weights = new Dictionary<string, double> { ["champion"] = 50, ["challenger"] = 50 } });
        abToSignificance = -1;
        for (int i = 0; i < 20_000 && abToSignificance < 0; i++)
        {
            var (_, feedback) = await Serve($"ab-{i}", i % pool.Count);
            var test = feedback.GetProperty("test");
            if (test.GetProperty("significant").GetBoolean())
            {
                abToSignificance = i + 1;
                Console.WriteLine($"A/B (mSPRT, alpha 0.05): significant after {abToSignificance} requests; difference {test.GetProperty("difference").GetDouble():F3}, " +
                    $"p {test.GetProperty("pValue").GetDouble():G3}, feedback {test.GetProperty("feedbackA").GetDouble()} / {test.GetProperty("feedbackB").GetDouble()}");
            }
        }
        using (await http.DeleteAsync($"{url}/api/serving/mnist/policy")) { }

        // ---- rollouts: the better challenger through 5 → 25 → 50 → 100 %, then a much worse candidate ----
        // Stages hold until the challenger has served 30 requests, with 30 requests and 30 label feedbacks per side
        // before a check counts; label feedback after every answer, 4 clients, until the rollout ends.
        async Task<(string Outcome, string Reason, int Requests)> RolloutAsync(string challenger, string tag)
        {
            using var start = await http.PostAsync($"{url}/api/serving/mnist/rollouts", JsonContent.Create(new
            {
                challenger,
                holdRequests = 30,
                pollSeconds = 0.5,
                maxStageSeconds = 300,
                criteria = new { minRequests = 30, minFeedback = 30 },
            }));
            var started = await start.Content.ReadAsStringAsync();
            if (!start.IsSuccessStatusCode)
                throw new InvalidOperationException($"rollout: {(int)start.StatusCode} {started}");
            string id = JsonDocument.Parse(started).RootElement.GetProperty("id").GetString()!;
            using var stop = new CancellationTokenSource();
            int sent = -1;
            var traffic = Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
            {
                while (!stop.IsCancellationRequested)
                {
                    int i = Interlocked.Increment(ref sent);
                    string rid = $"{tag}-{i}";
                    using var r = await http.PostAsync($"{url}/v2/models/mnist/infer", new StringContent(Body(rid, pool[i % pool.Count], [1, OnlineModels.Features]), Encoding.UTF8, "application/json"));
                    if (!r.IsSuccessStatusCode)
                        continue;
                    // 410: served under a stage's policy that has just been replaced; its feedback no longer counts.
                    using var f = await http.PostAsync($"{url}/v2/models/mnist/feedback", JsonContent.Create(new { id = rid, label = labels[i % pool.Count] }));
                }
            }));
            JsonElement rollout;
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(5);
            while (true)
            {
                await Task.Delay(500);
                var status = JsonDocument.Parse(await http.GetStringAsync($"{url}/api/serving/mnist/rollouts/{id}")).RootElement;
                rollout = status.GetProperty("rollout");
                if (status.GetProperty("runtimeStatus").GetString() is "Completed" or "Failed" or "Terminated" || DateTime.UtcNow > deadline)
                    break;
            }
            await stop.CancelAsync();
            await traffic;
            return (rollout.GetProperty("outcome").GetString()!, rollout.GetProperty("reason").GetString()!, sent + 1);
        }
        var rolloutClock = System.Diagnostics.Stopwatch.StartNew();
        var better = await RolloutAsync("challenger", "ro-better");
        Console.WriteLine($"rollout of the better challenger: {better.Outcome} after {better.Requests} requests in {rolloutClock.Elapsed.TotalSeconds:F1} s: {better.Reason}");
        await Register("mnist", OnlineModels.Onnx(broken), "candidate", OnlineModels.Output, [-1, OnlineModels.Features], 10);
        rolloutClock.Restart();
        var worst = await RolloutAsync("candidate", "ro-worse");
        Console.WriteLine($"rollout of a broken candidate (labels off by one, accuracy {Accuracy(broken):F3}): {worst.Outcome} after {worst.Requests} requests in {rolloutClock.Elapsed.TotalSeconds:F1} s: {worst.Reason}");
        rolloutPromoted = better.Outcome == "promoted";
        rolloutRolledBack = worst.Outcome == "rolled-back";
        using (await http.DeleteAsync($"{url}/api/serving/mnist/policy")) { }

        // ---- cache: 16 repeated inputs, concurrency 16 ----
        var cnnInputs = Enumerable.Range(0, 16).Select(i => pool[i].Take(784).ToArray()).ToList();
        PreparedRequest[] Requests(string model, IEnumerable<float[]> xs, long[] shape) =>
            xs.Select(x => new PreparedRequest(new Uri($"{url}/v2/models/{model}/infer"), Encoding.UTF8.GetBytes(Body(null, x, shape)), "application/json", [])).ToArray();
        var on = await LoadGenerator.RunHttpAsync("cache on", http, Requests("cnn-cache", cnnInputs, [1, 1, 28, 28]), Concurrency, 1, warmup, duration);
        var off = await LoadGenerator.RunHttpAsync("cache off", http, Requests("cnn-nocache", cnnInputs, [1, 1, 28, 28]), Concurrency, 1, warmup, duration);
        cacheSpeedup = on.SamplesPerSec / off.SamplesPerSec;
        Console.WriteLine($"cache (heavy CNN, 16 repeated inputs, {Concurrency} clients): on {on.SamplesPerSec:F0}/s p99 {on.P99Ms:F1} ms, off {off.SamplesPerSec:F0}/s p99 {off.P99Ms:F1} ms; errors {on.Errors + off.Errors}");

        // ---- logging: this host (logging on, its default) against a second host on the same storage with it off ----
        // Interleaved rounds, on then off, each point as long as the others: a single on-then-off pair read 0.934,
        // 0.971 and 1.003 in three runs of the same build, drift (the JIT, GC heaps, whatever else the two shared cores
        // ran) of the same size as the effect. The median of the per-round ratios is the figure; all rounds are printed.
        await using var offHost = StartHost("--Serving:PayloadLogging:Enabled", "false");
        await offHost.StartAsync();
        string offUrl = Commands.BaseUrl(offHost);
        var onRequests = Requests("mlp-nocache", pool.Take(1000), [1, OnlineModels.Features]);
        var offRequests = pool.Take(1000).Select(x => new PreparedRequest(new Uri($"{offUrl}/v2/models/mlp-nocache/infer"), Encoding.UTF8.GetBytes(Body(null, x, [1, OnlineModels.Features])), "application/json", [])).ToArray();
        var ratios = new List<double>();
        for (int round = 1; round <= LoggingRounds; round++)
        {
            var logged = await LoadGenerator.RunHttpAsync("logging on", http, onRequests, Concurrency, 1, warmup, duration);
            var plain = await LoadGenerator.RunHttpAsync("logging off", http, offRequests, Concurrency, 1, warmup, duration);
            ratios.Add(logged.SamplesPerSec / plain.SamplesPerSec);
            Console.WriteLine($"payload logging round {round} (MLP, cache off, {Concurrency} clients): on {logged.SamplesPerSec:F0}/s p50 {logged.P50Ms:F1} ms p99 {logged.P99Ms:F1} ms, off {plain.SamplesPerSec:F0}/s p50 {plain.P50Ms:F1} ms p99 {plain.P99Ms:F1} ms, ratio {ratios[^1]:F3}; errors {logged.Errors + plain.Errors}");
        }
        ratios.Sort();
        loggingOverhead = ratios[ratios.Count / 2];
        await offHost.StopAsync();
        await host.StopAsync(); // flushes the payload log

        // What was logged: the writer's blobs for the MLP (one per batch and hour), so the "on" figure is known to include the writes.
        long blobs = 0, bytes = 0;
        await foreach (var b in host.Services.GetRequiredService<BlobServiceClient>().GetBlobContainerClient("payload-logs").GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "mlp-nocache/", default))
        {
            blobs++;
            bytes += b.Properties.ContentLength ?? 0;
        }
        Console.WriteLine($"payload log: {blobs} blobs, {bytes / 1e6:F1} MB of JSON lines for mlp-nocache; logging_overhead = median of {string.Join(", ", ratios.Select(r => r.ToString("F3", CultureInfo.InvariantCulture)))}");
    }
}
finally
{
    try { Directory.Delete(data, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
}
Console.WriteLine($"wall {clock.Elapsed.TotalSeconds:F0} s. Definitions: best_share = share of the last half of the bandit's requests served by the better model; " +
    "regret_vs_uniform = the bandit's pseudo-regret / a 50/50 split's; ab_requests = requests (each with feedback) until the mSPRT was significant; " +
    "cache_hit_speedup and logging_overhead = throughput ratios (on / off); rollout_promoted = the better challenger went 5→25→50→100 % and became champion; " +
    "rollout_rolled_back = a broken candidate (labels off by one) was rolled back to the champion.");
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"RESULT online bandit_best_share={bestShare:F3} bandit_regret_vs_uniform={regretVsUniform:F3} ab_requests_to_significance={abToSignificance} cache_hit_speedup={cacheSpeedup:F2} logging_overhead={loggingOverhead:F3} rollout_promoted={(rolloutPromoted ? "true" : "false")} rollout_rolled_back={(rolloutRolledBack ? "true" : "false")}"));
