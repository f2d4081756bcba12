using System.Text;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Transforms;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving;

/// <summary>
/// How an image classifier trained on PNG folders or pixel CSVs is served (<see cref="TransformSpec.Image"/>). A request
/// carries either the model's pixel input (FP32 [n, C, H, W] raw pixels, the row of a pixel CSV or the bytes of an IDX
/// image) or <see cref="PngInput"/> BYTES [n]: each element a PNG, base64-encoded in JSON, or the file's raw bytes in the
/// binary tensor extension. A PNG is decoded by the training reader's decoder (<see cref="ImagePng"/>: same channel
/// conversion, same resize) and scaled from 0..255 onto the trained pixel range; the stored scale/normalize transform is
/// then applied as for any pixel request. The answer adds the class name (<see cref="TabularInputs.LabelOutput"/>) and
/// the class probabilities to the logits.
/// </summary>
internal sealed class ImageInputs(ImageTransform image, TensorMetadata pixels)
{
    public const string PngInput = "image";

    public static TensorMetadata PngMetadata { get; } = new(PngInput, Datatype.BYTES, [-1]);

    public ImageTransform Image => image;

    public static IReadOnlyList<TensorMetadata> DerivedOutputs(ImageTransform image) =>
        [new(TabularInputs.LabelOutput, Datatype.BYTES, [-1]), new(TabularInputs.ProbabilitiesOutput, Datatype.FP32, [-1, image.Classes.Count])];

    /// <summary>The inputs with a PNG input replaced by the pixel tensor it decodes to; unchanged without one. Every problem is a 400.</summary>
    public IReadOnlyList<InferTensor> Decode(IReadOnlyList<InferTensor> inputs)
    {
        var png = inputs.FirstOrDefault(i => i.Name == PngInput);
        if (png is null)
            return inputs;
        if (inputs.Count != 1)
            throw InferenceError.Invalid($"Send either '{PngInput}' (BYTES [n], PNG files) or '{pixels.Name}' (FP32 [n, {image.Channels}, {image.Height}, {image.Width}] pixels), not both.");
        if (png.Datatype != Datatype.BYTES || png.Data is not string[] files || png.Shape is not ([_] or [_, 1]) || files.Length != png.Shape[0] || files.Length == 0)
            throw InferenceError.Invalid($"Input '{PngInput}' must be BYTES [n] (n >= 1): each element one PNG, base64 in JSON or raw bytes in the binary extension; got {png.Datatype} [{string.Join(",", png.Shape)}].");

        var size = image.SampleSize;
        var data = new float[files.Length * size];
        var factor = image.PixelMax / 255f;
        var problems = new List<string>();
        for (var n = 0; n < files.Length; n++)
        {
            var bytes = Bytes(files[n]);
            if (bytes is null)
            {
                problems.Add($"element {n} is neither base64 nor a PNG file's raw bytes");
                continue;
            }

            var decoded = ImagePng.TryDecode(bytes, image.Channels, image.Resize ? (image.Width, image.Height) : null, out var problem);
            if (decoded is null)
            {
                problems.Add($"element {n} {problem}");
                continue;
            }

            if (decoded.Width != image.Width || decoded.Height != image.Height)
            {
                problems.Add($"element {n} is {decoded.Width}×{decoded.Height}; the model takes {image.Width}×{image.Height} images");
                continue;
            }

            var target = data.AsSpan(n * size, size);
            for (var i = 0; i < size; i++)
                target[i] = decoded.Planes[i] * factor;
        }

        if (problems.Count > 0)
            throw InferenceError.Invalid($"Input '{PngInput}': {string.Join("; ", problems)}.");
        long[] shape = pixels.Shape.Length == 4 ? [files.Length, image.Channels, image.Height, image.Width] : [files.Length, size];
        return [new InferTensor(pixels.Name, Datatype.FP32, shape, data, png.Parameters)];
    }

    /// <summary>
    /// A PNG's bytes from a BYTES element: base64 text (JSON), or the raw file, which the binary extension's decoder keeps
    /// byte for byte as Latin-1 characters because a PNG is not valid UTF-8 (its first byte, 0x89, cannot start a character).
    /// </summary>
    private static byte[]? Bytes(string element)
    {
        if (element.Length >= 4 && element[0] == '\u0089' && element.AsSpan(1, 3).SequenceEqual("PNG"))
            return Encoding.Latin1.GetBytes(element);
        var buffer = new byte[(element.Length * 3 / 4) + 3];
        return Convert.TryFromBase64String(element.Trim(), buffer, out var written) ? buffer[..written] : null;
    }
}
