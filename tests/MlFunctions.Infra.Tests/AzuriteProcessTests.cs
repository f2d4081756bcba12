using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using MlFunctions.Local.Storage;
using MlFunctions.Tests.Infrastructure;
using Xunit;

namespace MlFunctions.Infra.Tests;

public sealed class AzuriteProcessTests
{
    /// <summary>
    /// The host's Azurite leads its own session, so a signal to the host's process group (a terminal's Ctrl-C, or
    /// <c>timeout</c>, which signals its whole group) no longer reaches it: a full CT run stopped that way lost Azurite
    /// 5 s into its evaluate step while the host was still stopping. Its output goes to azurite.log, and when node ends
    /// without the host asking (here: SIGTERM sent to node itself), the host logs an error naming that file.
    /// </summary>
    [Fact]
    public async Task Azurite_leads_its_own_session_keeps_a_log_and_an_exit_the_host_did_not_ask_for_is_reported()
    {
        var data = Path.Combine(Path.GetTempPath(), "mlf-azurite-session-" + Guid.NewGuid().ToString("N")[..8]);
        var logger = new ListLogger();
        var azurite = await Azurite.StartAsync(data, logger);
        try
        {
            var (session, _) = SessionAndGroup(azurite.ProcessId);
            var (ownSession, _) = SessionAndGroup(Environment.ProcessId);
            Assert.Equal(azurite.ProcessId, session);
            Assert.NotEqual(ownSession, session);
            Assert.Contains("Azurite Blob service is successfully listening", await File.ReadAllTextAsync(azurite.LogPath));

            // What the stopped run saw: node signalled from outside while the host still runs.
            // The watchdog's children are node and, now and then, its `sleep 1`.
            var node = File.ReadAllText($"/proc/{azurite.ProcessId}/task/{azurite.ProcessId}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Single(pid => CommandLine(pid).Contains("azurite.js", StringComparison.Ordinal));
            using (var kill = Process.Start("kill", ["-TERM", node])!)
            {
                await kill.WaitForExitAsync();
            }

            var error = await Eventually.GetAsync(
                () => Task.FromResult(logger.Errors().FirstOrDefault()), e => e is not null, TimeSpan.FromSeconds(60), "the exit error");
            Assert.Contains("exited with code", error);
            Assert.Contains(azurite.LogPath, error);
            var log = await File.ReadAllTextAsync(azurite.LogPath);
            Assert.Contains("Azurite Blob service is closing", log);
            Assert.Contains("while the host was running", log);
        }
        finally
        {
            await azurite.DisposeAsync();
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>A process's command line, or "" once it is gone (a `sleep 1` may end between listing and reading).</summary>
    private static string CommandLine(string pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline");
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    /// <summary>Fields 6 and 5 of /proc/{pid}/stat (after the parenthesised command name): session and process group.</summary>
    private static (int Session, int Group) SessionAndGroup(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (int.Parse(fields[3], CultureInfo.InvariantCulture), int.Parse(fields[2], CultureInfo.InvariantCulture));
    }

    private sealed class ListLogger : ILogger
    {
        private readonly List<(LogLevel Level, string Message)> entries = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (entries)
            {
                entries.Add((logLevel, formatter(state, exception)));
            }
        }

        public List<string> Errors()
        {
            lock (entries)
            {
                return entries.Where(e => e.Level >= LogLevel.Error).Select(e => e.Message).ToList();
            }
        }
    }
}
