namespace MlFunctions.Core.Sweeps;

/// <summary>The sweep algorithms by the name a sweep spec uses (case-insensitive).</summary>
public static class SuggestionAlgorithms
{
    // The algorithms hold no state (each answer is a function of its request), so one instance each serves every sweep.
    private static readonly ISuggestionAlgorithm[] All =
    [
        new GridSearch(),
        new RandomSearch(),
        new SobolSearch(),
        new TpeSearch(),
        new GaussianProcessSearch(),
        new CmaEsSearch(),
        new HyperbandSearch(),
        new PbtSearch(),
        new AutoSearch(),
    ];

    public static IReadOnlyList<string> Names { get; } = All.Select(a => a.Name).ToArray();

    public static bool TryGet(string? name, out ISuggestionAlgorithm algorithm)
    {
        algorithm = All.FirstOrDefault(a => string.Equals(a.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase))!;
        return algorithm is not null;
    }

    public static ISuggestionAlgorithm Get(string? name) =>
        TryGet(name, out var algorithm)
            ? algorithm
            : throw new ArgumentException($"Unknown sweep algorithm '{name}'. Known algorithms: {string.Join(", ", Names)}.", nameof(name));
}
