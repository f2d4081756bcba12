using MlFunctions.Core.Pipelines;

namespace MlFunctions.Activities.Pipelines;

/// <summary>Finds a fresh cache entry for a step's key; an absent or stale entry is a miss (null).</summary>
public sealed class LookupStepCacheActivity(BlobStepCache cache) : IActivity<LookupStepCacheInput, LookupStepCacheResult>
{
    public async Task<LookupStepCacheResult> RunAsync(LookupStepCacheInput input, ActivityCall call) =>
        new(await cache.LookupAsync(input.Key, input.Now, input.MaxStaleness, call.Cancellation));
}

/// <summary>Stores a successful step's output under its cache key.</summary>
public sealed class StoreStepCacheActivity(BlobStepCache cache) : IActivity<StepCacheEntry, bool>
{
    public async Task<bool> RunAsync(StepCacheEntry input, ActivityCall call)
    {
        await cache.StoreAsync(input, call.Cancellation);
        return true;
    }
}

/// <summary>Persists one step's lineage record as the step ends.</summary>
public sealed class RecordLineageActivity(BlobLineageStore lineage) : IActivity<StepRecord, bool>
{
    public async Task<bool> RunAsync(StepRecord input, ActivityCall call)
    {
        await lineage.RecordAsync(input, call.Cancellation);
        return true;
    }
}
