using TorchSharp;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Training;

/// <summary>Process-wide torch settings: thread count and the device the worker trains on.</summary>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static int configuredThreads = -1;

    /// <summary>Sets torch's intra-op threads (0 = libtorch default). Process-wide, so the first non-zero value wins.</summary>
    public static void ConfigureThreads(int threads)
    {
        lock (Gate)
        {
            if (threads > 0 && configuredThreads != threads)
            {
                set_num_threads(threads);
                configuredThreads = threads;
            }
        }
    }

    /// <summary>"auto": CUDA when torch sees a GPU, else CPU. "cuda" without a GPU fails rather than silently training on CPU.</summary>
    public static Device SelectDevice(string preference)
    {
        var cuda = cuda_is_available();
        return preference switch
        {
            "cpu" => CPU,
            "cuda" when cuda => CUDA,
            "cuda" => throw new InvalidOperationException("Worker:Device is 'cuda' but torch.cuda.is_available() is false (no GPU, driver, or CUDA build of libtorch)"),
            _ => cuda ? CUDA : CPU,
        };
    }

    /// <summary>"cuda" or "cpu": the device name recorded in results.</summary>
    public static string Name(Device device) => device.type == DeviceType.CUDA ? "cuda" : "cpu";

    private static bool cuda_is_available()
    {
        try
        {
            return torch.cuda.is_available();
        }
        catch (Exception)
        {
            // The CPU build of libtorch has no CUDA backend to ask; that means no GPU.
            return false;
        }
    }
}

/// <summary>
/// Derives independent RNG seeds from (job seed, epoch, stream). Each epoch's shuffle and dropout depend only on
/// these, never on RNG state carried over from earlier epochs, so a run resumed from epoch k's checkpoint draws
/// exactly the numbers the uninterrupted run drew.
/// </summary>
public static class Seeds
{
    public const string Scheme = "splitmix64(seed, epoch, stream): stream 1 = shuffle (torch.Generator for randperm), stream 2 = torch.manual_seed before the epoch (dropout); model init = torch.manual_seed(seed)";

    public const int ShuffleStream = 1;
    public const int DropoutStream = 2;

    public static long ForEpoch(long seed, int epoch, int stream)
    {
        var x = (ulong)seed;
        x = Mix(x + 0x9E3779B97F4A7C15UL * (ulong)(epoch + 1));
        x = Mix(x ^ ((ulong)stream * 0xD1B54A32D192ED03UL));

        // torch seeds are taken as signed 64-bit and some backends reject negatives: keep 63 bits.
        return (long)(x & 0x7FFF_FFFF_FFFF_FFFFUL);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
