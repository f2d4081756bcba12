using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using MlFunctions.Api;
using MlFunctions.Local.Storage;

namespace MlFunctions.Local.Http;

/// <summary>
/// Function keys, as in Azure Functions: every route but health (<see cref="ApiRoutes.Anonymous"/>) needs the key in the
/// <c>x-functions-key</c> header or the <c>code</c> query parameter. The key is <c>Local:ApiKey</c>, or
/// one generated once and kept in the data folder so that it survives restarts.
/// </summary>
public sealed class ApiKeys
{
    public const string HeaderName = "x-functions-key";

    public ApiKeys(IConfiguration configuration, LocalPaths paths)
    {
        var configured = configuration["Local:ApiKey"];
        if (!string.IsNullOrWhiteSpace(configured))
        {
            Key = configured;
            return;
        }

        var file = Path.Combine(paths.DataPath, "host-key.txt");
        if (File.Exists(file) && File.ReadAllText(file).Trim() is { Length: > 0 } stored)
        {
            Key = stored;
        }
        else
        {
            Directory.CreateDirectory(paths.DataPath);
            Key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).Replace('+', '-').Replace('/', '_').TrimEnd('=');
            File.WriteAllText(file, Key);
        }

        Generated = true;
        KeyFile = file;
    }

    public string Key { get; }

    public bool Generated { get; }

    public string? KeyFile { get; }

    public bool IsAuthorized(HttpRequest request)
    {
        var presented = request.Headers[HeaderName].FirstOrDefault() ?? request.Query[ApiRoutes.KeyQuery].FirstOrDefault();
        return presented is not null &&
               CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(presented), System.Text.Encoding.UTF8.GetBytes(Key));
    }

    /// <summary>Middleware: 401 with a message unless the route is anonymous or the key matches.</summary>
    public async Task EnforceAsync(HttpContext http, Func<Task> next)
    {
        var path = http.Request.Path;
        var anonymous = ApiRoutes.Anonymous.Any(route => path.Equals("/" + route, StringComparison.OrdinalIgnoreCase))
            || path.StartsWithSegments("/" + Api.Dashboard.DashboardContent.FolderName, StringComparison.OrdinalIgnoreCase);
        if (anonymous || IsAuthorized(http.Request))
        {
            await next();
            return;
        }

        await HttpJson.ErrorAsync(http, StatusCodes.Status401Unauthorized, $"a function key is required: send it in the {HeaderName} header or the code query parameter");
    }
}
