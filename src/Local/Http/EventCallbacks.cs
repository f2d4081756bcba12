using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using MlFunctions.Api.Durable;

namespace MlFunctions.Local.Http;

/// <summary>
/// The sendEventPostUri of an instance on this host, for activities that hand work to another process
/// (the training worker) which reports back through the Durable HTTP API. The address is read when
/// asked, because the engine starts before the HTTP server knows its port.
/// </summary>
public sealed class EventCallbacks(IServer server, ApiKeys keys, IConfiguration configuration)
{
    public string? SendEventUri(string instanceId)
    {
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        if (address is null)
        {
            return null;
        }

        var baseUrl = address.Replace("0.0.0.0", "127.0.0.1").Replace("[::]", "127.0.0.1").Replace("+", "127.0.0.1").Replace("*", "127.0.0.1");
        var hub = configuration["Local:TaskHub"] ?? new Engine.EngineOptions { StorageConnectionString = string.Empty }.TaskHubName;
        return HttpManagementLinks.Create(baseUrl, instanceId, hub, "Storage", keys.Key).SendEventPostUri;
    }
}
