using System.Text.Json.Nodes;
using Azure;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Http;
using MlFunctions.Core;
using MlFunctions.Core.Datasets;

namespace MlFunctions.Api.Datasets;

/// <summary>
/// The registered datasets as the dashboard's Datasets page reads them, straight from the blobs the dataset activities
/// write: <c>datasets/{name}/{version}/manifest.json</c> and <c>validation.json</c> (the profile: per-column statistics
/// and top values, class counts), and <c>prepared/{name}/{version}/{recipe}/manifest.json</c> (the fitted transform, splits).
/// </summary>
public sealed class DatasetHandlers(BlobServiceClient blobs)
{
    private BlobContainerClient Datasets => blobs.GetBlobContainerClient(DatasetLayout.Container);

    private BlobContainerClient Prepared => blobs.GetBlobContainerClient(PreparedLayout.Container);

    /// <summary>GET api/datasets: every dataset with its versions (newest first), their format, files, size and whether validation passed.</summary>
    public async Task HandleList(HttpContext http)
    {
        var found = new List<(string Name, JsonObject Version)>();
        if (await Datasets.ExistsAsync(http.RequestAborted))
        {
            await foreach (var blob in Datasets.GetBlobsAsync(cancellationToken: http.RequestAborted))
            {
                var parts = blob.Name.Split('/');
                if (parts.Length != 3 || parts[2] != DatasetLayout.ManifestFile)
                    continue;
                var manifest = await ReadAsync(Datasets, blob.Name, http.RequestAborted);
                if (manifest is null)
                    continue;
                var validation = await ReadAsync(Datasets, $"{parts[0]}/{parts[1]}/{DatasetLayout.ValidationFile}", http.RequestAborted);
                var files = manifest["files"]?.AsArray() ?? [];
                found.Add((parts[0], new JsonObject
                {
                    ["version"] = parts[1],
                    ["format"] = manifest["format"]?.DeepClone(),
                    ["source"] = manifest["source"]?.DeepClone(),
                    ["files"] = files.Count,
                    ["bytes"] = files.Sum(f => (long?)f?["bytes"] ?? 0),
                    ["createdAt"] = blob.Properties.CreatedOn,
                    ["validated"] = validation is not null,
                    ["passed"] = validation?["passed"]?.DeepClone(),
                }));
            }
        }

        var datasets = found.GroupBy(f => f.Name, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => new
        {
            name = g.Key,
            versions = g.Select(v => v.Version).OrderByDescending(v => (DateTimeOffset?)v["createdAt"]).ToList(),
        });
        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new { datasets });
    }

    /// <summary>GET api/datasets/{name}/versions/{version}: the manifest, the validation report (profile), and each preparation with its fitted transform.</summary>
    public async Task HandleGet(HttpContext http)
    {
        var name = Segment(http, "name");
        var version = Segment(http, "version");
        var manifest = await ReadAsync(Datasets, $"{name}/{version}/{DatasetLayout.ManifestFile}", http.RequestAborted)
            ?? throw new BadRequestException($"no dataset '{name}' version '{version}'", StatusCodes.Status404NotFound);
        var validation = await ReadAsync(Datasets, $"{name}/{version}/{DatasetLayout.ValidationFile}", http.RequestAborted);
        var preparations = new JsonArray();
        if (await Prepared.ExistsAsync(http.RequestAborted))
        {
            await foreach (var blob in Prepared.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, $"{name}/{version}/", http.RequestAborted))
            {
                if (blob.Name.Split('/') is { Length: 4 } parts && parts[3] == PreparedLayout.ManifestFile && await ReadAsync(Prepared, blob.Name, http.RequestAborted) is { } prepared)
                    preparations.Add(new JsonObject
                    {
                        ["recipeHash"] = parts[2],
                        ["createdAt"] = blob.Properties.CreatedOn,
                        ["recipe"] = prepared["recipe"]?.DeepClone(),
                        ["sampleShape"] = prepared["sampleShape"]?.DeepClone(),
                        ["numClasses"] = prepared["numClasses"]?.DeepClone(),
                        ["splits"] = prepared["splits"]?.DeepClone(),
                        ["transform"] = prepared["transform"]?.DeepClone(),
                    });
            }
        }

        await HttpJson.WriteAsync(http, StatusCodes.Status200OK, new { name, version, manifest, validation, preparations });
    }

    private static string Segment(HttpContext http, string key)
    {
        var value = (string)http.Request.RouteValues[key]!;
        return !SafeNames.IsId(value)
            ? throw new BadRequestException($"'{value}' is not a valid dataset {key}: use {SafeNames.IdRule}")
            : value;
    }

    private static async Task<JsonObject?> ReadAsync(BlobContainerClient container, string blob, CancellationToken ct)
    {
        try
        {
            var content = await container.GetBlobClient(blob).DownloadContentAsync(ct);
            return JsonNode.Parse(content.Value.Content.ToMemory().Span) as JsonObject;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null; // a half-written or foreign blob is not a dataset
        }
    }
}
