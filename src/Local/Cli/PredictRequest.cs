using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace MlFunctions.Local.Cli;

/// <summary>
/// Builds a KServe V2 infer request for one file from the model's V2 metadata inputs, which already tell the model's
/// kind (the server derives them from the stored transform, see src/Serving): a <c>user</c> BYTES input is a recommender
/// (the file holds a user id); one numeric input of rank 3–4 is an image model (the image is decoded, resized to H×W and sent
/// as raw 0–255 values, which the server's scale/normalize transform turns into what the model was trained on); named
/// rank-1 inputs are raw table columns (a CSV row, with its header or in the inputs' order) or, for a text model, a
/// mail-like text file (<c>name: value</c> lines, a blank line, then the body for the one column left).
/// </summary>
public static class PredictRequest
{
    private static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".bmp"];

    // PNG, JPEG and BMP only, as Core/Imaging/CtPng keeps to PNG: ImageSharp 2.1's GIF/TIFF/WebP decoders are where its reported flaws were.
    private static readonly Configuration Decoders = new(new PngConfigurationModule(), new JpegConfigurationModule(), new BmpConfigurationModule());

    public static JsonObject Build(JsonArray inputs, FileInfo file)
    {
        var specs = inputs.Select(i => (Name: (string)i!["name"]!, Datatype: (string)i["datatype"]!, Shape: i["shape"]!.AsArray().Select(d => (long)d!).ToArray())).ToList();
        if (specs.Count == 0)
            throw new CliException("the model's metadata lists no inputs");

        if (specs.Any(s => s.Name == "user" && s.Datatype == "BYTES"))
        {
            var user = File.ReadAllText(file.FullName).Trim();
            if (user.Length == 0)
                throw new CliUsageException($"{file.Name} is empty: a recommender needs a user id");
            return Request(new JsonObject { ["name"] = "user", ["datatype"] = "BYTES", ["shape"] = new JsonArray(1), ["data"] = new JsonArray(user) });
        }

        if (specs.Count == 1 && specs[0].Shape.Length is 3 or 4 && specs[0].Datatype != "BYTES")
            return Request(Image(specs[0], file));

        var values = file.Extension.Equals(".csv", StringComparison.OrdinalIgnoreCase) ? CsvRow(specs.Select(s => s.Name).ToList(), file) : TextFields(specs, file);
        var tensors = new List<JsonNode>();
        foreach (var (name, datatype, _) in specs)
        {
            values.TryGetValue(name, out var value);
            value ??= "";
            JsonNode data;
            if (datatype == "BYTES")
            {
                data = JsonValue.Create(value);
            }
            else if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
            {
                data = JsonValue.Create(number);
            }
            else
            {
                throw new CliUsageException($"column '{name}' is numeric ({datatype}) but {file.Name} gives '{value}'");
            }

            tensors.Add(new JsonObject { ["name"] = name, ["datatype"] = datatype, ["shape"] = new JsonArray(1), ["data"] = new JsonArray(data) });
        }

        return Request([.. tensors]);
    }

    private static JsonObject Request(params JsonNode[] inputs) => new() { ["inputs"] = new JsonArray(inputs) };

    private static JsonObject Image((string Name, string Datatype, long[] Shape) spec, FileInfo file)
    {
        if (!ImageExtensions.Contains(file.Extension.ToLowerInvariant()))
            throw new CliUsageException($"model input '{spec.Name}' is an image [{string.Join(",", spec.Shape)}]; give an image file ({string.Join(" ", ImageExtensions)}), not {file.Name}");
        // NCHW ([N,C,H,W]) or a single image [C,H,W]; -1 is the batch.
        var (channels, height, width) = spec.Shape.Length == 4 ? (spec.Shape[1], spec.Shape[2], spec.Shape[3]) : (spec.Shape[0], spec.Shape[1], spec.Shape[2]);
        if (channels is not (1 or 3) || height <= 0 || width <= 0)
            throw new CliException($"model input '{spec.Name}' has shape [{string.Join(",", spec.Shape)}]: only 1 or 3 channels of a fixed size can be built from an image");
        Image<Rgb24> image;
        try
        {
            image = SixLabors.ImageSharp.Image.Load<Rgb24>(Decoders, file.FullName);
        }
        catch (Exception e) when (e is UnknownImageFormatException or InvalidImageContentException or NotSupportedException)
        {
            throw new CliUsageException($"{file.Name} is not an image ImageSharp can read: {e.Message}");
        }

        using (image)
        {
            image.Mutate(x => x.Resize((int)width, (int)height));
            var data = new JsonArray();
            for (var c = 0; c < channels; c++)
            {
                for (var y = 0; y < height; y++)
                {
                    for (var x = 0; x < width; x++)
                    {
                        var p = image[x, y];
                        // Grayscale by ITU-R BT.601 luma, the weights PIL's convert("L") uses for MNIST-like inputs.
                        double value = channels == 1 ? Math.Round((0.299 * p.R) + (0.587 * p.G) + (0.114 * p.B)) : c switch { 0 => p.R, 1 => p.G, _ => p.B };
                        data.Add(value);
                    }
                }
            }

            long[] shape = spec.Shape.Length == 4 ? [1, channels, height, width] : [channels, height, width];
            return new JsonObject { ["name"] = spec.Name, ["datatype"] = spec.Datatype, ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()), ["data"] = data };
        }
    }

    /// <summary>A CSV row: with a header line whose cells name the inputs, or one line of values in the inputs' order.</summary>
    private static Dictionary<string, string> CsvRow(List<string> names, FileInfo file)
    {
        var lines = File.ReadAllLines(file.FullName).Where(l => l.Trim().Length > 0).Select(SplitCsv).ToList();
        if (lines.Count == 0)
            throw new CliUsageException($"{file.Name} is empty: give one CSV row (optionally after its header)");
        var header = lines[0];
        if (names.All(header.Contains) && lines.Count >= 2)
            return header.Select((h, i) => (h, v: i < lines[1].Count ? lines[1][i] : "")).GroupBy(p => p.h).ToDictionary(g => g.Key, g => g.First().v, StringComparer.Ordinal);
        if (lines[0].Count != names.Count)
            throw new CliUsageException($"{file.Name}: the row has {lines[0].Count} values but the model takes {names.Count} columns ({string.Join(",", names)}); " +
                "give those values in that order, or a header line naming them");
        return names.Select((n, i) => (n, v: lines[0][i])).ToDictionary(p => p.n, p => p.v, StringComparer.Ordinal);
    }

    /// <summary>RFC 4180 fields of one line: commas, and double quotes around fields that hold them ("" is a quote).</summary>
    private static List<string> SplitCsv(string line)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var ch = line[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                else if (ch == '"') quoted = false;
                else field.Append(ch);
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { fields.Add(field.ToString()); field.Clear(); }
            else field.Append(ch);
        }

        fields.Add(field.ToString());
        return fields;
    }

    /// <summary>A text file for a model of named text columns: leading <c>name: value</c> lines, then the rest for the one text column not named.</summary>
    private static Dictionary<string, string> TextFields(List<(string Name, string Datatype, long[] Shape)> specs, FileInfo file)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var lines = File.ReadAllLines(file.FullName);
        var i = 0;
        for (; i < lines.Length; i++)
        {
            var colon = lines[i].IndexOf(':', StringComparison.Ordinal);
            var name = colon > 0 ? specs.FirstOrDefault(s => s.Name.Equals(lines[i][..colon].Trim(), StringComparison.OrdinalIgnoreCase)).Name : null;
            if (name is null)
                break;
            values[name] = lines[i][(colon + 1)..].Trim();
        }

        if (i < lines.Length && lines[i].Trim().Length == 0)
            i++;
        var rest = string.Join('\n', lines.Skip(i)).Trim();
        var open = specs.Where(s => s.Datatype == "BYTES" && !values.ContainsKey(s.Name)).ToList();
        if (rest.Length > 0)
        {
            if (open.Count == 0)
                throw new CliUsageException($"{file.Name}: every column is named in its header lines; nothing takes the rest of the text");
            // The body of a mail-like file goes to 'body' or 'text' when the model has one, else to its last text column.
            var target = open.FirstOrDefault(s => s.Name is "body" or "text").Name ?? open[^1].Name;
            values[target] = rest;
        }

        return values;
    }
}
