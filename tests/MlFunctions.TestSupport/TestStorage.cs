using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Local.Storage;

namespace MlFunctions.Tests.Infrastructure;

/// <summary>
/// The storage account for integration tests: <c>MLF_TEST_STORAGE</c> when CI started Azurite, else one
/// Azurite per test run with its own free ports and temp data folder. Each test class then takes its
/// own task hub, so classes run in parallel without seeing each other's work.
/// </summary>
public static class TestStorage
{
    private static readonly Lazy<Task<string>> Shared = new(StartAsync);
    private static Azurite? ownAzurite;

    public static Task<string> ConnectionStringAsync() => Shared.Value;

    /// <summary>A task hub name no other test uses (letters and digits, starts with a letter).</summary>
    public static string NewTaskHub(string prefix) => $"{prefix}{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 12, 45)];

    private static async Task<string> StartAsync()
    {
        var fromCi = Environment.GetEnvironmentVariable("MLF_TEST_STORAGE");
        if (!string.IsNullOrEmpty(fromCi))
        {
            return fromCi;
        }

        var data = Path.Combine(Path.GetTempPath(), "mlf-azurite-" + Guid.NewGuid().ToString("N")[..8]);
        ownAzurite = await Azurite.StartAsync(data, NullLogger.Instance);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => ownAzurite.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
        return ownAzurite.ConnectionString;
    }
}
