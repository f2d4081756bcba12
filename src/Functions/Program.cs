using Azure.Core.Serialization;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MlFunctions.Activities;
using MlFunctions.Activities.Probes;
using MlFunctions.Core.Json;

var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();

// The same JSON settings as the local engine, so payloads stored in the task hub look the same
// whichever host wrote them.
builder.Services.Configure<WorkerOptions>(options => options.Serializer = new JsonObjectSerializer(MlJson.Options));
builder.Services.AddMlActivities();
builder.Services.Configure<ProbeOptions>(builder.Configuration.GetSection("Probe"));

builder.Build().Run();
