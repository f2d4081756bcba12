using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using MlFunctions.Core.Registry;
using MlFunctions.Core.Transforms;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving;

/// <summary>A validated request in the model's input order, ready to run or to batch.</summary>
/// <param name="Inputs">One tensor per model input, in the session's input order.</param>
/// <param name="OutputNames">The outputs to compute.</param>
/// <param name="Rows">Instances along dimension 0 when the request can join a batch; 0 when it must run alone.</param>
/// <param name="BatchKey">Requests batch together only when their non-batch dimensions and outputs agree.</param>
internal sealed record PreparedRequest(IReadOnlyList<InferTensor> Inputs, string[] OutputNames, int Rows, string BatchKey);

/// <summary>
/// One model version with a live ONNX Runtime session: its validated signature, its transform and its batcher.
/// </summary>
internal sealed class LoadedModel : IAsyncDisposable
{
    private readonly SessionHandle _handle;
    private readonly RunOptions _runOptions = new(); // ORT's Run needs one; it is read-only here, so calls share it
    private readonly string[] _inputNames;
    private readonly Dictionary<string, int> _inputIndex;
    private readonly HashSet<string> _outputNames;
    private readonly string[] _allOutputs;
    private readonly int _transformInput = -1;
    private readonly TransformSpec? _transform;
    private readonly TabularTransform? _table;
    private readonly string[] _derivedOutputs = [];
    private readonly RecommenderInputs? _recommender;
    private readonly CtImageInputs? _ct;
    private readonly ImageInputs? _image;

    public LoadedModel(ModelVersion record, SessionHandle handle, long sizeBytes, BatchingOptions batching, ServingMetrics metrics, ILogger logger)
    {
        Record = record;
        _handle = handle;
        SizeBytes = sizeBytes;
        var session = handle.Session;
        var modelInputs = OnnxSignature.Inputs(session);
        Inputs = modelInputs;
        Outputs = OnnxSignature.Outputs(session);
        _inputNames = session.InputNames.ToArray();
        _inputIndex = _inputNames.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => x.i);
        _allOutputs = session.OutputNames.ToArray();
        _outputNames = [.. _allOutputs];

        var declared = record.Signature.Inputs.Select(i => i.Name).Order().ToArray();
        if (!declared.SequenceEqual(_inputNames.Order()))
            logger.LogWarning("Registry signature of {Model} v{Version} lists inputs [{Declared}] but the ONNX graph has [{Actual}]; serving the graph's.",
                record.Name, record.Version, string.Join(",", declared), string.Join(",", _inputNames));

