using MlFunctions.Core.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Models;

/// <summary>
/// (Conv3x3 pad 1 → [BatchNorm2d] → ReLU → MaxPool2)* per entry of Channels → Flatten → Dropout → Linear(128) →
/// [BatchNorm1d] → ReLU → Linear. The classic small MNIST CNN; the hidden width is HiddenSizes[0]; the BatchNorm
/// layers are there when <see cref="HyperParameters.BatchNorm"/> is set (the convolution then has no bias: the
/// BatchNorm's shift replaces it).
/// </summary>
public sealed class CnnModel : IModelDefinition
{
    public string Name => "cnn";

    public Sequential Build(HyperParameters hp, int[] sampleShape, int classes)
    {
        if (sampleShape.Length != 3)
            throw new JobValidationException($"cnn: needs samples shaped channels,height,width; the data has [{string.Join(",", sampleShape)}].");
        if (hp.Channels.Count == 0 || hp.Channels.Any(c => c < 1))
            throw new JobValidationException("cnn: Channels must list at least one positive channel count.");
        long channels = sampleShape[0], height = sampleShape[1], width = sampleShape[2];
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        for (var i = 0; i < hp.Channels.Count; i++)
        {
            if (height < 2 || width < 2)
                throw new JobValidationException($"cnn: {hp.Channels.Count} pooling blocks shrink {sampleShape[1]}x{sampleShape[2]} inputs below 1x1.");
            layers.Add(($"conv{i + 1}", nn.Conv2d(channels, hp.Channels[i], 3, padding: 1, bias: !hp.BatchNorm)));
            if (hp.BatchNorm)
                layers.Add(($"bn{i + 1}", nn.BatchNorm2d(hp.Channels[i])));
            layers.Add(($"relu{i + 1}", nn.ReLU()));
            layers.Add(($"pool{i + 1}", nn.MaxPool2d(2)));
            channels = hp.Channels[i];
            height /= 2;
            width /= 2;
        }

        var hidden = hp.HiddenSizes.Count > 0 && hp.HiddenSizes[0] > 0 ? hp.HiddenSizes[0] : 128;
        layers.Add(("flatten", nn.Flatten()));
        if (hp.Dropout > 0)
            layers.Add(("dropout", nn.Dropout(hp.Dropout)));
        layers.Add(("fc1", nn.Linear(channels * height * width, hidden)));
        if (hp.BatchNorm)
            layers.Add(("bn_fc", nn.BatchNorm1d(hidden)));
        layers.Add(("relu_fc", nn.ReLU()));
        layers.Add(("out", nn.Linear(hidden, classes)));
        return nn.Sequential(layers);
    }
}
