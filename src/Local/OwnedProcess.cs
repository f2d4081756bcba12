using System.Diagnostics;
using System.Globalization;

namespace MlFunctions.Local;

/// <summary>
/// Child processes that end with their owner. A small bash watchdog runs the program and stops it when
/// this process is gone, even after a kill -9 of the host or a test runner torn down without shutdown
/// hooks: an emulator or a training worker must not outlive the host that started it.
/// </summary>
public static class OwnedProcess
{
    public static ProcessStartInfo StartInfo(string program, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(
            "owner=$1; shift; \"$@\" & child=$!; trap 'kill $child 2>/dev/null' EXIT TERM INT; " +
            "while kill -0 \"$owner\" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done; " +
            // The owner gone, stop the child before waiting on it: a bare `wait` here kept a CI run's training
            // worker alive 20 minutes after its test host had exited (and with it the CPU lock the worker inherited).
            "kill -0 \"$owner\" 2>/dev/null || kill $child 2>/dev/null; wait $child");
        start.ArgumentList.Add("owned-process");
        start.ArgumentList.Add(Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        start.ArgumentList.Add(program);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return start;
    }
}
