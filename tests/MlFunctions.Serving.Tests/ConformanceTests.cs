using MlFunctions.Core.Registry;

namespace MlFunctions.Serving.Tests;

/// <summary>Models every conformance row can rely on, loaded once.</summary>
public sealed class ConformanceFixture : IAsyncLifetime
{
    internal Harness Harness { get; } = new(o =>
    {
        o.MaxRequestBodyBytes = 64 * 1024;
        o.ModelLoadWait = TimeSpan.FromMilliseconds(200);
    });

    public async Task InitializeAsync()
    {
        var h = Harness;
        await h.RegisterAsync("mlp", OnnxModels.Mlp(seed: 1));
        var v2 = await h.RegisterAsync("mlp", OnnxModels.Mlp(seed: 2), alias: "challenger");
        await h.RegisterAsync("addmul", OnnxModels.AddMul());
        await h.RegisterAsync("nochamp", OnnxModels.Mlp(), alias: null);
        var gated = await h.RegisterAsync("gated", OnnxModels.Mlp());
        ((MemoryArtifactStore)h.Artifacts).Gates[gated.ArtifactUri] = new TaskCompletionSource(); // never released: stays "loading"
        var real = OnnxModels.Mlp();
        await h.RegisterAsync("badsha", real, sha256: OnnxModels.Sha256(OnnxModels.Mlp(seed: 99)));
        await h.RegisterAsync("mutable", OnnxModels.Mlp());
        await h.Registry.SetAliasAsync("mutable", "gone", 1);
        // Load what the "ready" rows expect to be ready.
        await h.Dataplane.GetModelMetadataAsync("mlp", "1");
        await h.Dataplane.GetModelMetadataAsync("mlp", v2.Version.ToString());
        await h.Dataplane.GetModelMetadataAsync("addmul", null);
    }

    public async Task DisposeAsync() => await Harness.DisposeAsync();
}

/// <summary>The KServe V2/V1 and registry conformance table: every route, every error case, through the real handlers.</summary>
public sealed class ConformanceTests(ConformanceFixture fixture) : IClassFixture<ConformanceFixture>
{
    private const string Mlp2x4 = """{"id":"r1","inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[[1,2,3,4],[5,6,7,8]]}]}""";
    private const string AddMul = """{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},{"name":"b","shape":[1,3],"datatype":"FP32","data":[4,5,6]}]}""";
    private static readonly string TooBig = """{"inputs":[{"name":"input","shape":[20000,4],"datatype":"FP32","data":[""" + string.Join(",", Enumerable.Repeat("0", 80000)) + "]}]}";

