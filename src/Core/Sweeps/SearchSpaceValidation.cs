using System.Globalization;

namespace MlFunctions.Core.Sweeps;

/// <summary>
/// Checks a search space before a sweep starts, so a user sees every mistake in one answer instead of one
/// per submission.
/// </summary>
public static class SearchSpaceValidation
{
    public static IReadOnlyList<string> Validate(SearchSpace? space)
    {
        var problems = new List<string>();
        if (space?.Parameters is null || space.Parameters.Count == 0)
        {
            problems.Add("The search space has no parameters.");
            return problems;
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < space.Parameters.Count; i++)
        {
            var p = space.Parameters[i];
            if (p is null)
            {
                problems.Add($"Parameter #{i + 1} is null.");
                continue;
            }

            var label = string.IsNullOrWhiteSpace(p.Name) ? $"Parameter #{i + 1}" : $"Parameter '{p.Name}'";
            if (string.IsNullOrWhiteSpace(p.Name))
            {
                problems.Add($"Parameter #{i + 1} has an empty name.");
            }
            else if (!seen.Add(p.Name))
            {
                problems.Add($"Parameter name '{p.Name}' is used more than once.");
            }

            if (p.Kind == ParameterKind.Categorical)
            {
                ValidateCategorical(p, label, problems);
            }
            else
            {
                ValidateNumeric(p, label, problems);
            }
        }

        return problems;
    }

    private static void ValidateCategorical(ParameterSpec p, string label, List<string> problems)
    {
        if (p.Values is null || p.Values.Count == 0)
        {
            problems.Add($"{label} is categorical but has no values.");
            return;
        }

        var values = new HashSet<string>(StringComparer.Ordinal);
        foreach (var value in p.Values)
        {
            if (value is null)
            {
                problems.Add($"{label} has a null categorical value.");
            }
            else if (!values.Add(value))
            {
                problems.Add($"{label} lists the value '{value}' more than once.");
            }
        }
    }

    private static void ValidateNumeric(ParameterSpec p, string label, List<string> problems)
    {
        if (p.Min is null)
        {
            problems.Add($"{label} has no min.");
        }

        if (p.Max is null)
        {
            problems.Add($"{label} has no max.");
        }

        if (p.Min is { } min && !double.IsFinite(min))
        {
            problems.Add($"{label} has a min that is not a finite number.");
        }

        if (p.Max is { } max && !double.IsFinite(max))
        {
            problems.Add($"{label} has a max that is not a finite number.");
        }

        if (p.Kind == ParameterKind.Int)
        {
            if (p.Min is { } imin && double.IsFinite(imin) && imin != Math.Floor(imin))
            {
                problems.Add($"{label} is an int but its min {Fmt(imin)} is not integral.");
            }

            if (p.Max is { } imax && double.IsFinite(imax) && imax != Math.Floor(imax))
            {
                problems.Add($"{label} is an int but its max {Fmt(imax)} is not integral.");
            }

            if (p.Step is { } istep && double.IsFinite(istep) && istep != Math.Floor(istep))
            {
                problems.Add($"{label} is an int but its step {Fmt(istep)} is not integral.");
            }
        }

        if (p.Min is { } lo && p.Max is { } hi && double.IsFinite(lo) && double.IsFinite(hi))
        {
            if (lo > hi)
            {
                problems.Add($"{label} has min {Fmt(lo)} greater than max {Fmt(hi)}.");
            }

            if (p.Scale == ParameterScale.Log && lo <= 0)
            {
                problems.Add($"{label} is log-scaled, so its min must be > 0 (it is {Fmt(lo)}).");
            }

            if (p.Scale == ParameterScale.Log && hi <= 0)
            {
                problems.Add($"{label} is log-scaled, so its max must be > 0 (it is {Fmt(hi)}).");
            }

            if (p.Step is { } step)
            {
                if (!double.IsFinite(step) || step <= 0)
                {
                    problems.Add($"{label} has step {Fmt(step)}; a step must be > 0.");
                }
                else if (lo <= hi && step > hi - lo && hi > lo)
                {
                    problems.Add($"{label} has step {Fmt(step)} larger than its range {Fmt(hi - lo)}.");
                }
            }
        }
        else if (p.Step is { } step && (!double.IsFinite(step) || step <= 0))
        {
            problems.Add($"{label} has step {Fmt(step)}; a step must be > 0.");
        }

        if (p.Values is { Count: > 0 })
        {
            problems.Add($"{label} is {p.Kind.ToString().ToLowerInvariant()} but lists categorical values.");
        }
    }

    private static string Fmt(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
