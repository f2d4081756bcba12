using System.Net;
using System.Security.Cryptography;
using System.Text;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using MlFunctions.Core.OnlineValidation;
using MlFunctions.Core.Registry;

namespace MlFunctions.Serving.Online;

/// <summary>
/// Routing policies, their learned state and the served-request journal, in one blob container (by convention
/// <c>serving</c>), shared by every host process on the storage account.
/// </summary>
/// <remarks>
/// Layout: <c>{model}/policy.json</c> (the policy; moved with ETags as registry aliases are),
/// <c>{model}/state.json</c> (per-arm feedback sums), <c>{model}/stats/{generation}.json</c> (per-alias requests,
/// server errors and a latency histogram, merged from each host's deltas about once a second: what a rollout stage
/// is judged on), and in the sibling container <c>serving-requests</c> <c>{model}/requests/{sha256(id)}.json</c> (one
/// per request served under a policy; the hash makes any client id a safe blob name).
/// <para>Why one read-modify-write per feedback, with an ETag compare-and-swap and retries, rather than batched
/// updates: every state field is a sum of per-feedback deltas, so a lost race simply re-reads and re-adds, and
/// every host sees every feedback at once, which the bench's 2,000-request bandit needs to learn in time. The
/// cost is one read and one write per feedback, ~4 ms on Azurite; a single blob takes up to ~500 writes/s in
/// Azure Storage, so past a few hundred feedbacks per second per model this should become per-host batches of
/// summed deltas flushed every second (the merge is the same addition).</para>
/// <para>The request journal is bounded in time: a record counts for the policy's feedback window (default 1 h)
/// and is then answered 410. It has a container of its own because a lifecycle rule matches literal prefixes
/// only (no <c>*/requests/</c>), and a rule on <c>serving/</c> would also delete policies left unchanged for N days:
/// infra/bicep's management policy deletes <c>serving-requests/</c> blobs N days after their last write (Azurite has no
/// lifecycle: locally they stay, ~300 bytes each).</para>
/// </remarks>
public sealed class BlobServingStore
{
    public const string DefaultContainerName = "serving";

    /// <summary>Suffix of the sibling container of the request journal (<c>serving-requests</c>), so one lifecycle rule can expire it whole.</summary>
    public const string RequestsContainerSuffix = "-requests";

    private const int MaxAttempts = 100;
    private readonly BlobContainerClient _container;
    private readonly BlobContainerClient _requests;
    private readonly TimeProvider _time;
    private int _containerReady;

    /// <param name="requests">The request journal's container; default the sibling <c>{container}-requests</c>.</param>
    public BlobServingStore(BlobContainerClient container, TimeProvider? time = null, BlobContainerClient? requests = null)
    {
        _container = container;
        _requests = requests ?? container.GetParentBlobServiceClient().GetBlobContainerClient(container.Name + RequestsContainerSuffix);
        _time = time ?? TimeProvider.System;
    }

    private static string PolicyBlob(string model) => $"{model}/policy.json";
    private static string StateBlob(string model) => $"{model}/state.json";
    private static string StatsBlob(string model, string generation) => $"{model}/stats/{generation}.json";
    private static string RequestBlob(string model, string id) =>
        $"{model}/requests/{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)))}.json";

