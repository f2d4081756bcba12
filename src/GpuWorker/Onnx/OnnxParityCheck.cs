using Microsoft.ML.OnnxRuntime;
using MlFunctions.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Onnx;

/// <summary>ONNX Runtime (CPU) vs TorchSharp on the same batch: the exported graph must compute the trained network.</summary>
public static class OnnxParityCheck
{
    public const double MaxAbsLogitDiffLimit = 1e-4;

    /// <param name="batch">Model inputs [n, ...sampleShape] on any device: float features, or int64 ids.</param>
    /// <param name="compareArgmax">Whether the per-row arg-max must agree (classification logits); a per-sample score ([n]) has none.</param>
    public static OnnxParity Run(byte[] onnxModel, nn.Module<Tensor, Tensor> model, Tensor batch, bool compareArgmax = true)
    {
        float[] torchOutputs;
        long width;
        model.eval();
        using (no_grad())
        {
            using var outputs = model.forward(batch).cpu().contiguous();
            torchOutputs = outputs.data<float>().ToArray();
            width = outputs.shape.Length > 1 ? outputs.shape.Skip(1).Aggregate(1L, (a, b) => a * b) : 1;
        }

        using var cpuBatch = batch.cpu().contiguous();
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(onnxModel, options);
        using var value = cpuBatch.dtype == ScalarType.Int64
            ? OrtValue.CreateTensorValueFromMemory(cpuBatch.data<long>().ToArray(), cpuBatch.shape)
            : OrtValue.CreateTensorValueFromMemory(cpuBatch.data<float>().ToArray(), cpuBatch.shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [session.InputMetadata.Keys.First()], [value], [session.OutputMetadata.Keys.First()]);
        var ortOutputs = results[0].GetTensorDataAsSpan<float>().ToArray();
        if (ortOutputs.Length != torchOutputs.Length)
            throw new OnnxExportException($"ONNX output has {ortOutputs.Length} values, TorchSharp {torchOutputs.Length}");

        var n = (int)cpuBatch.shape[0];
        double maxDiff = 0;
        var argmaxSame = true;
        for (var i = 0; i < n; i++)
        {
            var row = i * (int)width;
            int a = 0, b = 0;
            for (var c = 0; c < width; c++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(ortOutputs[row + c] - torchOutputs[row + c]));
                if (torchOutputs[row + c] > torchOutputs[row + a]) a = c;
                if (ortOutputs[row + c] > ortOutputs[row + b]) b = c;
            }

            argmaxSame &= !compareArgmax || a == b;
        }

        return new OnnxParity(maxDiff, argmaxSame, n);
    }
}
