namespace MlFunctions.Core;

/// <summary>
/// The rules for what a user may name, in one place; every route and store checks names through these.
/// Three kinds, because they end up in different places:
/// <list type="bullet">
/// <item><b>folder names</b> (datasets, pipelines): lower-case, because they become blob folders and, for a pipeline,
/// part of upload paths and schedule ids;</item>
/// <item><b>model and alias names</b>: mixed case allowed, '@' and '/' reserved for references (<c>model@alias</c>);</item>
/// <item><b>ids</b> (run, sweep, trial, rollout, request ids): anything printable that cannot leave its folder in a
/// container or break a URL: no '/', '\', "..", '#', '?' or control characters.</item>
/// </list>
/// </summary>
public static class SafeNames
{
    /// <summary>Longest id: Durable Task instance ids may be longer, but ids here are also blob path segments.</summary>
    public const int MaxIdLength = 256;

    /// <summary>1-63 characters of a-z, 0-9, '-', '_', '.', starting with a letter or digit (63: a container name's limit).</summary>
    public static bool IsFolderName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 63 || !(char.IsAsciiLetterLower(name[0]) || char.IsAsciiDigit(name[0])))
            return false;
        foreach (char c in name)
            if (!(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_' or '.'))
                return false;
        return true;
    }

    public const string FolderNameRule = "1-63 characters of a-z, 0-9, '-', '_' or '.', starting with a letter or digit";

    /// <summary>1-128 of [A-Za-z0-9._-], not starting with '.' or '-'.</summary>
    public static bool IsModelName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 128 || name[0] is '.' or '-')
            return false;
        foreach (char c in name)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
                return false;
        return true;
    }

    public const string ModelNameRule = "1-128 characters of letters, digits, '.', '_' or '-', not starting with '.' or '-'";

    /// <summary>1-<see cref="MaxIdLength"/> characters, not blank, without '/', '\', "..", '#', '?' or control characters.</summary>
    public static bool IsId(string? id) =>
        !string.IsNullOrWhiteSpace(id) && id.Length <= MaxIdLength && !id.Contains("..", StringComparison.Ordinal)
        && !id.Any(c => char.IsControl(c) || c is '/' or '\\' or '#' or '?');

    public const string IdRule = "1-256 characters without '/', '\\', '..', '#', '?' or control characters";
}
