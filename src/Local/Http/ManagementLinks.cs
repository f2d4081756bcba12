using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using MlFunctions.Api.Durable;
using MlFunctions.Local.Engine;

namespace MlFunctions.Local.Http;

/// <summary>
/// The local host's Durable management links: for the starter's 202 answer (from the request's own base
/// URL) and for activities that hand work to another process which reports back through the Durable
/// HTTP API (the training worker's sendEventPostUri, from the address the server listens on). The address
/// is read when asked, because the engine starts before the HTTP server knows its port.
/// </summary>
public sealed class ManagementLinks(IServer server, ApiKeys keys, IConfiguration configuration)
{
    private readonly string taskHub = EngineOptions.TaskHubFrom(configuration);

    /// <summary>Where this host listens, as a URL a client on this machine can call; null before it listens.</summary>
    public string? ListeningUrl =>
        server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() is { } address
            ? address.Replace("0.0.0.0", "127.0.0.1").Replace("[::]", "127.0.0.1").Replace("+", "127.0.0.1").Replace("*", "127.0.0.1")
            : null;

    public HttpManagementLinks For(string baseUrl, string instanceId) =>
        HttpManagementLinks.Create(baseUrl, instanceId, taskHub, "Storage", keys.Key);

    public string? SendEventUri(string instanceId) =>
        ListeningUrl is { } url ? For(url, instanceId).SendEventPostUri : null;
}
