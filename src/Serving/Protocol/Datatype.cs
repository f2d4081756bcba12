using Microsoft.ML.OnnxRuntime.Tensors;

namespace MlFunctions.Serving.Protocol;

/// <summary>
/// The KServe V2 datatypes this server speaks, with their CLR element type and their ONNX Runtime element type.
/// Element arrays are float[], double[], long[], int[], byte[], bool[] and string[] (BYTES, UTF-8).
/// </summary>
public static class Datatype
{
    public const string FP32 = "FP32";
    public const string FP64 = "FP64";
    public const string INT64 = "INT64";
    public const string INT32 = "INT32";
    public const string UINT8 = "UINT8";
    public const string BOOL = "BOOL";
    public const string BYTES = "BYTES";

    public static readonly IReadOnlyList<string> All = [FP32, FP64, INT64, INT32, UINT8, BOOL, BYTES];

    public static bool IsKnown(string? datatype) => datatype is not null && All.Contains(datatype);

    /// <summary>Bytes per element in the binary extension; BYTES is length-prefixed so has none.</summary>
    public static int ElementSize(string datatype) => datatype switch
    {
        FP32 or INT32 => 4,
        FP64 or INT64 => 8,
        UINT8 or BOOL => 1,
        _ => 0,
    };

    public static Type ClrType(string datatype) => datatype switch
    {
        FP32 => typeof(float),
        FP64 => typeof(double),
        INT64 => typeof(long),
        INT32 => typeof(int),
        UINT8 => typeof(byte),
        BOOL => typeof(bool),
        BYTES => typeof(string),
        _ => throw new ArgumentOutOfRangeException(nameof(datatype), datatype, "Unknown datatype."),
    };

    public static Array NewArray(string datatype, int length) => Array.CreateInstance(ClrType(datatype), length);

    /// <summary>The V2 name of an ONNX element type, or null when this server cannot carry it.</summary>
    public static string? FromOnnx(TensorElementType type) => type switch
    {
        TensorElementType.Float => FP32,
        TensorElementType.Double => FP64,
        TensorElementType.Int64 => INT64,
        TensorElementType.Int32 => INT32,
        TensorElementType.UInt8 => UINT8,
        TensorElementType.Bool => BOOL,
        TensorElementType.String => BYTES,
        _ => null,
    };
}
