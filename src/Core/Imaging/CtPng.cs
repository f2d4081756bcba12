using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace MlFunctions.Core.Imaging;

/// <summary>
/// CT slices as 16-bit grayscale PNG: stored = round(HU) + offset (1024 by default), clamped to 0..65535, so −1024 HU
/// is 0 and 64511 HU the top. ImageSharp is configured with its PNG codec alone: an upload named .png that is a GIF,
/// TIFF or WebP never reaches those decoders, and the size is checked from the header before any pixel is decoded.
/// </summary>
public static class CtPng
{
    /// <summary>The largest side accepted (a 4096² slice is 32 MiB of 16-bit pixels); real CT is 512² or 1024².</summary>
    public const int MaxSide = 4096;

    private static readonly Configuration PngOnly = new(new PngConfigurationModule());

    private static readonly PngEncoder Encoder = new()
    {
        BitDepth = PngBitDepth.Bit16,
        ColorType = PngColorType.Grayscale,
        CompressionLevel = PngCompressionLevel.DefaultCompression,
    };

    public static byte[] Encode(HuImage slice, int offset = Hounsfield.PngOffset)
    {
        using var image = new Image<L16>(PngOnly, slice.Width, slice.Height);
        image.ProcessPixelRows(rows =>
        {
            for (var y = 0; y < rows.Height; y++)
            {
                var row = rows.GetRowSpan(y);
                var source = slice.Pixels.AsSpan(y * slice.Width, slice.Width);
                for (var x = 0; x < row.Length; x++)
                {
                    row[x] = new L16((ushort)Math.Clamp(Math.Round(source[x] + (double)offset), 0, 65535));
                }
            }
        });
        using var stream = new MemoryStream();
        image.Save(stream, Encoder);
        return stream.ToArray();
    }

    /// <summary>
    /// An 8-bit grayscale view of a slice for people (the run report): HU in [<paramref name="lower"/>,
    /// <paramref name="upper"/>] mapped linearly onto 0..255 and clamped outside, as a viewer's window/level does. A
    /// 16-bit slice in HU + 1024 shows nearly black in an ordinary image viewer (soft tissue is ~1/64 of full scale).
    /// Lossy by design: never read back as data (<see cref="TryDecode"/> refuses 8-bit files).
    /// </summary>
    public static byte[] EncodeWindowed(HuImage slice, double lower, double upper)
    {
        if (!(upper > lower))
        {
            throw new ArgumentOutOfRangeException(nameof(upper), $"the window [{lower}, {upper}] HU is empty");
        }

        var width = upper - lower;
        using var image = new Image<L8>(PngOnly, slice.Width, slice.Height);
        image.ProcessPixelRows(rows =>
        {
            for (var y = 0; y < rows.Height; y++)
            {
                var row = rows.GetRowSpan(y);
                var source = slice.Pixels.AsSpan(y * slice.Width, slice.Width);
                for (var x = 0; x < row.Length; x++)
                {
                    row[x] = new L8((byte)Math.Clamp(Math.Round((source[x] - lower) * 255.0 / width), 0, 255));
                }
            }
        });
        using var stream = new MemoryStream();
        image.Save(stream, WindowedEncoder);
        return stream.ToArray();
    }

    private static readonly PngEncoder WindowedEncoder = new()
    {
        BitDepth = PngBitDepth.Bit8,
        ColorType = PngColorType.Grayscale,
        CompressionLevel = PngCompressionLevel.DefaultCompression,
    };

    /// <summary>
    /// Decodes a slice, or says why not: not a PNG, corrupt, not 16-bit grayscale, or too large. The messages are
    /// written for the person who uploaded the file.
    /// </summary>
    public static bool TryDecode(byte[] png, out HuImage? slice, out string? problem, int offset = Hounsfield.PngOffset)
    {
        slice = null;
        try
        {
            var format = Image.DetectFormat(PngOnly, png);
            if (format is null)
            {
                problem = png.Length == 0 ? "is empty" : "is not a PNG (its first bytes are not the PNG signature)";
                return false;
            }

            var info = Image.Identify(PngOnly, png, out _);
            if (info is null)
            {
                problem = "is not a readable PNG";
                return false;
            }

            var meta = info.Metadata.GetPngMetadata();
            if (meta.ColorType != PngColorType.Grayscale || meta.BitDepth != PngBitDepth.Bit16)
            {
                problem = $"is {Describe(meta.BitDepth)} {Describe(meta.ColorType)}; CT slices must be 16-bit grayscale PNG (HU + {offset})";
                return false;
            }

            if (info.Width > MaxSide || info.Height > MaxSide)
            {
                problem = $"is {info.Width}×{info.Height}; the largest side accepted is {MaxSide}";
                return false;
            }

            using var image = Image.Load<L16>(PngOnly, png);
            var result = new HuImage(image.Width, image.Height);
            image.ProcessPixelRows(rows =>
            {
                for (var y = 0; y < rows.Height; y++)
                {
                    var row = rows.GetRowSpan(y);
                    var target = result.Pixels.AsSpan(y * result.Width, result.Width);
                    for (var x = 0; x < row.Length; x++)
                    {
                        target[x] = row[x].PackedValue - offset;
                    }
                }
            });
            slice = result;
            problem = null;
            return true;
        }
        // Whatever a crafted or damaged file makes the decoder throw is the upload's fault, not the host's: it becomes the
        // reason of a failed step. Only running out of memory is let through.
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            problem = $"is not a readable PNG ({e.Message.TrimEnd('.')})";
            return false;
        }
    }

    private static string Describe(PngBitDepth? depth) => depth switch
    {
        PngBitDepth.Bit1 => "1-bit",
        PngBitDepth.Bit2 => "2-bit",
        PngBitDepth.Bit4 => "4-bit",
        PngBitDepth.Bit8 => "8-bit",
        PngBitDepth.Bit16 => "16-bit",
        _ => "unknown-depth",
    };

    private static string Describe(PngColorType? type) => type switch
    {
        PngColorType.Grayscale => "grayscale",
        PngColorType.GrayscaleWithAlpha => "grayscale with alpha",
        PngColorType.Rgb => "RGB",
        PngColorType.RgbWithAlpha => "RGBA",
        PngColorType.Palette => "palette",
        _ => "unknown colour type",
    };
}
