using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace MlFunctions.Serving;

/// <summary>An execution provider that can be appended to session options. The seam tests use to make CUDA fail.</summary>
public interface IExecutionProvider
{
    /// <summary>ONNX Runtime's name for the provider, as reported in model metadata.</summary>
    string Name { get; }

    /// <summary>
    /// Appends the provider; throws <see cref="OnnxRuntimeException"/> (or a native-binding exception) when it
    /// cannot load.
    /// </summary>
    void Append(SessionOptions options);
}

public sealed class CudaExecutionProvider(int deviceId = 0) : IExecutionProvider
{
    public string Name => "CUDAExecutionProvider";

    // With the GPU package but no usable CUDA driver/libraries this throws OnnxRuntimeException ("Failed to load
    // shared library"); with the CPU-only package the native entry point is missing (EntryPointNotFoundException).
    // GetAvailableProviders() is no presence test: it lists CUDA in builds that carry it, GPU or not.
    public void Append(SessionOptions options) => options.AppendExecutionProvider_CUDA(deviceId);
}

public sealed class CpuExecutionProvider : IExecutionProvider
{
    public string Name => "CPUExecutionProvider";

    public void Append(SessionOptions options)
    {
        // The CPU provider is always registered last by ONNX Runtime itself; nothing to append.
    }
}

/// <summary>A session together with the options it was made with and the provider in use.</summary>
public sealed class SessionHandle(InferenceSession session, SessionOptions options, string provider) : IDisposable
{
    public InferenceSession Session { get; } = session;
    public string Provider { get; } = provider;

    public void Dispose()
    {
        Session.Dispose();
        options.Dispose();
    }
}

public interface ISessionFactory
{
    SessionHandle Create(byte[] model, string modelDisplayName);
}

/// <summary>
/// Creates sessions trying providers in order (CUDA, then CPU): a provider that fails to load, or a session
/// that fails to initialize on it, is logged and the next one is tried.
/// </summary>
public sealed class OrtSessionFactory : ISessionFactory
{
    private readonly IReadOnlyList<IExecutionProvider> _providers;
    private readonly int? _intraOpThreads;
    private readonly ILogger _logger;

    public OrtSessionFactory(IReadOnlyList<IExecutionProvider> providers, int? intraOpThreads, ILogger<OrtSessionFactory>? logger = null)
    {
        if (providers.Count == 0)
            throw new ArgumentException("At least one execution provider is required.", nameof(providers));
        _providers = providers;
        _intraOpThreads = intraOpThreads;
        _logger = (ILogger?)logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    }

    public static IReadOnlyList<IExecutionProvider> ProvidersFor(ServingOptions options) => options.ExecutionProvider switch
    {
        ExecutionProviderPreference.Cpu => [new CpuExecutionProvider()],
        ExecutionProviderPreference.Cuda => [new CudaExecutionProvider(options.CudaDeviceId)],
        _ => [new CudaExecutionProvider(options.CudaDeviceId), new CpuExecutionProvider()],
    };

    public SessionHandle Create(byte[] model, string modelDisplayName)
    {
        for (int i = 0; ; i++)
        {
            var provider = _providers[i];
            var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
            if (_intraOpThreads is { } t)
                options.IntraOpNumThreads = t;
            try
            {
                provider.Append(options);
                var session = new InferenceSession(model, options);
                return new SessionHandle(session, options, provider.Name);
            }
            catch (Exception e) when (i < _providers.Count - 1 && e is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException)
            {
                options.Dispose();
                _logger.LogWarning("Execution provider {Provider} is unavailable for {Model}; falling back to {Next}: {Message}",
                    provider.Name, modelDisplayName, _providers[i + 1].Name, e.Message);
            }
            catch
            {
                options.Dispose();
                throw;
            }
        }
    }
}
