using System.Text.Json.Serialization;

namespace MlFunctions.Core.Transforms;

/// <summary>
/// The raw-input transform a model was trained with, stored next to the model so serving applies exactly the
/// same preprocessing. Written by the training worker and read by src/Serving, so it is a versioned
/// System.Text.Json contract: add fields with defaults, bump <see cref="SchemaVersion"/> when meaning changes.
/// </summary>
/// <remarks>
/// The transform is <c>x' = (x * Scale - Mean[c]) / Std[c]</c>, the usual torchvision
/// <c>ToTensor()</c> + <c>Normalize(mean, std)</c> pair. For MNIST: Scale = 1/255, Mean = [0.1307],
/// Std = [0.3081]. With one mean/std value it applies to every element; with C values the buffer is read as
/// NCHW with <see cref="PlaneSize"/> elements per channel plane (H*W), so channel c = (i / PlaneSize) % C.
/// </remarks>
public sealed record TransformSpec
{
    /// <summary>The schema version this code understands.</summary>
    public const int CurrentSchemaVersion = 1;

    /// <summary>The kinds this code implements; unknown kinds are refused rather than silently skipped.</summary>
    public const string ScaleNormalizeKind = "scale_normalize";

    /// <summary>Named raw fields (a CSV row) → one feature vector, by <see cref="Tabular"/>.</summary>
    public const string TabularKind = "tabular";

    /// <summary>Raw user and item ids → indices, by <see cref="Interactions"/> (recommenders).</summary>
    public const string InteractionsKind = "interactions";

    /// <summary>Named raw fields with free text among them (subject, body): the same <see cref="Tabular"/> payload, whose text
    /// columns carry their fitted tokenization and idf. Its own kind, so a build that cannot encode text refuses the model.</summary>
    public const string TextKind = "text";

    /// <summary>CT slices in HU ↔ the denoiser's scaled units, by <see cref="Ct"/> (#14).</summary>
    public const string CtKind = "ct";

    /// <summary>Whether the transform encodes named raw fields (<see cref="TabularKind"/> or <see cref="TextKind"/>).</summary>
    [JsonIgnore]
    public bool IsTable => Kind is TabularKind or TextKind;

