using MlFunctions.Core.Training;
using MlFunctions.GpuWorker.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Training;

/// <summary>
/// Random affine augmentation of image batches [N, C, H, W] for training: per image a rotation, an isotropic scale
/// and a shift, applied with one bilinear <c>grid_sample</c>. The draws come from a CPU generator seeded by
/// (job seed, epoch, <see cref="Stream"/>) and consumed batch by batch in the epoch's shuffled order, so an epoch's
/// augmented batches depend on the seed and epoch alone: a job resumed from a checkpoint sees exactly the batches
/// the uninterrupted run saw, as with shuffling and dropout (<see cref="Seeds"/>). Evaluation, ONNX export and
/// serving never call it: it is not a layer of the model.
/// </summary>
public sealed class ImageAugmentation : IDisposable
{
    /// <summary>The <see cref="Seeds.ForEpoch"/> stream of the augmentation draws (1 shuffle, 2 dropout, 3 ranking negatives).</summary>
    public const int Stream = 4;

    /// <summary>Rotation at strength 1, in degrees: MNIST digits are written up to about ±15° slanted.</summary>
    public const double MaxRotationDegrees = 12;

    /// <summary>Relative scale change at strength 1.</summary>
    public const double MaxScale = 0.10;

    /// <summary>Shift at strength 1 as a fraction of the image side: 3 px of 28, about the jitter of MNIST's centring.</summary>
    public const double MaxShiftFraction = 3.0 / 28;

    private readonly Generator _generator;
    private readonly double _strength;

    private ImageAugmentation(double strength, long seed, int epoch)
    {
        _strength = strength;
        _generator = new Generator((ulong)Seeds.ForEpoch(seed, epoch, Stream));
    }

    /// <summary>Checks the strength and the sample shape; throws <see cref="JobValidationException"/> for a job that cannot be augmented.</summary>
    public static void Validate(double strength, int[] sampleShape)
    {
        if (double.IsNaN(strength) || strength is < 0 or > 1)
            throw new JobValidationException($"hyperparameters.augment must be between 0 (off) and 1, got {strength}.");
        if (strength > 0 && sampleShape.Length != 3)
            throw new JobValidationException($"hyperparameters.augment needs image samples shaped channels,height,width; the data has [{string.Join(",", sampleShape)}].");
    }

    /// <summary>The epoch's augmenter, or null when <paramref name="strength"/> is 0 (the batches pass unchanged).</summary>
    public static ImageAugmentation? ForEpoch(double strength, long seed, int epoch) =>
        strength > 0 ? new ImageAugmentation(strength, seed, epoch) : null;

    /// <summary>The batch, each image under its own random affine transform (a new tensor; <paramref name="images"/> is unchanged).</summary>
    public Tensor Apply(Tensor images)
    {
        var n = images.shape[0];
        // Four uniform draws in [-1, 1) per image (angle, scale, x and y shift), on the CPU generator whatever the device: the same numbers on CPU and GPU.
        using var u = rand([n, 4], generator: _generator).mul_(2).sub_(1);
        using var angle = u.select(1, 0) * (MaxRotationDegrees * _strength * Math.PI / 180);
        using var scale = u.select(1, 1) * (MaxScale * _strength) + 1;

        // affine_grid maps output coordinates to input ones in [-1, 1]: a shift of f of the side is 2f there.
        using var tx = u.select(1, 2) * (2 * MaxShiftFraction * _strength);
        using var ty = u.select(1, 3) * (2 * MaxShiftFraction * _strength);
        using var cos = angle.cos() / scale;
        using var sin = angle.sin() / scale;
        using var theta = stack([cos, -sin, tx, sin, cos, ty], 1).reshape(n, 2, 3).to(images.dtype).to(images.device);
        using var grid = nn.functional.affine_grid(theta, [n, images.shape[1], images.shape[2], images.shape[3]], align_corners: false);

        // Border padding: pixels shifted in repeat the edge, which is background in normalized MNIST (zero padding
        // would be mid-grey after normalization and mark every augmented image).
        return nn.functional.grid_sample(images, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Border, align_corners: false);
    }

    public void Dispose() => _generator.Dispose();
}
