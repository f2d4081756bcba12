using System.Diagnostics;
using System.Globalization;
using MlFunctions.Local;
using Xunit;

namespace MlFunctions.Infra.Tests;

public sealed class OwnedProcessTests
{
    /// <summary>
    /// The watchdog's owner exits while its child still runs: the child must be stopped, not waited on
    /// (the bug this pins kept a training worker alive after its test host had gone).
    /// </summary>
    [Fact]
    public async Task The_child_ends_when_its_owner_is_gone()
    {
        using var owner = Process.Start(new ProcessStartInfo("sleep", "1") { UseShellExecute = false })!;
        var start = OwnedProcess.StartInfo("sleep", ["300"]);
        start.ArgumentList[3] = owner.Id.ToString(CultureInfo.InvariantCulture); // the owner pid the watchdog watches
        using var watchdog = Process.Start(start)!;

        // sleep 300 would hold the watchdog for 5 minutes; the owner's exit must end both within seconds.
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await watchdog.WaitForExitAsync(limit.Token);
        Assert.True(watchdog.HasExited);
    }
}
