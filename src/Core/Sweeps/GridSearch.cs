namespace MlFunctions.Core.Sweeps;

/// <summary>
/// Grid search: the Cartesian product of every parameter's grid values (a numeric parameter's step, else
/// <c>gridPoints</c> evenly spaced points in its scale; a categorical's every value), suggested in a fixed
/// order (first parameter slowest), skipping points already in the history.
/// </summary>
public sealed class GridSearch : ISuggestionAlgorithm
{
    public const int DefaultGridPoints = 5;

    /// <summary>A grid larger than this is a mistake in the space (a tiny step), not a sweep anyone will run.</summary>
    public const long MaxGridSize = 1_000_000;

    public string Name => "grid";

    public bool AdaptsToResults => false;

    public IReadOnlyList<string> ValidateSettings(SearchSpace space, IReadOnlyDictionary<string, string>? settings)
    {
        var reader = new SettingsReader(settings, "gridPoints").RejectUnknown(Name);
        var points = reader.Int("gridPoints", DefaultGridPoints, 2, 1000);
        if (SearchSpaceValidation.Validate(space).Count == 0)
        {
            var size = GridSize(space, points);
            if (size > MaxGridSize)
            {
                reader.Problems.Add($"The grid has {size} points, more than the {MaxGridSize} a grid sweep allows; use a larger step or fewer gridPoints.");
            }
        }

        return reader.Problems;
    }

    public SuggestionResult Suggest(SuggestionRequest request)
    {
        var points = new SettingsReader(request.Settings).Int("gridPoints", DefaultGridPoints, 2, 1000);
        var axes = request.Space.Parameters.Select(p => UnitSpace.GridValues(p, points)).ToArray();
        var total = GridSize(request.Space, points);
        if (total > MaxGridSize)
        {
            throw new InvalidOperationException($"The grid has {total} points, more than {MaxGridSize}.");
        }

        var tried = new HashSet<string>(StringComparer.Ordinal);
        foreach (var trial in request.History)
        {
            if (UnitSpace.CanonicalKey(request.Space, trial.Parameters) is { } key)
            {
                tried.Add(key);
            }
        }

        var suggestions = new List<Suggestion>();
        var remaining = 0L;
        for (long index = 0; index < total; index++)
        {
            var set = PointAt(request.Space, axes, index);
            var key = UnitSpace.CanonicalKey(request.Space, set)!;
            if (tried.Contains(key))
            {
                continue;
            }

            if (suggestions.Count < request.Count)
            {
                suggestions.Add(new Suggestion(set));
                tried.Add(key);
            }
            else
            {
                remaining++;
                break;
            }
        }

        // Exhausted once nothing is left after this batch: the caller need not ask again.
        return new SuggestionResult(suggestions, remaining == 0);
    }

    public static long GridSize(SearchSpace space, int pointsPerNumeric)
    {
        long size = 1;
        foreach (var p in space.Parameters)
        {
            size *= UnitSpace.GridValues(p, pointsPerNumeric).Count;
            if (size > MaxGridSize * 1000)
            {
                return size;
            }
        }

        return size;
    }

    private static ParameterSet PointAt(SearchSpace space, IReadOnlyList<string>[] axes, long index)
    {
        var set = new ParameterSet();
        for (var i = axes.Length - 1; i >= 0; i--)
        {
            var n = axes[i].Count;
            set[space.Parameters[i].Name] = axes[i][(int)(index % n)];
            index /= n;
        }

        return set;
    }
}

/// <summary>Random search: every parameter uniform in its scale (log-uniform on a log scale), seeded.</summary>
public sealed class RandomSearch : ISuggestionAlgorithm
{
    public string Name => "random";

    public bool AdaptsToResults => false;

    public IReadOnlyList<string> ValidateSettings(SearchSpace space, IReadOnlyDictionary<string, string>? settings) =>
        new SettingsReader(settings).RejectUnknown(Name).Problems;

    public SuggestionResult Suggest(SuggestionRequest request)
    {
        var random = SweepRandom.Create(request.Seed, request.History.Count, Name);
        var suggestions = new List<Suggestion>(request.Count);
        for (var i = 0; i < request.Count; i++)
        {
            suggestions.Add(new Suggestion(UnitSpace.ToParameterSet(request.Space, random.NextUnitVector(request.Space.Parameters.Count))));
        }

        return new SuggestionResult(suggestions, false);
    }
}