    [JsonPropertyName("schemaVersion")]
    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; init; } = ScaleNormalizeKind;

    /// <summary>The model input the transform applies to; null means the model's only floating-point input.</summary>
    [JsonPropertyName("input")]
    public string? Input { get; init; }

    [JsonPropertyName("scale")]
    public float Scale { get; init; } = 1f;

    [JsonPropertyName("mean")]
    public float[] Mean { get; init; } = [0f];

    [JsonPropertyName("std")]
    public float[] Std { get; init; } = [1f];

    /// <summary>Elements per channel plane (H*W) in NCHW layout; needed only with more than one mean/std value.</summary>
    [JsonPropertyName("planeSize")]
    public int PlaneSize { get; init; }

    /// <summary>The fitted column encodings when <see cref="Kind"/> is <see cref="TabularKind"/>.</summary>
    [JsonPropertyName("tabular")]
    public TabularTransform? Tabular { get; init; }

    /// <summary>The id maps and per-user seen items when <see cref="Kind"/> is <see cref="InteractionsKind"/>.</summary>
    [JsonPropertyName("interactions")]
    public InteractionTransform? Interactions { get; init; }

    /// <summary>The HU scaling and served sizes when <see cref="Kind"/> is <see cref="CtKind"/>.</summary>
    [JsonPropertyName("ct")]
    public Imaging.CtTransform? Ct { get; init; }

    /// <summary>Image classifiers from PNG folders or pixel CSVs: the class names (served as <c>label</c>), the sample shape
    /// and pixel range, so serving decodes a PNG into the pixels training saw. Null for IDX models (MNIST answers logits).</summary>
    [JsonPropertyName("image")]
    public ImageTransform? Image { get; init; }

    /// <summary>A tabular transform: serving encodes named raw fields with it.</summary>
    public static TransformSpec ForTable(TabularTransform table) => new() { Kind = table.HasText ? TextKind : TabularKind, Tabular = table };

    /// <summary>The transform as the worker applies it to stored shard features: scaling of raw bytes, nothing for
    /// tabular shards, which are stored already encoded (the encoding needs the raw text, which shards do not keep).</summary>
    public void ApplyToStored(Span<float> buffer)
    {
        if (!IsTable && Kind is not (InteractionsKind or CtKind))
            Apply(buffer);
    }

    /// <summary>The MNIST transform: bytes 0..255 to the normalized range the model was trained on.</summary>
    public static TransformSpec Mnist(string? input = null) => new()
    {
        Input = input,
        Scale = 1f / 255f,
        Mean = [0.1307f],
        Std = [0.3081f],
        PlaneSize = 28 * 28,
    };

    /// <summary>Throws <see cref="ArgumentException"/> when the spec cannot be applied by this code.</summary>
    public void Validate()
    {
        if (SchemaVersion < 1 || SchemaVersion > CurrentSchemaVersion)
            throw new ArgumentException($"Transform schema version {SchemaVersion} is not supported (this build understands 1..{CurrentSchemaVersion}).");
        if (IsTable)
        {
            var problems = Tabular?.Problems() ?? ["a tabular transform needs its fitted columns and classes"];
            if (Kind == TextKind && Tabular is { HasText: false })
                problems = [.. problems, "a text transform needs at least one text column"];
            if (Kind == TabularKind && Tabular is { HasText: true })
                problems = [.. problems, "a tabular transform with text columns must be of kind 'text'"];
            if (problems.Count > 0)
                throw new ArgumentException($"Invalid {Kind} transform: {string.Join("; ", problems)}.");
            return;
        }

        if (Kind == InteractionsKind)
        {
            if (Interactions is not { Users.Count: > 0, Items.Count: > 0 })
                throw new ArgumentException("An interactions transform needs its user and item id maps.");
            return;
        }

        if (Kind == CtKind)
        {
            var problems = Ct?.Problems() ?? ["a ct transform needs its HU scaling"];
            if (problems.Count > 0)
                throw new ArgumentException($"Invalid ct transform: {string.Join("; ", problems)}.");
            return;
        }

        if (Kind != ScaleNormalizeKind)
            throw new ArgumentException($"Transform kind '{Kind}' is not supported (expected '{ScaleNormalizeKind}', '{TabularKind}', '{TextKind}' or '{InteractionsKind}').");
        if (Mean is null || Std is null || Mean.Length == 0 || Mean.Length != Std.Length)
            throw new ArgumentException("Transform mean and std must be non-empty and of equal length.");
        if (Std.Any(s => s == 0f || !float.IsFinite(s)))
            throw new ArgumentException("Transform std values must be finite and non-zero.");
        if (!float.IsFinite(Scale))
            throw new ArgumentException("Transform scale must be finite.");
        if (Mean.Length > 1 && PlaneSize <= 0)
            throw new ArgumentException("Transform planeSize must be positive when there is more than one channel.");
        if (Image is { } image && image.Problems(Mean.Length) is { Count: > 0 } imageProblems)
            throw new ArgumentException($"Invalid image transform: {string.Join("; ", imageProblems)}.");
    }

    /// <summary>Applies the transform in place. Pure: the result depends only on the spec and the buffer.</summary>
    public void Apply(float[] buffer) => Apply(buffer.AsSpan());

    /// <inheritdoc cref="Apply(float[])"/>
    public void Apply(Span<float> buffer)
    {
        Validate();
        if (IsTable || Kind is InteractionsKind or CtKind)
            throw new InvalidOperationException("A tabular, text, interactions or ct transform encodes named raw fields (TabularTransform.Encode, the id maps), not a float buffer.");
        if (Mean.Length == 1)
        {
            // Fold (x*s - m)/d into x*a + b: one multiply-add per element keeps the hot path cheap.
            float a = Scale / Std[0], b = -Mean[0] / Std[0];
            for (int i = 0; i < buffer.Length; i++)
                buffer[i] = buffer[i] * a + b;
            return;
        }
        int channels = Mean.Length;
        for (int start = 0, plane = 0; start < buffer.Length; start += PlaneSize, plane++)
        {
            int c = plane % channels;
            float a = Scale / Std[c], b = -Mean[c] / Std[c];
            var span = buffer.Slice(start, Math.Min(PlaneSize, buffer.Length - start));
            for (int i = 0; i < span.Length; i++)
                span[i] = span[i] * a + b;
        }
    }
}

/// <summary>
/// What serving needs to take a PNG for an image classifier (<see cref="TransformSpec.Image"/>): the classes in output
/// order, the sample shape [Channels, Height, Width], the raw pixel range (a served PNG's 0..255 is scaled onto
/// 0..<see cref="PixelMax"/>, the units the scale/normalize step expects) and whether a PNG of another size is resized.
/// </summary>
public sealed record ImageTransform
{
    [JsonPropertyName("classes")]
    public IReadOnlyList<string> Classes { get; init; } = [];

    [JsonPropertyName("channels")]
    public int Channels { get; init; } = 1;

    [JsonPropertyName("height")]
    public int Height { get; init; }

    [JsonPropertyName("width")]
    public int Width { get; init; }

    [JsonPropertyName("pixelMax")]
    public int PixelMax { get; init; } = 255;

    [JsonPropertyName("resize")]
    public bool Resize { get; init; }

    [JsonIgnore]
    public int SampleSize => Channels * Height * Width;

    public IReadOnlyList<string> Problems(int normalizedChannels)
    {
        var problems = new List<string>();
        if (Classes.Count < 2 || Classes.Distinct(StringComparer.Ordinal).Count() != Classes.Count)
            problems.Add($"it needs at least two distinct class names, got {Classes.Count}");
        if (Channels is not (1 or 3) || Height < 1 || Width < 1)
            problems.Add($"its shape must be 1 or 3 channels of positive height and width, got [{Channels}, {Height}, {Width}]");
        if (normalizedChannels != 1 && normalizedChannels != Channels)
            problems.Add($"it has {Channels} channels but the normalization has {normalizedChannels}");
        if (PixelMax is < 1 or > 255)
            problems.Add($"pixelMax must be 1..255, got {PixelMax}");
        return problems;
    }
}
