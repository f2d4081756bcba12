using Microsoft.ML.OnnxRuntime;
using MlFunctions.Core.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Onnx;

/// <summary>ONNX Runtime (CPU) vs TorchSharp on the same batch: the exported graph must compute the trained network.</summary>
public static class OnnxParityCheck
{
    public const double MaxAbsLogitDiffLimit = 1e-4;

    /// <param name="batch">Transformed inputs [n, ...sampleShape] on any device.</param>
    public static OnnxParity Run(byte[] onnxModel, Sequential model, Tensor batch)
    {
        float[] torchLogits;
        long classes;
        model.eval();
        using (no_grad())
        {
            using var logits = model.forward(batch).cpu();
            torchLogits = logits.data<float>().ToArray();
            classes = logits.shape[1];
        }

        using var cpuBatch = batch.cpu().contiguous();
        var input = cpuBatch.data<float>().ToArray();
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(onnxModel, options);
        using var value = OrtValue.CreateTensorValueFromMemory(input, cpuBatch.shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [OnnxGraph.InputName], [value], [OnnxGraph.OutputName]);
        var ortLogits = results[0].GetTensorDataAsSpan<float>().ToArray();
        if (ortLogits.Length != torchLogits.Length)
            throw new OnnxExportException($"ONNX output has {ortLogits.Length} values, TorchSharp {torchLogits.Length}");

        var n = (int)cpuBatch.shape[0];
        double maxDiff = 0;
        var argmaxSame = true;
        for (var i = 0; i < n; i++)
        {
            var row = i * (int)classes;
            int a = 0, b = 0;
            for (var c = 0; c < classes; c++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(ortLogits[row + c] - torchLogits[row + c]));
                if (torchLogits[row + c] > torchLogits[row + a]) a = c;
                if (ortLogits[row + c] > ortLogits[row + b]) b = c;
            }

            argmaxSame &= a == b;
        }

        return new OnnxParity(maxDiff, argmaxSame, n);
    }
}
