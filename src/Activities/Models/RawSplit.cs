using MlFunctions.Activities.Datasets;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Training;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Activities.Models;

/// <summary>
/// A prepared split as a client would send it: raw pixels (the shard's bytes as FP32) for an image model, the raw
/// cells as one BYTES input per column for a tabular one. Evaluation and the smoke test both build their requests
/// here, so what they score is what a V2 request carries, with the model's stored transform applied by serving.
/// </summary>
internal sealed class RawSplit
{
    private readonly PreparedShard _shard;
    private readonly RawRows? _rows;

    private RawSplit(PreparedShard shard, RawRows? rows)
    {
        _shard = shard;
        _rows = rows;
    }

    public int Count => _shard.Count;

    public int Label(int index) => _shard.Labels[index];

    /// <summary>Whether the split is a regression table's: its rows carry numeric targets and the model answers a prediction.</summary>
    public bool IsRegression => _rows?.Targets is not null;

    /// <summary>A regression row's target in the label's units.</summary>
    public double Target(int index) => _rows?.Targets is { } targets ? targets[index] : throw new InvalidOperationException("the split has no regression targets");

    public static async Task<RawSplit> LoadAsync(PreparedDatasetReader reader, PreparedDataRef data, PreparedDatasetManifest manifest, string split, CancellationToken ct)
    {
        var shard = await reader.ReadSplitAsync(data, manifest, split, ct);
        RawRows? rows = null;
        if (shard.FloatFeatures is not null)
        {
            rows = await reader.ReadRawRowsAsync(data, split, ct)
                ?? throw new InvalidDataException($"prepared split {data.Prefix}/{split} is tabular but its raw rows ({PreparedLayout.RawRowsBlob(data.Prefix, split)}) are missing; prepare the data again");
            if (rows.Rows.Count != shard.Count)
                throw new InvalidDataException($"prepared split {data.Prefix}/{split} has {shard.Count} samples but {rows.Rows.Count} raw rows");
            if (rows.Targets is { } targets && targets.Count != shard.Count)
                throw new InvalidDataException($"prepared split {data.Prefix}/{split} has {shard.Count} samples but {targets.Count} regression targets");
        }

        return new RawSplit(shard, rows);
    }

    /// <summary>The request for samples [start, start + count) against a model with these (served) inputs.</summary>
    public InferRequest Request(int start, int count, IReadOnlyList<TensorMetadata> inputs, string model, string id)
    {
        if (_rows is { } rows)
        {
            var tensors = new List<InferTensor>(rows.Columns.Count);
            for (var c = 0; c < rows.Columns.Count; c++)
            {
                var cells = new string[count];
                for (var r = 0; r < count; r++)
                    cells[r] = rows.Rows[start + r][c] ?? "";
                tensors.Add(new InferTensor(rows.Columns[c], Datatype.BYTES, [count], cells));
            }

            // A regressor is scored on the served prediction (label units), as a client reads it, not on its raw output.
            var output = rows.Targets is null ? ModelIo.LogitsOutput : Core.Transforms.TargetScaling.PredictionOutput;
            return new InferRequest { Id = id, Inputs = tensors, Outputs = [new InferRequestedOutput(output)] };
        }

        var pixels = ModelIo.PixelInput(inputs, null, model);
        var size = _shard.SampleSize;
        var data = new float[count * size];
        for (var r = 0; r < count; r++)
            _shard.CopySample(start + r, data.AsSpan(r * size, size));
        return new InferRequest
        {
            Id = id,
            Inputs = [new InferTensor(pixels.Name, Datatype.FP32, ModelIo.BatchShape(pixels, _shard.SampleShape, count, model), data)],
            Outputs = [new InferRequestedOutput(ModelIo.LogitsOutput)],
        };
    }
}
