using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace MlFunctions.Bench.Serving;

/// <summary>
/// Variant (c): the endpoint a user would write by hand. A minimal ASP.NET Core app, one InferenceSession per
/// model (ORT defaults), and per request: deserialize the V2 JSON body into plain records, call
/// <c>session.Run</c> once, serialize the outputs. No batching, no validation beyond what the types give.
/// It accepts exactly the body variant (a) gets, so both are driven with the same bytes.
/// </summary>
internal sealed class BaselineServer : IAsyncDisposable
{
    public sealed record Tensor(string Name, long[] Shape, string Datatype, float[] Data);
    public sealed record Request(Tensor[] Inputs);
    public sealed record Response(string ModelName, Tensor[] Outputs);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private readonly WebApplication _app;
    private readonly Dictionary<string, InferenceSession> _sessions;

    private BaselineServer(WebApplication app, Dictionary<string, InferenceSession> sessions)
    {
        _app = app;
        _sessions = sessions;
    }

    public string BaseUrl { get; private set; } = "";

    public static async Task<BaselineServer> StartAsync(IEnumerable<BenchModel> models)
    {
        var sessions = models.ToDictionary(m => m.Name, m => new InferenceSession(m.Onnx));
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();

        app.MapPost("/predict/{model}", async (HttpContext ctx, string model) =>
        {
            if (!sessions.TryGetValue(model, out var session))
                return Results.NotFound();
            var request = await JsonSerializer.DeserializeAsync<Request>(ctx.Request.Body, Json, ctx.RequestAborted);
            if (request is not { Inputs: [var input] })
                return Results.BadRequest();
            using var value = OrtValue.CreateTensorValueFromMemory(input.Data, input.Shape);
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, [input.Name], [value], session.OutputNames);
            var output = results[0];
            var tensor = new Tensor(session.OutputNames[0], output.GetTensorTypeAndShape().Shape, "FP32", output.GetTensorDataAsSpan<float>().ToArray());
            return Results.Json(new Response(model, [tensor]), Json);
        });

        var server = new BaselineServer(app, sessions);
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        server.BaseUrl = addresses.First();
        return server;
    }

    public Uri PredictUri(BenchModel model) => new($"{BaseUrl}/predict/{model.Name}");

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        foreach (var s in _sessions.Values)
            s.Dispose();
    }
}
