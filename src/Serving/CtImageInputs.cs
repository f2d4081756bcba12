using MlFunctions.Core.Imaging;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving;

/// <summary>
/// How a CT denoiser is served (#14, transform kind <c>ct</c>). A request carries either low-dose slices in HU,
/// <see cref="SliceInput"/> FP32 [n, 1, H, W], or one slice as a PNG, <see cref="PngInput"/> BYTES [1] holding the
/// base64 of a 16-bit grayscale PNG in HU + offset (the dataset's file format; V2 BYTES elements are text, hence
/// base64). Any H and W in the transform's range that are multiples of its stride are served: the model is fully
/// convolutional. The answer is <see cref="SliceOutput"/> FP32 [n, 1, H, W] in HU and, for a PNG request,
/// <see cref="PngOutput"/> BYTES [1], the denoised slice as a base64 PNG in the same format.
/// </summary>
internal sealed class CtImageInputs(CtTransform transform)
{
    public const string SliceInput = "input";
    public const string PngInput = "image";
    public const string SliceOutput = "denoised";
    public const string PngOutput = "denoised_png";

    public static IReadOnlyList<TensorMetadata> Metadata { get; } = [new(SliceInput, Datatype.FP32, [-1, 1, -1, -1]), new(PngInput, Datatype.BYTES, [1])];

    public static IReadOnlyList<TensorMetadata> OutputMetadata { get; } = [new(SliceOutput, Datatype.FP32, [-1, 1, -1, -1]), new(PngOutput, Datatype.BYTES, [1])];

    /// <summary>A parsed request: slices in HU [n, 1, h, w] and whether it came as a PNG.</summary>
    public sealed record Slices(float[] Hu, int Count, int Height, int Width, bool FromPng);

    /// <summary>The request's slices; every problem is a 400 saying what to send.</summary>
    public Slices Parse(IReadOnlyList<InferTensor> inputs)
    {
        if (inputs.Count != 1 || inputs[0].Name is not (SliceInput or PngInput))
            throw InferenceError.Invalid($"A CT denoiser takes exactly one input: '{SliceInput}' (FP32 [n, 1, H, W], low-dose slices in HU) or '{PngInput}' (BYTES [1], a base64 16-bit PNG in HU + {transform.HuOffset}); got {string.Join(", ", inputs.Select(i => $"'{i.Name}'"))}.");
        var input = inputs[0];
        if (input.Name == PngInput)
        {
            if (input.Datatype != Datatype.BYTES || input.Data is not string[] { Length: 1 } text)
                throw InferenceError.Invalid($"Input '{PngInput}' must be BYTES [1]: one base64-encoded 16-bit grayscale PNG; got {input.Datatype} [{string.Join(",", input.Shape)}].");
            byte[] png;
            try
            {
                png = Convert.FromBase64String(text[0]);
            }
            catch (FormatException)
            {
                throw InferenceError.Invalid($"Input '{PngInput}' is not base64: send the PNG file's bytes base64-encoded.");
            }

            if (!CtPng.TryDecode(png, out var slice, out var problem, transform.HuOffset))
                throw InferenceError.Invalid($"Input '{PngInput}': {problem}.");
            CheckSize(slice!.Height, slice.Width);
            return new Slices(slice.Pixels.ToArray(), 1, slice.Height, slice.Width, true);
        }

        if (input.Datatype != Datatype.FP32 || input.Data is not float[] hu)
            throw InferenceError.Invalid($"Input '{SliceInput}' must be FP32 (low-dose slices in HU), not {input.Datatype}.");
        if (input.Shape is not [var n, 1, var h, var w] || n < 1)
            throw InferenceError.Invalid($"Input '{SliceInput}' must have shape [n, 1, H, W] (n >= 1, one channel); got [{string.Join(",", input.Shape)}].");
        CheckSize(h, w);
        if (hu.LongLength != n * h * w)
            throw InferenceError.Invalid($"Input '{SliceInput}' has {hu.LongLength} values but shape [{n},1,{h},{w}] needs {n * h * w}.");
        if (hu.Any(v => !float.IsFinite(v)))
            throw InferenceError.Invalid($"Input '{SliceInput}' has NaN or infinite values; send HU values.");
        return new Slices(hu, (int)n, (int)h, (int)w, false);
    }

    private void CheckSize(long h, long w)
    {
        if (h < transform.MinSize || w < transform.MinSize || h > transform.MaxSize || w > transform.MaxSize || h % transform.Multiple != 0 || w % transform.Multiple != 0)
            throw InferenceError.Invalid($"A {w}×{h} slice cannot be served: width and height must be {transform.MinSize}..{transform.MaxSize}{(transform.Multiple > 1 ? $" and multiples of {transform.Multiple}" : "")}.");
    }

    /// <summary>Scales to the model's units, runs it (one call), scales back to HU and encodes what was asked.</summary>
    public IReadOnlyList<InferTensor> Denoise(Slices slices, Func<InferTensor, float[]> run, string modelInput, IReadOnlyCollection<string> outputs)
    {
        var scale = (float)transform.HuScale;
        var x = new float[slices.Hu.Length];
        for (var i = 0; i < x.Length; i++)
            x[i] = slices.Hu[i] * scale;
        long[] shape = [slices.Count, 1, slices.Height, slices.Width];
        var y = run(new InferTensor(modelInput, Datatype.FP32, shape, x));
        if (y.Length != x.Length)
            throw new InferenceError(InferenceErrorKind.Internal, $"The denoiser returned {y.Length} values for {x.Length} input pixels.");
        for (var i = 0; i < y.Length; i++)
            y[i] /= scale;
        var result = new List<InferTensor>();
        if (outputs.Contains(SliceOutput))
            result.Add(new InferTensor(SliceOutput, Datatype.FP32, shape, y));
        if (outputs.Contains(PngOutput))
        {
            if (slices.Count != 1)
                throw InferenceError.Invalid($"Output '{PngOutput}' encodes one slice; the request has {slices.Count}.");
            var png = CtPng.Encode(new HuImage(slices.Width, slices.Height, y), transform.HuOffset);
            result.Add(new InferTensor(PngOutput, Datatype.BYTES, [1], new[] { Convert.ToBase64String(png) }));
        }

        return result;
    }

    /// <summary>What a request gets by default: the slice in HU, and the PNG too when it sent a PNG.</summary>
    public static string[] DefaultOutputs(Slices slices) => slices.FromPng ? [SliceOutput, PngOutput] : [SliceOutput];
}
