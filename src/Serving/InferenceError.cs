namespace MlFunctions.Serving;

/// <summary>What went wrong, independent of transport; adapters map it to a status code.</summary>
public enum InferenceErrorKind
{
    /// <summary>The request is malformed or does not match the model signature (HTTP 400).</summary>
    InvalidInput,
    /// <summary>Unknown model, version or alias (HTTP 404).</summary>
    NotFound,
    /// <summary>The body exceeds the configured limit (HTTP 413).</summary>
    PayloadTooLarge,
    /// <summary>The request clashes with what already happened, e.g. a second feedback for one request (HTTP 409).</summary>
    Conflict,
    /// <summary>Too late: e.g. feedback after its window, or for a policy that was replaced (HTTP 410).</summary>
    Gone,
    /// <summary>The model is loading, failed to load, or the server is shutting down (HTTP 503).</summary>
    NotReady,
    /// <summary>The model itself failed while running valid input (HTTP 500).</summary>
    Internal,
}

/// <summary>A typed inference failure (kserve's InvalidInput / ModelNotFound / ModelNotReady family).</summary>
public sealed class InferenceError(InferenceErrorKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public InferenceErrorKind Kind { get; } = kind;

    /// <summary>The HTTP status both hosts return for this kind.</summary>
    public int StatusCode => Kind switch
    {
        InferenceErrorKind.InvalidInput => 400,
        InferenceErrorKind.NotFound => 404,
        InferenceErrorKind.Conflict => 409,
        InferenceErrorKind.Gone => 410,
        InferenceErrorKind.PayloadTooLarge => 413,
        InferenceErrorKind.NotReady => 503,
        _ => 500,
    };

    public static InferenceError Invalid(string message) => new(InferenceErrorKind.InvalidInput, message);
    public static InferenceError NotFound(string message) => new(InferenceErrorKind.NotFound, message);
    public static InferenceError NotReady(string message, Exception? inner = null) => new(InferenceErrorKind.NotReady, message, inner);
    public static InferenceError Conflict(string message) => new(InferenceErrorKind.Conflict, message);
    public static InferenceError Gone(string message) => new(InferenceErrorKind.Gone, message);
    public static InferenceError TooLarge(long limit) => new(InferenceErrorKind.PayloadTooLarge, $"Request body exceeds the limit of {limit} bytes.");
}
