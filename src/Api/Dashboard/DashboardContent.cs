using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.StaticFiles;

namespace MlFunctions.Api.Dashboard;

/// <summary>
/// Serves the dashboard's files (src/Dashboard/wwwroot, copied next to either host as <c>dashboard/</c>) on
/// <see cref="ApiRoutes.Dashboard"/>: the Functions app's HTTP function and the local host map this one handler
/// (the local host also serves the same folder at <c>/</c>). The files are public and hold no data: every JSON
/// call the pages make sends the key, so the route is anonymous like health.
/// </summary>
public static class DashboardContent
{
    public const string FolderName = "dashboard";

    private static readonly FileExtensionContentTypeProvider ContentTypes = new();

    /// <summary>The copied wwwroot next to the running host's assemblies.</summary>
    public static string DefaultFolder => Path.Combine(AppContext.BaseDirectory, FolderName);

    /// <summary>GET dashboard/{*path}: the file, index.html for the folder itself, a 404 with a message for anything else.</summary>
    public static async Task HandleAsync(HttpContext http, string folder, string? path)
    {
        var root = Path.GetFullPath(folder);
        var relative = string.IsNullOrEmpty(path) ? "index.html" : path;
        var full = Path.GetFullPath(Path.Combine(root, relative));
        // No '..' escapes and no hidden files: only what wwwroot holds is served.
        if (!full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal) || relative.Split('/', '\\').Any(s => s.StartsWith('.')) || !File.Exists(full))
        {
            await HttpJson.ErrorAsync(http, StatusCodes.Status404NotFound,
                File.Exists(Path.Combine(root, "index.html"))
                    ? $"the dashboard has no file '{relative}'"
                    : $"the dashboard is not deployed with this host (no {FolderName}/index.html next to it)");
            return;
        }

        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = ContentTypes.TryGetContentType(full, out var type) ? type : "application/octet-stream";
        // no-cache (revalidate): a redeployed dashboard is picked up at once; the files are small (~60 KB with uPlot).
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Content-Type-Options"] = "nosniff";
        await http.Response.SendFileAsync(full, http.RequestAborted);
    }
}
