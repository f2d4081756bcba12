using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace MlFunctions.Core.Imaging;

/// <summary>An 8-bit image as a classifier reads it: planar [C, H, W] bytes (C = 1 grayscale, 3 RGB), the IDX/shard layout.</summary>
public sealed record ImagePixels(int Channels, int Height, int Width, byte[] Planes);

/// <summary>
/// PNG ↔ classifier pixels, one decoder for the PNG-folder reader (training) and the served <c>image</c> input
/// (serving), so a served PNG becomes exactly the tensor a training PNG became. Like <see cref="CtPng"/>, ImageSharp is
/// configured with its PNG codec alone, the size is checked from the header before any pixel is decoded, and whatever a
/// damaged file makes the decoder throw becomes a problem sentence, never an exception.
/// </summary>
public static class ImagePng
{
    /// <summary>The largest side accepted: a 1024² RGB image is 3 MiB of pixels; classifier datasets are 28²..512².</summary>
    public const int MaxSide = 1024;

    private static readonly Configuration PngOnly = new(new PngConfigurationModule());

    /// <summary>
    /// The channels a PNG carries as a classifier sees it: 1 for grayscale (with or without alpha), 3 for RGB, RGBA and
    /// palette images; null with <paramref name="problem"/> when it is not a readable PNG or is too large.
    /// </summary>
    public static (int Channels, int Width, int Height)? Identify(byte[] png, out string? problem)
    {
        try
        {
            if (png.Length == 0)
            {
                problem = "is empty";
                return null;
            }

            if (Image.DetectFormat(PngOnly, png) is null)
            {
                problem = "is not a PNG (its first bytes are not the PNG signature)";
                return null;
            }

            var info = Image.Identify(PngOnly, png, out _);
            if (info is null)
            {
                problem = "is not a readable PNG";
                return null;
            }

            if (info.Width > MaxSide || info.Height > MaxSide)
            {
                problem = $"is {info.Width}×{info.Height}; the largest side accepted is {MaxSide}";
                return null;
            }

            var color = info.Metadata.GetPngMetadata().ColorType;
            problem = null;
            return (color is PngColorType.Grayscale or PngColorType.GrayscaleWithAlpha ? 1 : 3, info.Width, info.Height);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            problem = $"is not a readable PNG ({e.Message.TrimEnd('.')})";
            return null;
        }
    }

    /// <summary>
    /// Decodes <paramref name="png"/> into <paramref name="channels"/> planes (ImageSharp's conversion: RGB → luminance
    /// for 1, grayscale replicated for 3; alpha dropped). With <paramref name="resizeTo"/> the image is first resized
    /// (bicubic) to that (width, height); otherwise its own size is kept. Null with <paramref name="problem"/> for a file
    /// that cannot be decoded: header checks first, then a full decode, which is where a truncated file is found.
    /// </summary>
    public static ImagePixels? TryDecode(byte[] png, int channels, (int Width, int Height)? resizeTo, out string? problem)
    {
        if (Identify(png, out problem) is null)
        {
            return null;
        }

        try
        {
            return channels == 1 ? Decode<L8>(png, 1, resizeTo) : Decode<Rgb24>(png, 3, resizeTo);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            problem = $"is not a readable PNG ({e.Message.TrimEnd('.')})";
            return null;
        }
    }

    private static ImagePixels Decode<TPixel>(byte[] png, int channels, (int Width, int Height)? resizeTo)
        where TPixel : unmanaged, IPixel<TPixel>
    {
        using var image = Image.Load<TPixel>(PngOnly, png);
        if (resizeTo is { } size && (image.Width != size.Width || image.Height != size.Height))
        {
            image.Mutate(x => x.Resize(size.Width, size.Height, KnownResamplers.Bicubic));
        }

        int w = image.Width, h = image.Height, plane = w * h;
        var planes = new byte[channels * plane];
        image.ProcessPixelRows(rows =>
        {
            for (var y = 0; y < rows.Height; y++)
            {
                // TPixel is L8 (1 byte) or Rgb24 (3 bytes, R G B): read the row as bytes and deal them into the planes.
                var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(rows.GetRowSpan(y));
                for (var x = 0; x < w; x++)
                {
                    for (var c = 0; c < channels; c++)
                    {
                        planes[(c * plane) + (y * w) + x] = bytes[(x * channels) + c];
                    }
                }
            }
        });
        return new ImagePixels(channels, h, w, planes);
    }

    /// <summary>Planar pixels as an 8-bit PNG (grayscale for 1 channel, RGB for 3): test data, reports, a client's request.</summary>
    public static byte[] Encode(ImagePixels pixels)
    {
        if (pixels.Channels is not (1 or 3) || pixels.Planes.Length != pixels.Channels * pixels.Height * pixels.Width)
        {
            throw new ArgumentException($"pixels must be 1 or 3 planes of {pixels.Height}×{pixels.Width}, got {pixels.Channels} channels and {pixels.Planes.Length} bytes");
        }

        int w = pixels.Width, plane = w * pixels.Height;
        using var stream = new MemoryStream();
        if (pixels.Channels == 1)
        {
            using var image = Image.LoadPixelData<L8>(PngOnly, pixels.Planes, w, pixels.Height);
            image.Save(stream, new PngEncoder { ColorType = PngColorType.Grayscale, BitDepth = PngBitDepth.Bit8 });
        }
        else
        {
            var rgb = new Rgb24[plane];
            for (var i = 0; i < plane; i++)
            {
                rgb[i] = new Rgb24(pixels.Planes[i], pixels.Planes[plane + i], pixels.Planes[(2 * plane) + i]);
            }

            using var image = Image.LoadPixelData<Rgb24>(PngOnly, rgb, w, pixels.Height);
            image.Save(stream, new PngEncoder { ColorType = PngColorType.Rgb, BitDepth = PngBitDepth.Bit8 });
        }

        return stream.ToArray();
    }
}
