using Microsoft.ML.OnnxRuntime;
using MlFunctions.Core.Registry;
using MlFunctions.Serving.Protocol;

namespace MlFunctions.Serving;

/// <summary>
/// A session's inputs and outputs as V2 tensor metadata (datatype names, -1 for a dynamic dimension): what
/// model metadata reports and what the pipeline records as a registry signature, read one way for both.
/// </summary>
public static class OnnxSignature
{
    /// <summary>One input or output; <see cref="NotSupportedException"/> when it cannot cross the V2 protocol.</summary>
    public static TensorMetadata Describe(string name, NodeMetadata meta, string what)
    {
        if (!meta.IsTensor)
            throw new NotSupportedException($"Model {what} '{name}' is a {meta.OnnxValueType}, not a tensor: it cannot be served over V2.");
        var datatype = Datatype.FromOnnx(meta.ElementDataType)
            ?? throw new NotSupportedException($"Model {what} '{name}' has element type {meta.ElementDataType}, which this server does not carry.");
        return new TensorMetadata(name, datatype, meta.Dimensions.Select(d => (long)d).ToArray());
    }

    public static IReadOnlyList<TensorMetadata> Inputs(InferenceSession session) =>
        session.InputNames.Select(n => Describe(n, session.InputMetadata[n], "input")).ToList();

    public static IReadOnlyList<TensorMetadata> Outputs(InferenceSession session) =>
        session.OutputNames.Select(n => Describe(n, session.OutputMetadata[n], "output")).ToList();

    /// <summary>The registry form of the session's signature.</summary>
    public static ModelSignature Read(InferenceSession session) => new(
        Inputs(session).Select(t => new TensorSignature(t.Name, t.Datatype, t.Shape)).ToList(),
        Outputs(session).Select(t => new TensorSignature(t.Name, t.Datatype, t.Shape)).ToList());
}