        if (record.Transform is { IsTable: true } tabular)
        {
            tabular.Validate();
            if (modelInputs.Count != 1 || modelInputs[0].Datatype != Datatype.FP32 || modelInputs[0].Shape is not [_, var width] || (width >= 0 && width != tabular.Tabular!.FeatureCount))
                throw new InvalidOperationException($"The tabular transform of {record.Name} v{record.Version} writes {tabular.Tabular!.FeatureCount} features, but the model's inputs are {string.Join(", ", modelInputs.Select(i => $"{i.Name} {i.Datatype} [{string.Join(",", i.Shape)}]"))}.");
            _table = tabular.Tabular!;

            // Clients see the raw columns and the decoded outputs; the feature vector is an internal detail.
            Inputs = TabularInputs.Metadata(tabular.Tabular!);
            if (Outputs.Count == 1)
            {
                var derived = TabularInputs.DerivedOutputs(tabular.Tabular!);
                _derivedOutputs = derived.Select(d => d.Name).ToArray();
                Outputs = [.. Outputs, .. derived];
            }
        }
        else if (record.Transform is { Kind: TransformSpec.InteractionsKind } interactions)
        {
            interactions.Validate();
            if (modelInputs.Count != 1 || modelInputs[0].Datatype != Datatype.INT64 || modelInputs[0].Shape is not [_, 2] || Outputs.Count != 1 || Outputs[0].Datatype != Datatype.FP32)
                throw new InvalidOperationException($"The interactions transform of {record.Name} v{record.Version} needs a model scoring INT64 (user, item) pairs [-1, 2] into one FP32 score each; its inputs are {string.Join(", ", modelInputs.Select(i => $"{i.Name} {i.Datatype} [{string.Join(",", i.Shape)}]"))}.");
            _recommender = new RecommenderInputs(interactions.Interactions!);

            // Clients send raw user ids and get item ids back; the pairs are an internal detail.
            Inputs = RecommenderInputs.Metadata;
            Outputs = RecommenderInputs.OutputMetadata;
            _allOutputs = Outputs.Select(o => o.Name).ToArray();
            _outputNames = [.. _allOutputs];
        }
        else if (record.Transform is { Kind: TransformSpec.CtKind } ctSpec)
        {
            ctSpec.Validate();
            if (modelInputs.Count != 1 || modelInputs[0].Datatype != Datatype.FP32 || modelInputs[0].Shape is not [_, 1, _, _] || Outputs.Count != 1 || Outputs[0].Datatype != Datatype.FP32)
                throw new InvalidOperationException($"The ct transform of {record.Name} v{record.Version} needs an image-to-image model FP32 [n, 1, H, W] → FP32 [n, 1, H, W]; its inputs are {string.Join(", ", modelInputs.Select(i => $"{i.Name} {i.Datatype} [{string.Join(",", i.Shape)}]"))}.");
            _ct = new CtImageInputs(ctSpec.Ct!);

            // Clients send slices in HU (or a PNG) and get HU back; the model's scaled units are an internal detail.
            Inputs = CtImageInputs.Metadata;
            Outputs = CtImageInputs.OutputMetadata;
            _allOutputs = Outputs.Select(o => o.Name).ToArray();
            _outputNames = [.. _allOutputs];
        }
        else if (record.Transform is { } t)
        {
            t.Validate();
            var candidates = t.Input is { } name
                ? Inputs.Where(i => i.Name == name).ToList()
                : Inputs.Where(i => i.Datatype == Datatype.FP32).ToList();
            if (candidates.Count != 1 || candidates[0].Datatype != Datatype.FP32)
                throw new InvalidOperationException($"The transform of {record.Name} v{record.Version} must target exactly one FP32 input (input '{t.Input ?? "(unspecified)"}').");
            _transformInput = _inputIndex[candidates[0].Name];
            _transform = t;
            if (t.Image is { } image)
            {
                if (candidates[0].Shape.Skip(1).Aggregate(1L, (a, b) => a * b) != image.SampleSize)
                    throw new InvalidOperationException($"The image transform of {record.Name} v{record.Version} is for [{image.Channels}, {image.Height}, {image.Width}] images, but the model's input '{candidates[0].Name}' is [{string.Join(",", candidates[0].Shape)}].");

                // Clients may send a PNG instead of pixels, and get the class name and probabilities next to the logits.
                _image = new ImageInputs(image, candidates[0]);
                Inputs = [.. Inputs, ImageInputs.PngMetadata];
                if (Outputs.Count == 1)
                {
                    var derived = ImageInputs.DerivedOutputs(image);
                    _derivedOutputs = derived.Select(d => d.Name).ToArray();
                    Outputs = [.. Outputs, .. derived];
                }
            }
        }

