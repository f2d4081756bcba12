using Xunit;

namespace MlFunctions.Dashboard.Tests;

/// <summary>
/// A fact that needs a real browser: skipped, with the reason, only when Debian's chromium is absent
/// (<c>apt-get install -y chromium</c>; <c>.ci/run</c> installs it). <c>MLF_CHROMIUM</c> points elsewhere.
/// </summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public static string ChromiumPath { get; } =
        Environment.GetEnvironmentVariable("MLF_CHROMIUM") is { Length: > 0 } configured ? configured : "/usr/bin/chromium";

    public BrowserFactAttribute()
    {
        if (!File.Exists(ChromiumPath))
        {
            Skip = $"no chromium at {ChromiumPath}: the dashboard's browser tests need it (apt-get install -y chromium, or set MLF_CHROMIUM)";
        }
    }
}