    public static TheoryData<string, string, string, string?, string?, int, string?> Cases => new()
    {
        // name, method, path, body, header, status, body contains
        { "server metadata", "GET", "v2", null, null, 200, "\"name\":\"mlfunctions\"" },
        { "live", "GET", "v2/health/live", null, null, 200, "\"live\":true" },
        { "server ready", "GET", "v2/health/ready", null, null, 200, "\"ready\":true" },
        { "model metadata", "GET", "v2/models/mlp", null, null, 200, "\"platform\":\"onnxruntime_onnx\"" },
        { "model metadata reports provider", "GET", "v2/models/mlp", null, null, 200, "\"execution_provider\":\"CPUExecutionProvider\"" },
        { "model metadata inputs", "GET", "v2/models/mlp", null, null, 200, "\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[-1,4]}]" },
        { "version metadata", "GET", "v2/models/mlp/versions/2", null, null, 200, "\"versions\":[\"2\"]" },
        { "alias metadata", "GET", "v2/models/mlp@challenger", null, null, 200, "\"alias\":\"challenger\"" },
        { "model ready", "GET", "v2/models/mlp/ready", null, null, 200, "\"ready\":true" },
        { "version ready", "GET", "v2/models/mlp/versions/1/ready", null, null, 200, "\"ready\":true" },
        { "infer champion", "POST", "v2/models/mlp/infer", Mlp2x4, null, 200, "\"model_version\":\"1\",\"id\":\"r1\"" },
        { "infer output shape", "POST", "v2/models/mlp/infer", Mlp2x4, null, 200, "\"name\":\"output\",\"datatype\":\"FP32\",\"shape\":[2,3]" },
        { "infer version", "POST", "v2/models/mlp/versions/2/infer", Mlp2x4, null, 200, "\"model_version\":\"2\"" },
        { "infer alias", "POST", "v2/models/mlp@challenger/infer", Mlp2x4, null, 200, "\"model_version\":\"2\"" },
        { "infer multi input", "POST", "v2/models/addmul/infer", AddMul, null, 200, "\"name\":\"sum\",\"datatype\":\"FP32\",\"shape\":[1,3],\"data\":[5,7,9]" },
        { "infer requested output", "POST", "v2/models/addmul/infer", AddMul.Replace("]}]}", "]}],\"outputs\":[{\"name\":\"product\"}]}"), null, 200, "\"outputs\":[{\"name\":\"product\",\"datatype\":\"FP32\",\"shape\":[1,3],\"data\":[4,10,18]}]" },
        { "v1 predict", "POST", "v1/models/mlp:predict", """{"instances":[[1,2,3,4],[5,6,7,8]]}""", null, 200, "{\"predictions\":[[" },
        { "v1 predict multi input", "POST", "v1/models/addmul:predict", """{"instances":[{"a":[1,2,3],"b":[4,5,6]}]}""", null, 200, "{\"predictions\":[{\"sum\":[5,7,9],\"product\":[4,10,18]}]}" },

        { "400 wrong input name", "POST", "v2/models/mlp/infer", Mlp2x4.Replace("\"input\"", "\"x\""), null, 400, "Unknown input 'x'" },
        { "400 missing input", "POST", "v2/models/addmul/infer", """{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}""", null, 400, "Missing input 'b'" },
        { "400 duplicate input", "POST", "v2/models/mlp/infer", """{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]},{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}""", null, 400, "more than once" },
        { "400 wrong rank", "POST", "v2/models/mlp/infer", """{"inputs":[{"name":"input","shape":[8],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]}]}""", null, 400, "has shape [8] but the model expects [-1,4]" },
        { "400 wrong dim", "POST", "v2/models/mlp/infer", """{"inputs":[{"name":"input","shape":[2,5],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10]}]}""", null, 400, "has shape [2,5]" },
        { "400 wrong datatype", "POST", "v2/models/mlp/infer", Mlp2x4.Replace("FP32", "INT64"), null, 400, "datatype INT64 but the model expects FP32" },
        { "400 data too short", "POST", "v2/models/mlp/infer", Mlp2x4.Replace(",8]]", "]]"), null, 400, "has 7 data elements but its shape needs 8" },
        { "400 data too long", "POST", "v2/models/mlp/infer", Mlp2x4.Replace(",8]]", ",8,9]]"), null, 400, "more data elements" },
        { "400 data not numbers", "POST", "v2/models/mlp/infer", Mlp2x4.Replace("[1,2,3,4]", "[1,\"x\",3,4]"), null, 400, "is not a valid FP32" },
        { "400 malformed json", "POST", "v2/models/mlp/infer", "{\"inputs\":[", null, 400, "not valid JSON" },
        { "400 no inputs", "POST", "v2/models/mlp/infer", "{\"inputs\":[]}", null, 400, "non-empty 'inputs'" },
        { "400 unknown datatype", "POST", "v2/models/mlp/infer", Mlp2x4.Replace("FP32", "FP99"), null, 400, "unsupported datatype 'FP99'" },
        { "400 negative shape", "POST", "v2/models/mlp/infer", Mlp2x4.Replace("[2,4]", "[-2,4]"), null, 400, "non-negative" },
        { "400 unknown output", "POST", "v2/models/mlp/infer", Mlp2x4.Replace("]]}]}", "]]}],\"outputs\":[{\"name\":\"nope\"}]}"), null, 400, "Unknown output 'nope'" },
        { "400 binary header beyond body", "POST", "v2/models/mlp/infer", Mlp2x4, "Inference-Header-Content-Length: 99999", 400, "outside the body" },
        { "400 binary size beyond data", "POST", "v2/models/mlp/infer", """{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}]}""", "Inference-Header-Content-Length: 98", 400, "claims 16 bytes" },
        { "400 alias and version", "POST", "v2/models/mlp@challenger/versions/1/infer", Mlp2x4, null, 400, "either an alias or a version" },
        { "400 v1 ragged instances", "POST", "v1/models/mlp:predict", """{"instances":[[1,2,3,4],[5,6,7]]}""", null, 400, "different shapes" },
        { "400 v1 missing instances", "POST", "v1/models/mlp:predict", """{"inputs":[[1,2,3,4]]}""", null, 400, "'instances'" },
        { "400 v1 wrong width", "POST", "v1/models/mlp:predict", """{"instances":[[1,2,3]]}""", null, 400, "has shape [1,3]" },

        { "404 unknown model metadata", "GET", "v2/models/nope", null, null, 404, "Unknown model 'nope'" },
        { "404 unknown model ready", "GET", "v2/models/nope/ready", null, null, 404, "Unknown model 'nope'" },
        { "404 unknown model infer", "POST", "v2/models/nope/infer", Mlp2x4, null, 404, "Unknown model 'nope'" },
        { "404 unknown model v1", "POST", "v1/models/nope:predict", """{"instances":[[1,2,3,4]]}""", null, 404, "Unknown model 'nope'" },
        { "404 unknown version", "GET", "v2/models/mlp/versions/9", null, null, 404, "has no version 9" },
        { "404 unknown version ready", "GET", "v2/models/mlp/versions/9/ready", null, null, 404, "has no version 9" },
        { "404 non-numeric version", "GET", "v2/models/mlp/versions/abc", null, null, 404, "has no version 'abc'" },
        { "404 unknown version infer", "POST", "v2/models/mlp/versions/9/infer", Mlp2x4, null, 404, "has no version 9" },
        { "404 unknown alias", "GET", "v2/models/mlp@nope", null, null, 404, "has no alias 'nope'" },
        { "404 unknown alias infer", "POST", "v2/models/mlp@nope/infer", Mlp2x4, null, 404, "has no alias 'nope'" },
        { "404 no champion", "GET", "v2/models/nochamp", null, null, 404, "has no alias 'champion'" },

        { "413 infer too large", "POST", "v2/models/mlp/infer", TooBig, null, 413, "exceeds the limit of 65536 bytes" },
        { "413 v1 too large", "POST", "v1/models/mlp:predict", TooBig, null, 413, "exceeds the limit" },
        { "413 alias body too large", "PUT", "api/registry/models/mutable/aliases/big", TooBig, null, 413, "exceeds the limit" },

        { "503 loading metadata", "GET", "v2/models/gated", null, null, 503, "still loading" },
        { "503 loading ready", "GET", "v2/models/gated/ready", null, null, 503, "not ready" },
        { "503 loading infer", "POST", "v2/models/gated/infer", Mlp2x4, null, 503, "still loading" },
        { "503 sha256 mismatch infer", "POST", "v2/models/badsha/infer", Mlp2x4, null, 503, "sha256 mismatch" },

        { "registry list models", "GET", "api/registry/models", null, null, 200, "\"name\":\"mlp\",\"latestVersion\":2,\"versions\":[1,2]" },
        { "registry list versions", "GET", "api/registry/models/mlp/versions", null, null, 200, "\"version\":2" },
        { "registry list versions unknown", "GET", "api/registry/models/nope/versions", null, null, 404, "Unknown model" },
        { "registry get version", "GET", "api/registry/models/mlp/versions/1", null, null, 200, "\"sha256\":" },
        { "registry get version has lineage", "GET", "api/registry/models/mlp/versions/1", null, null, 200, "\"lineage\":{\"pipelineRunId\":\"run-" },
        { "registry get version unknown", "GET", "api/registry/models/mlp/versions/7", null, null, 404, "no version '7'" },
        { "registry get version non-numeric", "GET", "api/registry/models/mlp/versions/x", null, null, 404, "no version 'x'" },
        { "registry get alias", "GET", "api/registry/models/mlp/aliases/champion", null, null, 200, "\"version\":1" },
        { "registry get alias unknown", "GET", "api/registry/models/mlp/aliases/nope", null, null, 404, "no alias 'nope'" },
        { "registry set alias", "PUT", "api/registry/models/mutable/aliases/staging", "{\"version\":1}", null, 200, "\"alias\":\"staging\",\"version\":1" },
        { "registry set alias unknown version", "PUT", "api/registry/models/mutable/aliases/staging2", "{\"version\":42}", null, 404, "no version 42" },
        { "registry set alias bad body", "PUT", "api/registry/models/mutable/aliases/staging3", "{\"v\":1}", null, 400, "{\"version\": n}" },
        { "registry set alias bad name", "PUT", "api/registry/models/mutable/aliases/bad@name", "{\"version\":1}", null, 400, "Invalid alias name" },
        { "registry set alias stale etag", "PUT", "api/registry/models/mutable/aliases/champion", "{\"version\":1}", "If-Match: \"999999\"", 412, "Precondition failed" },
        { "registry create-only alias exists", "PUT", "api/registry/models/mutable/aliases/champion", "{\"version\":1}", "If-None-Match: *", 412, "Precondition failed" },
        { "registry delete alias", "DELETE", "api/registry/models/mutable/aliases/gone", null, null, 204, null },
        { "v1 model ready", "GET", "v1/models/mlp", null, null, 200, "{\"name\":\"mlp\",\"ready\":true}" },
        { "404 v1 model ready unknown", "GET", "v1/models/nope", null, null, 404, "Unknown model 'nope'" },
        // This harness has no serving store: policies and feedback say so (RoutingPolicyTests cover them over Azurite).
        { "503 policy without a store", "GET", "api/serving/mlp/policy", null, null, 503, "not configured" },
        { "503 put policy without a store", "PUT", "api/serving/mlp/policy", "{\"kind\":\"fixed\",\"alias\":\"champion\"}", null, 503, "not configured" },
        { "503 delete policy without a store", "DELETE", "api/serving/mlp/policy", null, null, 503, "not configured" },
        { "503 feedback without a store", "POST", "v2/models/mlp/feedback", "{\"id\":\"r1\",\"reward\":1}", null, 503, "not configured" },
        { "registry delete alias unknown", "DELETE", "api/registry/models/mutable/aliases/never", null, null, 404, "no alias 'never'" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Route_behaves_as_specified(string name, string method, string path, string? body, string? header, int status, string? contains)
    {
        var headers = header is null ? null : new Dictionary<string, string> { [header[..header.IndexOf(':')]] = header[(header.IndexOf(':') + 1)..].Trim() };
        var result = await fixture.Harness.SendAsync(method, path, body, headers);
        Assert.True(result.Status == status, $"{name}: expected {status}, got {result}");
        string haystack = result.Text;
        if (status >= 400)
        {
            using var doc = result.Json();
            Assert.True(doc.RootElement.TryGetProperty("error", out var e) && e.GetString()!.Length > 0, $"{name}: errors are {{\"error\": ...}}: {result.Text}");
            haystack = e.GetString()!; // compare the message, not its JSON escaping
        }
        if (contains is not null)
            Assert.True(haystack.Contains(contains, StringComparison.Ordinal), $"{name}: body lacks '{contains}': {result.Text}");
    }

    [Fact]
    public void Every_route_in_the_table_is_covered_by_a_case()
    {
        var covered = Cases.Select(c => Harness.Match((string)c[1], (string)c[2], out _)?.Name).ToHashSet();
        foreach (var route in MlFunctions.Api.Inference.InferenceRoutes.All)
            Assert.Contains(route.Name, covered);
    }

    [Fact]
    public async Task Model_version_route_values_are_read_from_the_template()
    {
        var route = Harness.Match("POST", "v1/models/mlp@challenger:predict", out var values);
        Assert.Equal("V1ModelPredict", route!.Name);
        Assert.Equal("mlp@challenger", values["model"]);
        var result = await fixture.Harness.SendAsync("POST", "v1/models/mlp@challenger:predict", """{"instances":[[1,2,3,4]]}""");
        Assert.Equal(200, result.Status);
    }

    [Fact]
    public async Task Body_over_the_limit_without_content_length_is_413()
    {
        // Chunked uploads carry no Content-Length: the limit must hold while streaming, too.
        var ctx = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        ctx.Request.Method = "POST";
        ctx.Request.Body = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(TooBig));
        ctx.Response.Body = new MemoryStream();
        Harness.Match("POST", "v2/models/mlp/infer", out var values);
        ctx.Request.RouteValues = values;
        await fixture.Harness.Handlers.HandleInfer(ctx);
        Assert.Equal(413, ctx.Response.StatusCode);
    }

    [Fact]
    public async Task Ready_rows_start_loading_and_become_ready()
    {
        var h = fixture.Harness;
        var v = await h.RegisterAsync("lazy", OnnxModels.Mlp(seed: 5));
        var first = await h.SendAsync("GET", "v2/models/lazy/ready");
        Assert.Contains(first.Status, new[] { 200, 503 });
        var deadline = DateTime.UtcNow.AddSeconds(20);
        HttpResult r;
        do
        {
            await Task.Delay(20);
            r = await h.SendAsync("GET", "v2/models/lazy/ready");
        }
        while (r.Status != 200 && DateTime.UtcNow < deadline);
        Assert.Equal(200, r.Status);
        Assert.Equal(RegistryNames.Champion, (await h.Registry.GetAliasAsync("lazy", RegistryNames.Champion))!.Alias);
        Assert.Equal(1, v.Version);
    }
}
