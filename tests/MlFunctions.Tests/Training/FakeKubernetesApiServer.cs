using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using MlFunctions.Tests.Infrastructure;

namespace MlFunctions.Tests.Training;

/// <summary>
/// A stand-in Kubernetes API server on loopback: no cluster can run here, so the dispatcher's request
/// is captured and asserted instead. It answers a Job create with 201, or 409 once a name exists, and a
/// delete with 200 for a Job it holds, else 404.
/// </summary>
public sealed class FakeKubernetesApiServer : IDisposable
{
    private readonly HttpListener listener = new();
    private readonly HashSet<string> created = [];
    private readonly Task loop;

    public FakeKubernetesApiServer()
    {
        var port = FreePorts.Next();
        Url = $"http://127.0.0.1:{port}";
        listener.Prefixes.Add(Url + "/");
        listener.Start();
        loop = Task.Run(ServeAsync);
    }

    public string Url { get; }

    public List<(string Method, string Path, JsonObject? Body)> Requests { get; } = [];

    public void Dispose()
    {
        listener.Stop();
        listener.Close();
        _ = loop.ContinueWith(_ => { });
    }

    private async Task ServeAsync()
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception) when (!listener.IsListening)
            {
                return;
            }

            using var reader = new StreamReader(context.Request.InputStream);
            var text = await reader.ReadToEndAsync();
            var body = text.Length > 0 ? JsonNode.Parse(text) as JsonObject : null;
            lock (Requests)
            {
                Requests.Add((context.Request.HttpMethod, context.Request.Url!.AbsolutePath, body));
            }

            context.Response.ContentType = "application/json";
            if (context.Request.HttpMethod == "DELETE")
            {
                // A delete of a Job this server never created: 404, which the dispatcher treats as done.
                var deleted = context.Request.Url!.Segments[^1];
                bool known;
                lock (created)
                {
                    known = created.Remove(deleted);
                }

                context.Response.StatusCode = known ? 200 : 404;
                var status = Encoding.UTF8.GetBytes($"{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"{(known ? "Success" : "Failure")}\",\"code\":{(known ? 200 : 404)}}}");
                await context.Response.OutputStream.WriteAsync(status);
                context.Response.Close();
                continue;
            }

            var name = (string?)body?["metadata"]?["name"] ?? string.Empty;
            bool exists;
            lock (created)
            {
                exists = !created.Add(name);
            }

            context.Response.ContentType = "application/json";
            context.Response.StatusCode = exists ? 409 : 201;
            var answer = exists
                ? $"{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"reason\":\"AlreadyExists\",\"code\":409,\"message\":\"jobs.batch \\\"{name}\\\" already exists\"}}"
                : text;
            var bytes = Encoding.UTF8.GetBytes(answer);
            await context.Response.OutputStream.WriteAsync(bytes);
            context.Response.Close();
        }
    }

}
