namespace MlFunctions.Tests.Infrastructure;

/// <summary>Polls a condition with a generous bound: tests wait on outcomes, never on wall-clock speed.</summary>
public static class Eventually
{
    public static async Task<T> GetAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan? within = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(120));
        T last;
        do
        {
            last = await probe();
            if (done(last))
            {
                return last;
            }

            await Task.Delay(200);
        }
        while (DateTime.UtcNow < deadline);

        throw new TimeoutException($"{what ?? "condition"} not reached; last value: {last}");
    }
}
