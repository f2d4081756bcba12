using System.Text.RegularExpressions;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Datasets;

namespace MlFunctions.Activities.Datasets;

public sealed class DatasetOptions
{
    /// <summary>Folder that relative <see cref="RegisterDatasetInput.SourceDirectories"/> resolve against (default: working directory).</summary>
    public string? Root { get; set; }

    /// <summary>
    /// Largest dataset version, all files together, that registration accepts (<c>Datasets:MaxBytes</c>). The tabular
    /// and image readers hold a split in memory, so an unbounded upload could take the host down; 2 GiB by default.
    /// </summary>
    public long MaxBytes { get; set; } = 2L << 30;
}

/// <summary>
/// Registers a dataset version: hashes the source files, and when that content is new uploads them to
/// <c>datasets/{name}/{version}/</c> and then writes the manifest. The manifest is written last and only
/// once, so its presence means the version is complete; a re-run (same content) finds it and uploads
/// nothing, which makes the activity idempotent under at-least-once execution.
/// </summary>
public sealed class RegisterDatasetActivity(IStorageClients storage, IOptions<DatasetOptions> options, ILogger<RegisterDatasetActivity> logger)
    : IActivity<RegisterDatasetInput, RegisterDatasetResult>
{
    public async Task<RegisterDatasetResult> RunAsync(RegisterDatasetInput input, ActivityCall call)
    {
        var ct = call.Cancellation;
        DatasetLayout.ValidateName(input.Name);
        var service = await storage.BlobsAsync(ct);
        var sources = await ListSourcesAsync(input, service, ct);
        var format = DatasetLayout.DetectFormat(sources.Select(s => s.Name));

        var files = new List<DatasetFile>(sources.Count);
        foreach (var source in sources)
        {
            await using var stream = await source.OpenAsync(ct);
            var (sha, bytes) = await DatasetBlobs.HashAsync(stream, ct);
            files.Add(new DatasetFile(source.Name, bytes, sha));
            var total = files.Sum(f => f.Bytes);
            if (total > options.Value.MaxBytes)
            {
                throw new ArgumentException(
                    $"dataset '{input.Name}' is over the size limit: {total:N0} bytes read so far ({files.Count} of {sources.Count} files), the limit (Datasets:MaxBytes) is {options.Value.MaxBytes:N0}; nothing was registered");
            }
        }

        files.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        var contentHash = DatasetLayout.ContentHash(files);
        var version = DatasetLayout.VersionOf(contentHash);
        var dataset = new DatasetRef(input.Name, version, contentHash);
        var container = await DatasetBlobs.ContainerAsync(service, DatasetLayout.Container, ct);
        var manifestBlob = container.GetBlobClient(DatasetLayout.ManifestBlob(dataset));

        if (await DatasetBlobs.ReadJsonAsync<DatasetManifest>(manifestBlob, ct) is { } existing)
        {
            CheckSame(existing, dataset);
            logger.LogInformation("Dataset {Name} version {Version} already registered; nothing uploaded", input.Name, version);
            return new RegisterDatasetResult(existing.Ref, true, 0, existing.Files);
        }

        var uploaded = 0;
        foreach (var (source, file) in sources.OrderBy(s => s.Name, StringComparer.Ordinal).Zip(files))
        {
            var blob = container.GetBlobClient(DatasetLayout.FileBlob(input.Name, version, file.Name));

            // A previous attempt that died before the manifest may have uploaded this file already.
            if (await HasContentAsync(blob, file, ct))
            {
                continue;
            }

            await using var stream = await source.OpenAsync(ct);
            await blob.UploadAsync(stream, new BlobUploadOptions { Metadata = new Dictionary<string, string> { ["sha256"] = file.Sha256 } }, ct);
            uploaded++;
        }

        var manifest = new DatasetManifest
        {
            Name = input.Name,
            Version = version,
            ContentHash = contentHash,
            Format = format,
            Files = files,
            Source = DescribeSource(input),
        };
        if (!await DatasetBlobs.CreateJsonAsync(manifestBlob, manifest, ct))
        {
            // A concurrent registration of the same content committed first; its manifest is equivalent.
            var winner = await DatasetBlobs.ReadJsonAsync<DatasetManifest>(manifestBlob, ct)
                ?? throw new InvalidOperationException($"{manifestBlob.Name} was reported as existing but cannot be read");
            CheckSame(winner, dataset);
            return new RegisterDatasetResult(winner.Ref, true, uploaded, winner.Files);
        }

        logger.LogInformation("Registered dataset {Name} version {Version}: {Files} files, {Uploaded} uploaded", input.Name, version, files.Count, uploaded);
        return new RegisterDatasetResult(dataset, false, uploaded, files);
    }

    private static void CheckSame(DatasetManifest existing, DatasetRef dataset)
    {
        if (existing.ContentHash != dataset.ContentHash)
        {
            // 48-bit prefix collision or a hand-edited manifest: never treat different content as the same version.
            throw new InvalidOperationException(
                $"datasets/{DatasetLayout.ManifestBlob(dataset)} has content hash {existing.ContentHash}, but the files hash to {dataset.ContentHash}; remove the broken version folder and register again");
        }
    }

    private static async Task<bool> HasContentAsync(BlobClient blob, DatasetFile file, CancellationToken ct)
    {
        try
        {
            var props = await blob.GetPropertiesAsync(cancellationToken: ct);
            return props.Value.ContentLength == file.Bytes && props.Value.Metadata.TryGetValue("sha256", out var sha) && sha == file.Sha256;
        }
        catch (Azure.RequestFailedException e) when (e.Status == 404)
        {
            return false;
        }
    }

    private static string DescribeSource(RegisterDatasetInput input) =>
        input.SimulateCt is { } sim ? CtDatasetFiles.Describe(sim)
        : input.SourceContainer is not null ? $"blob:{input.SourceContainer}/" + (input.SourcePrefixes.Count > 0 ? string.Join(";", input.SourcePrefixes) : input.SourcePrefix) : "dir:" + string.Join(";", input.SourceDirectories);

    private async Task<List<SourceFile>> ListSourcesAsync(RegisterDatasetInput input, BlobServiceClient service, CancellationToken ct)
    {
        var hasDirs = input.SourceDirectories.Count > 0;
        var hasBlobs = !string.IsNullOrEmpty(input.SourceContainer);
        if (input.SimulateCt is { } simulation)
        {
            if (hasDirs || hasBlobs)
                throw new ArgumentException("RegisterDataset simulates CT slices (simulateCt) or reads sources, not both");
            return CtDatasetFiles.Simulate(simulation).Select(f => new SourceFile(f.Path, _ => Task.FromResult<Stream>(new MemoryStream(f.Bytes, writable: false)))).ToList();
        }

        if (hasDirs == hasBlobs)
        {
            throw new ArgumentException("RegisterDataset needs either SourceDirectories (files on the host's disk) or SourceContainer (+ SourcePrefix) for blobs already in storage, not both");
        }

        var include = input.Include.Select(Glob).ToList();
        bool Included(string name) => !DatasetLayout.IsHiddenFile(name) && (include.Count == 0 || include.Any(r => r.IsMatch(name)));
        var list = new List<SourceFile>();
        if (hasDirs)
        {
            var root = options.Value.Root ?? Directory.GetCurrentDirectory();
            foreach (var dir in input.SourceDirectories)
            {
                var full = Path.GetFullPath(dir, root);
                if (!Directory.Exists(full))
                {
                    throw new DirectoryNotFoundException($"dataset source folder {full} does not exist (from '{dir}', relative to {root}); set Datasets:Root or pass an absolute path");
                }

                if (input.Recursive)
                {
                    // A folder is a class (images) or a subject (CT): an empty one is a mistake the file list cannot show later.
                    var empty = Directory.EnumerateDirectories(full, "*", SearchOption.AllDirectories)
                        .Where(d => !Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories).Any(f => !DatasetLayout.IsHiddenFile(Path.GetFileName(f))))
                        .Select(d => Path.GetRelativePath(full, d).Replace(Path.DirectorySeparatorChar, '/') + "/")
                        .Where(d => !d.Split('/', StringSplitOptions.RemoveEmptyEntries).Any(DatasetLayout.IsHiddenFile))
                        .Order(StringComparer.Ordinal).ToList();
                    if (empty.Count > 0)
                    {
                        throw new InvalidDataException($"dataset source {full} has {empty.Count} empty folder(s): {string.Join(", ", empty.Take(10))}; a class folder needs its images (remove the folder or add them)");
                    }
                }

                var paths = input.Recursive
                    ? Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories).Select(p => (Path: p, Name: Path.GetRelativePath(full, p).Replace(Path.DirectorySeparatorChar, '/')))
                    : Directory.EnumerateFiles(full).Select(p => (Path: p, Name: Path.GetFileName(p)));
                foreach (var (path, name) in paths.Where(p => Included(p.Name) && !p.Name.Split('/').Any(DatasetLayout.IsHiddenFile)))
                {
                    var file = path;
                    list.Add(new SourceFile(name, _ => Task.FromResult<Stream>(File.OpenRead(file))));
                }
            }
        }
        else
        {
            var source = service.GetBlobContainerClient(input.SourceContainer);
            foreach (var folder in input.SourcePrefixes.Count > 0 ? input.SourcePrefixes : [input.SourcePrefix ?? string.Empty])
            {
                var prefix = string.IsNullOrEmpty(folder) ? string.Empty : folder.TrimEnd('/') + "/";
                await foreach (var item in source.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix }, ct))
                {
                    var name = item.Name[prefix.Length..];
                    if (name.Contains('/') && !input.Recursive)
                    {
                        throw new ArgumentException($"{input.SourceContainer}/{item.Name} is in a subfolder; a dataset is one flat folder of files");
                    }

                    if (Included(name))
                    {
                        var blob = source.GetBlobClient(item.Name);
                        list.Add(new SourceFile(name, async c => await blob.OpenReadAsync(cancellationToken: c)));
                    }
                }
            }
        }

        if (list.Count == 0)
        {
            throw new FileNotFoundException($"no files to register for dataset '{input.Name}' in {DescribeSource(input)} (include: {string.Join(", ", input.Include)})");
        }

        var duplicate = list.GroupBy(f => f.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"file name {duplicate.Key} occurs in more than one source folder; dataset files share one folder, so names must be unique");
        }

        list.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return list;
    }

    private static Regex Glob(string pattern) =>
        new("^" + Regex.Escape(pattern).Replace("\\*", ".*").Replace("\\?", ".") + "$", RegexOptions.CultureInvariant);

    private sealed record SourceFile(string Name, Func<CancellationToken, Task<Stream>> OpenAsync);
}
