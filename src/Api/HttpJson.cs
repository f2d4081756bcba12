using System.Text.Json;
using Microsoft.AspNetCore.Http;
using MlFunctions.Core.Json;

namespace MlFunctions.Api;

/// <summary>Writes JSON bodies and the product's error shape, <c>{"error": "..."}</c>.</summary>
public static class HttpJson
{
    public static async Task WriteAsync<T>(HttpContext http, int status, T body)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json; charset=utf-8";
        await JsonSerializer.SerializeAsync(http.Response.Body, body, MlJson.Options, http.RequestAborted);
    }

    public static Task ErrorAsync(HttpContext http, int status, string message) =>
        WriteAsync(http, status, new ErrorBody(message));

    /// <summary>A 400 that lists every problem of an input at once: <c>{"error": "invalid X: a; b", "problems": [a, b]}</c>.</summary>
    public static Task ProblemsAsync(HttpContext http, string what, IReadOnlyList<string> problems) =>
        WriteAsync(http, StatusCodes.Status400BadRequest, new ProblemsBody($"invalid {what}: {string.Join("; ", problems)}", problems));

    /// <summary>
    /// The write precondition a caller stated: the <c>If-Match</c> ETag, <c>""</c> for <c>If-None-Match: *</c> (must not
    /// exist yet), or null for an unconditional write.
    /// </summary>
    public static string? Precondition(HttpContext http)
    {
        var headers = http.Request.Headers;
        if (headers.IfMatch.Count > 0)
            return headers.IfMatch[0];
        if (headers.IfNoneMatch.Count > 0 && headers.IfNoneMatch[0] == "*")
            return "";
        return null;
    }

    /// <summary>
    /// Reads the body as one JSON value. An empty body is <c>null</c> (no input); anything that is
    /// not JSON is a <see cref="BadRequestException"/> carrying the parser's position.
    /// </summary>
    public static async Task<JsonElement?> ReadBodyAsync(HttpRequest request, long maxBytes = 4 * 1024 * 1024)
    {
        if (request.ContentLength > maxBytes)
        {
            throw new BadRequestException($"body is {request.ContentLength} bytes; the limit is {maxBytes}", StatusCodes.Status413PayloadTooLarge);
        }

        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        if (buffer.Length > maxBytes)
        {
            throw new BadRequestException($"body is over the limit of {maxBytes} bytes", StatusCodes.Status413PayloadTooLarge);
        }

        if (buffer.Length == 0 || buffer.ToArray().All(b => b is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t'))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(buffer.ToArray());
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new BadRequestException($"body is not valid JSON: {e.Message}");
        }
    }
}

public sealed record ErrorBody(string Error);

public sealed record ProblemsBody(string Error, IReadOnlyList<string> Problems);

/// <summary>Bad input from a caller: handlers turn it into a 4xx with the message, never a 500.</summary>
public sealed class BadRequestException(string message, int status = StatusCodes.Status400BadRequest) : Exception(message)
{
    public int Status { get; } = status;
}
