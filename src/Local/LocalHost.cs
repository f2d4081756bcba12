using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using MlFunctions.Activities;
using MlFunctions.Activities.Probes;
using MlFunctions.Local.Engine;
using MlFunctions.Local.Http;
using MlFunctions.Local.Storage;

namespace MlFunctions.Local;

/// <summary>
/// Builds the embedded host: storage (Azurite unless AzureWebJobsStorage is set), the Durable engine,
/// the activities' services, keys and HTTP routes. <c>serve</c> runs it; tests build it in-process.
/// </summary>
public static class LocalHost
{
    public const string DefaultUrl = "http://127.0.0.1:7071";

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args });
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            // func's port, so scripts written against `func start` work against this host too.
            builder.WebHost.UseUrls(DefaultUrl);
        }

        builder.Services.AddSingleton<LocalPaths>();
        builder.Services.AddSingleton<LocalStorage>();
        builder.Services.AddSingleton<ApiKeys>();
        builder.Services.AddSingleton<EngineService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<EngineService>());
        builder.Services.AddMlActivities();
        builder.Services.Configure<ProbeOptions>(builder.Configuration.GetSection("Probe"));
        configure?.Invoke(builder);

        var app = builder.Build();
        LocalRoutes.Map(app);
        return app;
    }
}
