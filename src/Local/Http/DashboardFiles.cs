using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.FileProviders;

namespace MlFunctions.Local.Http;

/// <summary>
/// Serves the dashboard (src/Dashboard/wwwroot, copied next to the host as dashboard/) at <c>/</c>. Mapped before
/// the key middleware: the pages and scripts are public and hold no data; every JSON call they make sends the key.
/// The same folder is also served at dashboard/ by <see cref="Api.Dashboard.DashboardContent"/>, the handler the Functions app maps.
/// </summary>
public static class DashboardFiles
{
    public static string Folder => Api.Dashboard.DashboardContent.DefaultFolder;

    public static void Map(WebApplication app)
    {
        if (!File.Exists(Path.Combine(Folder, "index.html")))
        {
            return;
        }

        var files = new PhysicalFileProvider(Folder);
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = files,
            OnPrepareResponse = context => context.Context.Response.Headers.CacheControl = "no-cache",
        });
    }
}