    private async Task EnsureContainerAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _containerReady) == 1)
            return;
        await _container.CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        await _requests.CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        Volatile.Write(ref _containerReady, 1);
    }

    public async Task<PolicyDocument?> GetPolicyAsync(string model, CancellationToken ct = default)
    {
        var (doc, etag) = await ReadAsync<PolicyDocument>(PolicyBlob(model), ct).ConfigureAwait(false);
        return doc is null ? null : doc with { ETag = etag };
    }

    /// <summary>
    /// Writes the policy with a new generation. <paramref name="ifMatch"/>: an ETag (only if unchanged), "*" (only if
    /// one exists), "" (only if none exists), null (always); a failed condition is a <see cref="RegistryException"/>
    /// with <see cref="RegistryErrorKind.Conflict"/> (HTTP 412).
    /// </summary>
    public async Task<PolicyDocument> PutPolicyAsync(string model, RoutingPolicy policy, string? ifMatch, CancellationToken ct = default)
    {
        await EnsureContainerAsync(ct).ConfigureAwait(false);
        var doc = new PolicyDocument(model, policy, Guid.NewGuid().ToString("N"), _time.GetUtcNow());
        var current = await GetPolicyAsync(model, ct).ConfigureAwait(false);
        CheckPrecondition(model, current?.ETag, ifMatch);
        var conditions = ifMatch switch
        {
            null => null,
            "" => new BlobRequestConditions { IfNoneMatch = ETag.All },
            "*" => current is null ? null : new BlobRequestConditions { IfMatch = new ETag(current.ETag!) },
            _ => new BlobRequestConditions { IfMatch = new ETag(current!.ETag!) },
        };
        try
        {
            var etag = await WriteAsync(PolicyBlob(model), doc, conditions, ct).ConfigureAwait(false);
            return doc with { ETag = etag };
        }
        catch (RequestFailedException e) when (IsConcurrencyFailure(e))
        {
            throw new RegistryException(RegistryErrorKind.Conflict, $"The policy of '{model}' was changed by another writer.", e);
        }
    }

    public async Task<bool> DeletePolicyAsync(string model, string? ifMatch, CancellationToken ct = default)
    {
        var current = await GetPolicyAsync(model, ct).ConfigureAwait(false);
        CheckPrecondition(model, current?.ETag, ifMatch);
        if (current is null)
            return false;
        try
        {
            await _container.GetBlobClient(PolicyBlob(model)).DeleteAsync(
                conditions: ifMatch is null ? null : new BlobRequestConditions { IfMatch = new ETag(current.ETag!) }, cancellationToken: ct).ConfigureAwait(false);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == (int)HttpStatusCode.NotFound)
        {
            return false;
        }
        catch (RequestFailedException e) when (IsConcurrencyFailure(e))
        {
            throw new RegistryException(RegistryErrorKind.Conflict, $"The policy of '{model}' was changed by another writer.", e);
        }
    }

    /// <summary>The state of <paramref name="generation"/>; a fresh one when none is stored or it belongs to an older policy.</summary>
    public async Task<PolicyState> GetStateAsync(string model, string generation, CancellationToken ct = default)
    {
        var (state, _) = await ReadAsync<PolicyState>(StateBlob(model), ct).ConfigureAwait(false);
        return state is not null && state.Generation == generation ? state : PolicyState.Fresh(generation);
    }

    /// <summary>Applies <paramref name="update"/> as a compare-and-swap, re-reading and re-applying on every lost race.</summary>
    public async Task<PolicyState> UpdateStateAsync(string model, string generation, Func<PolicyState, PolicyState> update, CancellationToken ct = default)
    {
        await EnsureContainerAsync(ct).ConfigureAwait(false);
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var (stored, etag) = await ReadAsync<PolicyState>(StateBlob(model), ct).ConfigureAwait(false);
            var current = stored is not null && stored.Generation == generation ? stored : PolicyState.Fresh(generation);
            var next = update(current);
            var conditions = etag is null ? new BlobRequestConditions { IfNoneMatch = ETag.All } : new BlobRequestConditions { IfMatch = new ETag(etag) };
            try
            {
                await WriteAsync(StateBlob(model), next, conditions, ct).ConfigureAwait(false);
                return next;
            }
            catch (RequestFailedException e) when (IsConcurrencyFailure(e))
            {
                await BackoffAsync(attempt, ct).ConfigureAwait(false);
            }
        }
        throw new RegistryException(RegistryErrorKind.Conflict, $"Could not update the policy state of '{model}' after {MaxAttempts} attempts.");
    }

    /// <summary>The serving statistics (requests, errors, latency) of one policy generation; empty when none were flushed yet.</summary>
    public async Task<ServingStatsDocument> GetStatsAsync(string model, string generation, CancellationToken ct = default)
    {
        var (doc, _) = await ReadAsync<ServingStatsDocument>(StatsBlob(model, generation), ct).ConfigureAwait(false);
        return doc ?? new ServingStatsDocument { Generation = generation };
    }

    /// <summary>
    /// Adds per-alias deltas to a generation's statistics with a compare-and-swap (sums, so a lost race re-reads and
    /// re-adds). One blob per generation: a rollout stage's numbers are its own, and no old stage can overwrite a new one.
    /// </summary>
    public async Task<ServingStatsDocument> MergeStatsAsync(string model, string generation, IReadOnlyDictionary<string, ServingStats> deltas, CancellationToken ct = default)
    {
        await EnsureContainerAsync(ct).ConfigureAwait(false);
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var (stored, etag) = await ReadAsync<ServingStatsDocument>(StatsBlob(model, generation), ct).ConfigureAwait(false);
            var next = (stored ?? new ServingStatsDocument { Generation = generation }).Merge(deltas);
            var conditions = etag is null ? new BlobRequestConditions { IfNoneMatch = ETag.All } : new BlobRequestConditions { IfMatch = new ETag(etag) };
            try
            {
                await WriteAsync(StatsBlob(model, generation), next, conditions, ct).ConfigureAwait(false);
                return next;
            }
            catch (RequestFailedException e) when (IsConcurrencyFailure(e))
            {
                await BackoffAsync(attempt, ct).ConfigureAwait(false);
            }
        }
        throw new RegistryException(RegistryErrorKind.Conflict, $"Could not update the serving statistics of '{model}' after {MaxAttempts} attempts.");
    }

    /// <summary>Remembers a served request; a reused id keeps its first record (its feedback belongs to that answer).</summary>
    public async Task RememberAsync(string model, ServedRequest request, CancellationToken ct = default)
    {
        await EnsureContainerAsync(ct).ConfigureAwait(false);
        try
        {
            await WriteAsync(RequestBlob(model, request.Id), request, new BlobRequestConditions { IfNoneMatch = ETag.All }, ct, _requests).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (IsConcurrencyFailure(e))
        {
            // The id was used before: the first record stands.
        }
    }

    /// <summary>
    /// Claims the feedback slot of a request: Unknown (never served under a policy), Expired (past its window, or its
    /// policy was replaced), Duplicate (feedback already taken, by this host or another), else Claimed with the record.
    /// </summary>
    public async Task<(FeedbackClaim Outcome, ServedRequest? Request)> ClaimAsync(string model, string id, string currentGeneration, CancellationToken ct = default)
    {
        var (record, etag) = await ReadAsync<ServedRequest>(RequestBlob(model, id), ct, _requests).ConfigureAwait(false);
        if (record is null)
            return (FeedbackClaim.Unknown, null);
        if (record.FeedbackAt is not null)
            return (FeedbackClaim.Duplicate, record);
        var now = _time.GetUtcNow();
        if (now > record.ExpiresAt || record.Generation != currentGeneration)
            return (FeedbackClaim.Expired, record);
        try
        {
            await WriteAsync(RequestBlob(model, id), record with { FeedbackAt = now }, new BlobRequestConditions { IfMatch = new ETag(etag!) }, ct, _requests).ConfigureAwait(false);
            return (FeedbackClaim.Claimed, record);
        }
        catch (RequestFailedException e) when (IsConcurrencyFailure(e))
        {
            return (FeedbackClaim.Duplicate, record); // another feedback for the same id won the race
        }
    }

    private async Task<(T? Value, string? ETag)> ReadAsync<T>(string blob, CancellationToken ct, BlobContainerClient? container = null) where T : class
    {
        try
        {
            var result = await (container ?? _container).GetBlobClient(blob).DownloadContentAsync(ct).ConfigureAwait(false);
            return (result.Value.Content.ToObjectFromJson<T>(RegistryJson.Options), result.Value.Details.ETag.ToString());
        }
        catch (RequestFailedException e) when (e.Status == (int)HttpStatusCode.NotFound)
        {
            return (null, null);
        }
    }

    private async Task<string> WriteAsync<T>(string blob, T value, BlobRequestConditions? conditions, CancellationToken ct, BlobContainerClient? container = null)
    {
        var response = await (container ?? _container).GetBlobClient(blob).UploadAsync(
            BinaryData.FromObjectAsJson(value, RegistryJson.Options),
            new BlobUploadOptions { Conditions = conditions, HttpHeaders = new BlobHttpHeaders { ContentType = "application/json" } },
            ct).ConfigureAwait(false);
        return response.Value.ETag.ToString();
    }

    private static void CheckPrecondition(string model, string? currentETag, string? ifMatch)
    {
        bool ok = ifMatch switch
        {
            null => true,
            "" => currentETag is null,
            "*" => currentETag is not null,
            _ => currentETag is not null && Unquote(currentETag) == Unquote(ifMatch),
        };
        if (!ok)
            throw new RegistryException(RegistryErrorKind.Conflict,
                $"Precondition failed for the policy of '{model}': expected ETag {(ifMatch == "" ? "(absent)" : ifMatch)}, found {currentETag ?? "(absent)"}.");
    }

    // HTTP clients differ on whether an ETag keeps its quotes; compare the opaque value only.
    private static string? Unquote(string? etag) => etag?.Trim().Trim('"');

    private static bool IsConcurrencyFailure(RequestFailedException e) =>
        e.Status is (int)HttpStatusCode.PreconditionFailed or (int)HttpStatusCode.Conflict;

    private static Task BackoffAsync(int attempt, CancellationToken ct) =>
        Task.Delay(Random.Shared.Next(1, Math.Min(5 + (attempt * 5), 100)), ct);
}