        // Batching along dimension 0 is sound only when every input and output has a dynamic first dimension.
        Batchable = _recommender is null && _ct is null && batching.Enabled && batching.MaxBatchSize > 1
            && modelInputs.All(i => i.Shape.Length > 0 && i.Shape[0] < 0)
            && Outputs.All(o => o.Shape.Length > 0 && o.Shape[0] < 0);
        if (Batchable)
            Batcher = new DynamicBatcher(this, batching, metrics, logger);
    }

    public ModelVersion Record { get; }
    public string Provider => _handle.Provider;
    public long SizeBytes { get; }
    public IReadOnlyList<TensorMetadata> Inputs { get; }
    public IReadOnlyList<TensorMetadata> Outputs { get; }
    public bool Batchable { get; }
    public DynamicBatcher? Batcher { get; }

    /// <summary>
    /// Validates a request against the signature (400 on any mismatch) and applies the stored transform unless
    /// <paramref name="alreadyTransformed"/>. Runs before enqueueing, so a bad request never reaches a batch.
    /// </summary>
    public PreparedRequest Prepare(InferRequest request, bool alreadyTransformed)
    {
        if (_table is not null && !alreadyTransformed)
            return Batch([TabularInputs.Encode(_table, request.Inputs, _inputNames[0])], RequestedOutputs(request));
        if (_recommender is not null)
        {
            _recommender.Parse(request.Inputs);
            return new PreparedRequest(request.Inputs, RequestedOutputs(request), 0, "");
        }

        if (_ct is not null)
        {
            var slices = _ct.Parse(request.Inputs);
            return new PreparedRequest(request.Inputs, request.Outputs is { Count: > 0 } ? RequestedOutputs(request) : CtImageInputs.DefaultOutputs(slices), 0, "");
        }

        var ordered = new InferTensor[_inputNames.Length];
        foreach (var input in _image?.Decode(request.Inputs) ?? request.Inputs)
        {
            if (!_inputIndex.TryGetValue(input.Name, out int idx))
                throw InferenceError.Invalid($"Unknown input '{input.Name}'; the model's inputs are: {string.Join(", ", _inputNames)}.");
            if (ordered[idx] is not null)
                throw InferenceError.Invalid($"Input '{input.Name}' appears more than once.");
            var meta = Inputs[idx];
            if (input.Datatype != meta.Datatype)
                throw InferenceError.Invalid($"Input '{input.Name}' has datatype {input.Datatype} but the model expects {meta.Datatype}.");
            if (input.Shape.Length != meta.Shape.Length)
                throw InferenceError.Invalid($"Input '{input.Name}' has shape {Fmt(input.Shape)} but the model expects {Fmt(meta.Shape)}.");
            for (int d = 0; d < meta.Shape.Length; d++)
                if (input.Shape[d] < 0 || (meta.Shape[d] >= 0 && input.Shape[d] != meta.Shape[d]))
                    throw InferenceError.Invalid($"Input '{input.Name}' has shape {Fmt(input.Shape)} but the model expects {Fmt(meta.Shape)} (-1 = any).");
            long count = InferTensor.ElementCount(input.Shape);
            if (input.Data.Length != count)
                throw InferenceError.Invalid($"Input '{input.Name}' has {input.Data.Length} data elements but shape {Fmt(input.Shape)} needs {count}.");
            if (input.Data.GetType().GetElementType() != Datatype.ClrType(meta.Datatype))
                throw InferenceError.Invalid($"Input '{input.Name}' data are not {meta.Datatype}.");
            ordered[idx] = input;
        }
        for (int i = 0; i < ordered.Length; i++)
            if (ordered[i] is null)
                throw InferenceError.Invalid($"Missing input '{_inputNames[i]}'.");

        var outputs = RequestedOutputs(request);
        if (_transform is not null && !alreadyTransformed)
        {
            // Copy first: the caller's buffer is theirs, and a retried request must not be transformed twice.
            var source = ordered[_transformInput];
            var data = (float[])((float[])source.Data).Clone();
            _transform.Apply(data);
            ordered[_transformInput] = new InferTensor(source.Name, source.Datatype, source.Shape, data, source.Parameters);
        }

        return Batch(ordered, outputs);
    }

    /// <summary>The outputs a request asks for (all by default): the model's own and, for a tabular model, the decoded ones.</summary>
    private string[] RequestedOutputs(InferRequest request)
    {
        if (request.Outputs is not { Count: > 0 } requested)
            return [.. _allOutputs, .. _derivedOutputs];
        foreach (var o in requested)
            if (!_outputNames.Contains(o.Name) && !_derivedOutputs.Contains(o.Name))
                throw InferenceError.Invalid($"Unknown output '{o.Name}'; the model's outputs are: {string.Join(", ", _allOutputs.Concat(_derivedOutputs))}.");
        return requested.Select(o => o.Name).Distinct().ToArray();
    }

    /// <summary>The request with its batch key: requests batch together only when their non-batch dimensions and outputs agree.</summary>
    private PreparedRequest Batch(InferTensor[] ordered, string[] outputs)
    {
        int rows = 0;
        string key = "";
        long first = ordered[0].Shape[0];
        if (Batchable && ordered.All(t => t.Shape[0] == first) && first is > 0 and <= int.MaxValue)
        {
            rows = (int)first;
            var sb = new StringBuilder();
            foreach (var t in ordered)
                sb.Append(string.Join('x', t.Shape.Skip(1))).Append(';');
            sb.Append('|').AppendJoin(',', outputs);
            key = sb.ToString();
        }
        return new PreparedRequest(ordered, outputs, rows, key);
    }

    private static string Fmt(long[] shape) => "[" + string.Join(",", shape) + "]";

    /// <summary>Runs the request, through the batcher when the model batches.</summary>
    public Task<IReadOnlyList<InferTensor>> InferAsync(PreparedRequest request, CancellationToken cancellationToken)
    {
        if (_derivedOutputs.Length > 0 && request.OutputNames.Any(_derivedOutputs.Contains))
            return InferDerivedAsync(request, cancellationToken);
        if (_recommender is { } recommender)
        {
            try
            {
                var (users, k) = recommender.Parse(request.Inputs);
                var modelOutput = _handle.Session.OutputNames[0];
                return Task.FromResult(recommender.Recommend(users, k, pairs =>
                    (float[])Run([new InferTensor(_inputNames[0], Datatype.INT64, [pairs.Length / 2, 2], pairs)], [modelOutput])[0].Data, request.OutputNames));
            }
            catch (Exception e)
            {
                return Task.FromException<IReadOnlyList<InferTensor>>(e);
            }
        }

        if (_ct is { } ct)
        {
            try
            {
                var modelOutput = _handle.Session.OutputNames[0];
                return Task.FromResult(ct.Denoise(ct.Parse(request.Inputs), x => (float[])Run([x], [modelOutput])[0].Data, _inputNames[0], request.OutputNames));
            }
            catch (Exception e)
            {
                return Task.FromException<IReadOnlyList<InferTensor>>(e);
            }
        }

        if (Batcher is not null && request.Rows > 0)
            return Batcher.EnqueueAsync(request, cancellationToken);
        try
        {
            return Task.FromResult(Run(request.Inputs, request.OutputNames));
        }
        catch (Exception e)
        {
            return Task.FromException<IReadOnlyList<InferTensor>>(e);
        }
    }

    /// <summary>Runs the model for its logits and decodes them into the requested label/probabilities outputs.</summary>
    private async Task<IReadOnlyList<InferTensor>> InferDerivedAsync(PreparedRequest request, CancellationToken cancellationToken)
    {
        var modelOutputs = request.OutputNames.Where(_outputNames.Contains).Union([_allOutputs[0]]).ToArray();
        var raw = await InferAsync(request with { OutputNames = modelOutputs }, cancellationToken).ConfigureAwait(false);
        var wanted = request.OutputNames.ToHashSet(StringComparer.Ordinal);
        var logits = raw.First(o => o.Name == _allOutputs[0]);
        return [.. raw.Where(o => wanted.Contains(o.Name)), .. _table is not null ? TabularInputs.Derive(_table, logits, wanted) : TabularInputs.DeriveClasses(_image!.Image.Classes, logits, wanted)];
    }

    /// <summary>One ONNX Runtime call. Thread-safe: InferenceSession.Run may be called concurrently.</summary>
    public IReadOnlyList<InferTensor> Run(IReadOnlyList<InferTensor> inputs, string[] outputNames)
    {
        var values = new OrtValue[inputs.Count];
        try
        {
            for (int i = 0; i < inputs.Count; i++)
                values[i] = ToOrtValue(inputs[i]);
            using var results = _handle.Session.Run(_runOptions, _inputNames, values, outputNames);
            var outputs = new InferTensor[outputNames.Length];
            int k = 0;
            foreach (var r in results)
            {
                outputs[k] = FromOrtValue(outputNames[k], r);
                k++;
            }
            return outputs;
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceError(InferenceErrorKind.Internal, $"Model {Record.Name} v{Record.Version} failed: {e.Message}", e);
        }
        finally
        {
            foreach (var v in values)
                v?.Dispose();
        }
    }

    private static OrtValue ToOrtValue(InferTensor t) => t.Data switch
    {
        // These pin the managed arrays for the lifetime of the OrtValue: no copy on the way in.
        float[] f => OrtValue.CreateTensorValueFromMemory(f, t.Shape),
        double[] d => OrtValue.CreateTensorValueFromMemory(d, t.Shape),
        long[] l => OrtValue.CreateTensorValueFromMemory(l, t.Shape),
        int[] i => OrtValue.CreateTensorValueFromMemory(i, t.Shape),
        byte[] b => OrtValue.CreateTensorValueFromMemory(b, t.Shape),
        bool[] bo => OrtValue.CreateTensorValueFromMemory(bo, t.Shape),
        string[] s => StringTensor(s, t.Shape),
        _ => throw InferenceError.Invalid($"Input '{t.Name}' has unsupported data."),
    };

    private static OrtValue StringTensor(string[] s, long[] shape)
    {
        var value = OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, shape);
        for (int i = 0; i < s.Length; i++)
            value.StringTensorSetElementAt(s[i].AsSpan(), i);
        return value;
    }

    private static InferTensor FromOrtValue(string name, OrtValue value)
    {
        var info = value.GetTensorTypeAndShape();
        var datatype = Datatype.FromOnnx(info.ElementDataType)
            ?? throw new InferenceError(InferenceErrorKind.Internal, $"Output '{name}' has element type {info.ElementDataType}, which this server does not carry.");
        Array data = datatype switch
        {
            Datatype.FP32 => value.GetTensorDataAsSpan<float>().ToArray(),
            Datatype.FP64 => value.GetTensorDataAsSpan<double>().ToArray(),
            Datatype.INT64 => value.GetTensorDataAsSpan<long>().ToArray(),
            Datatype.INT32 => value.GetTensorDataAsSpan<int>().ToArray(),
            Datatype.UINT8 => value.GetTensorDataAsSpan<byte>().ToArray(),
            Datatype.BOOL => value.GetTensorDataAsSpan<bool>().ToArray(),
            _ => value.GetStringTensorAsArray(),
        };
        return new InferTensor(name, datatype, info.Shape, data);
    }

    public async ValueTask DisposeAsync()
    {
        if (Batcher is not null)
            await Batcher.DisposeAsync().ConfigureAwait(false);
        _handle.Dispose();
        _runOptions.Dispose();
    }
}
