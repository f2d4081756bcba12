using System.Buffers.Binary;
using System.Text;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Transforms;
using MlFunctions.Serving;
using MlFunctions.Serving.Protocol;
using Xunit;

namespace MlFunctions.Serving.Tests;

/// <summary>A served image classifier's PNG input (#11 §1): base64 in JSON, raw bytes in the binary extension, both the training reader's pixels.</summary>
public sealed class ImageInputsTests
{
    private static readonly ImageTransform Digits = new() { Classes = ["0", "1", "2"], Channels = 1, Height = 8, Width = 8, PixelMax = 16 };
    private static readonly TensorMetadata Pixels = new("input", Datatype.FP32, [-1, 1, 8, 8]);

    private static byte[] Png(int width, int height) =>
        ImagePng.Encode(new ImagePixels(1, height, width, Enumerable.Range(0, width * height).Select(i => (byte)(i * 4)).ToArray()));

    [Fact]
    public void A_base64_png_and_its_raw_bytes_through_the_binary_codec_decode_to_the_same_scaled_pixels()
    {
        var png = Png(8, 8);
        var inputs = new ImageInputs(Digits, Pixels);
        var fromJson = inputs.Decode([new InferTensor("image", Datatype.BYTES, [1], new[] { Convert.ToBase64String(png) })]).Single();

        // The binary extension: uint32 length + the file's bytes; they are not UTF-8, so the codec keeps them as Latin-1.
        var element = new byte[4 + png.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(element, (uint)png.Length);
        png.CopyTo(element, 4);
        var raw = (string[])V2Codec.DecodeBinary(element, Datatype.BYTES, 1, "image");
        Assert.Equal(png, Encoding.Latin1.GetBytes(raw[0]));
        var fromBinary = inputs.Decode([new InferTensor("image", Datatype.BYTES, [1], raw)]).Single();

        Assert.Equal("input", fromJson.Name);
        Assert.Equal([1L, 1, 8, 8], fromJson.Shape);
        Assert.Equal((float[])fromJson.Data, (float[])fromBinary.Data);

        // 0..255 onto the trained range 0..16: pixel i was 4·i.
        var data = (float[])fromJson.Data;
        Assert.Equal(4 * 5 * 16 / 255f, data[5], 5);

        // Text stays text: valid UTF-8 is decoded as UTF-8.
        var word = "héllo"u8.ToArray();
        var text = new byte[4 + word.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(text, (uint)word.Length);
        word.CopyTo(text, 4);
        Assert.Equal("héllo", ((string[])V2Codec.DecodeBinary(text, Datatype.BYTES, 1, "t"))[0]);
    }

    [Fact]
    public void A_wrong_size_a_non_png_and_a_mixed_request_are_400s_naming_the_element()
    {
        var inputs = new ImageInputs(Digits, Pixels);
        var e = Assert.Throws<InferenceError>(() => inputs.Decode([new InferTensor("image", Datatype.BYTES, [3], new[] { Convert.ToBase64String(Png(8, 8)), Convert.ToBase64String(Png(9, 8)), "bm90IGEgcG5n" })]));
        Assert.Equal(400, e.StatusCode);
        Assert.Contains("element 1 is 9×8; the model takes 8×8 images", e.Message);
        Assert.Contains("element 2 is not a PNG", e.Message);

        var both = Assert.Throws<InferenceError>(() => inputs.Decode([new InferTensor("image", Datatype.BYTES, [1], new[] { "x" }), new InferTensor("input", Datatype.FP32, [1, 1, 8, 8], new float[64])]));
        Assert.Contains("not both", both.Message);

        // A model trained with images.resize takes any size and resizes it as training did.
        var resizing = new ImageInputs(Digits with { Resize = true }, Pixels).Decode([new InferTensor("image", Datatype.BYTES, [1], new[] { Convert.ToBase64String(Png(16, 12)) })]).Single();
        Assert.Equal([1L, 1, 8, 8], resizing.Shape);

        // Without a PNG the request passes through unchanged (FP32 pixel rows).
        IReadOnlyList<InferTensor> pixels = [new InferTensor("input", Datatype.FP32, [1, 1, 8, 8], new float[64])];
        Assert.Same(pixels, inputs.Decode(pixels));
    }
}
