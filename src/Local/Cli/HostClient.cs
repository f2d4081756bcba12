using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MlFunctions.Local.Http;

namespace MlFunctions.Local.Cli;

/// <summary>A failure the CLI reports as one line on stderr with exit code 1 (never a stack trace).</summary>
public sealed class CliException(string message) : Exception(message);

/// <summary>
/// The CLI's connection to a running host, local or an Azure Functions deployment: the base URL and the function key
/// (sent as the x-functions-key header, never in the URL). Every failure becomes a <see cref="CliException"/> that says
/// what to do: no key, a refused key, a missing resource (with the host's own message), a host that does not answer.
/// </summary>
public sealed class HostClient : IDisposable
{
    public const string UrlVariable = "MLF_URL";
    public const string KeyVariable = "MLF_KEY";

    private readonly HttpClient http;

    public HostClient(string url, string? key, TimeSpan? timeout = null)
    {
        if (!Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out var baseUri) || baseUri.Scheme is not ("http" or "https"))
            throw new CliUsageException($"--url '{url}' is not an http(s) URL");
        BaseUrl = baseUri;
        Key = key;
        // 100 s is HttpClient's default; a host that accepts the connection but never answers should not hang a script longer.
        http = new HttpClient { BaseAddress = baseUri, Timeout = timeout ?? TimeSpan.FromSeconds(100) };
        if (!string.IsNullOrEmpty(key))
            http.DefaultRequestHeaders.Add(ApiKeys.HeaderName, key);
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
    }

    public Uri BaseUrl { get; }

    public string? Key { get; }

    /// <summary>
    /// The key when neither --key nor MLF_KEY gives one: the file a local host generated in its default data folder (./.data)
    /// (see <see cref="ApiKeys"/>), read only when the URL is a loopback address, since that file belongs to this machine's host.
    /// </summary>
    public static string? LocalKeyFile(Uri url)
    {
        if (!url.IsLoopback)
            return null;
        var file = Path.Combine(Directory.GetCurrentDirectory(), ".data", "host-key.txt"); // LocalPaths' default Local:DataPath
        return File.Exists(file) && File.ReadAllText(file).Trim() is { Length: > 0 } key ? key : null;
    }

    public Task<JsonNode?> GetAsync(string path, CancellationToken cancellationToken) => SendAsync(HttpMethod.Get, path, null, cancellationToken);

    public Task<JsonNode?> SendAsync(HttpMethod method, string path, JsonNode? body, CancellationToken cancellationToken)
    {
        return SendRawAsync(method, path, body?.ToJsonString(), "application/json", cancellationToken, text =>
        {
            try
            {
                return text.Length == 0 ? null : JsonNode.Parse(text);
            }
            catch (JsonException)
            {
                throw new CliException($"{method} {path}: the host answered something that is not JSON: {Clip(text)}");
            }
        });
    }

    public Task<string> GetTextAsync(string path, CancellationToken cancellationToken) =>
        SendRawAsync(HttpMethod.Get, path, null, null, cancellationToken, text => text);

    private async Task<T> SendRawAsync<T>(HttpMethod method, string path, string? body, string? contentType, CancellationToken cancellationToken, Func<string, T> read)
    {
        if (string.IsNullOrEmpty(Key))
            throw new CliException($"no API key: pass --key KEY or set {KeyVariable} (the local host prints where it keeps its key when it starts; " +
                "for Azure Functions use a function key of the app)");
        using var request = new HttpRequestMessage(method, path.TrimStart('/'));
        if (body is not null)
            request.Content = new StringContent(body, Encoding.UTF8, contentType ?? "application/json");
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            var why = e.InnerException is SocketException s ? s.SocketErrorCode.ToString() : e.Message;
            throw new CliException($"the host at {BaseUrl} did not answer ({why}). Is it running? Start one with: " +
                $"mlf serve (in a checkout: dotnet run --project src/Local -c Release -- serve), or point --url / {UrlVariable} at a running one");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliException($"the host at {BaseUrl} did not answer within {http.Timeout.TotalSeconds:F0} s");
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (response.StatusCode == HttpStatusCode.Unauthorized)
                throw new CliException($"the host at {BaseUrl} refused the API key (401): check --key / {KeyVariable}");
            if (!response.IsSuccessStatusCode)
                throw new CliException($"{method} {path}: {ErrorText(text)} (HTTP {(int)response.StatusCode})");
            return read(text);
        }
    }

    /// <summary>The host's own message: {"error": ...} from the shared handlers, or KServe's {"error": ...}, else the text.</summary>
    private static string ErrorText(string text)
    {
        try
        {
            if (JsonNode.Parse(text) is JsonObject o && o["error"] is JsonValue v && v.TryGetValue<string>(out var message))
                return message;
        }
        catch (JsonException)
        {
        }

        return text.Length == 0 ? "no message" : Clip(text);
    }

    private static string Clip(string text) => text.Length <= 300 ? text : text[..300] + "…";

    public void Dispose() => http.Dispose();
}

/// <summary>A usage problem found after parsing (a bad --url, a file that does not exist): exit code 2.</summary>
public sealed class CliUsageException(string message) : Exception(message);
