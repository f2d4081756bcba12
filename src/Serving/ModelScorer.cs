using Microsoft.Extensions.Logging.Abstractions;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Transforms;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving;

/// <summary>
/// Offline predictions through the serving path itself: the same sha256-checked bytes, the same session factory
/// (CUDA, else CPU) and the same <see cref="LoadedModel"/> (signature checks, the stored transform applied to raw
/// inputs, the decoded outputs). Evaluation and the promotion gate score a candidate with it before the candidate
/// is registered, so a preprocessing fix reaches the gate and the served model alike: one transform, one run.
/// </summary>
public sealed class ModelScorer : IAsyncDisposable
{
    private readonly LoadedModel _model;
    private readonly ServingMetrics _metrics;

    private ModelScorer(LoadedModel model, ServingMetrics metrics)
    {
        _model = model;
        _metrics = metrics;
    }

    /// <summary>The inputs a request carries (raw columns for a tabular model), as serving's metadata reports them.</summary>
    public IReadOnlyList<TensorMetadata> Inputs => _model.Inputs;

    public IReadOnlyList<TensorMetadata> Outputs => _model.Outputs;

    public string Provider => _model.Provider;

    /// <summary>Loads the artifact (sha256-checked) with <paramref name="transform"/> as a model version would be served.</summary>
    public static async Task<ModelScorer> LoadAsync(IArtifactStore artifacts, ISessionFactory sessions, string artifactUri, string sha256, TransformSpec? transform, CancellationToken cancellationToken = default)
    {
        var bytes = await artifacts.ReadVerifiedAsync(artifactUri, sha256, cancellationToken).ConfigureAwait(false);
        var handle = await Task.Run(() => sessions.Create(bytes, artifactUri), cancellationToken).ConfigureAwait(false);
        var metrics = new ServingMetrics();
        try
        {
            var record = new ModelVersion
            {
                Name = "candidate",
                Version = 0,
                ArtifactUri = artifactUri,
                Sha256 = sha256,
                Signature = OnnxSignature.Read(handle.Session),
                Transform = transform,
                CreatedAt = DateTimeOffset.UnixEpoch,
            };

            // No batcher: the caller already sends batches, and a background dispatcher would outlive one evaluation.
            return new ModelScorer(new LoadedModel(record, handle, bytes.LongLength, new BatchingOptions { Enabled = false }, metrics, NullLogger.Instance), metrics);
        }
        catch
        {
            handle.Dispose();
            metrics.Dispose();
            throw;
        }
    }

    /// <summary>One request of raw inputs, as a client would send it; the stored transform is applied.</summary>
    public Task<IReadOnlyList<InferTensor>> PredictAsync(InferRequest request, CancellationToken cancellationToken = default) =>
        _model.InferAsync(_model.Prepare(request, alreadyTransformed: false), cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _model.DisposeAsync().ConfigureAwait(false);
        _metrics.Dispose();
    }
}
