namespace MlFunctions.Tests.Infrastructure;

public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>Debug or Release: the configuration this test assembly was built in.</summary>
    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";

    /// <summary>
    /// The shared case-study data: <c>MLF_DATASETS</c>, else ../shared/datasets beside the checkout (where
    /// CI and the developers' machines have it).
    /// </summary>
    public static string SharedDatasets { get; } =
        Environment.GetEnvironmentVariable("MLF_DATASETS") is { Length: > 0 } configured
            ? Path.GetFullPath(configured)
            : Path.GetFullPath(Path.Combine(Root, "..", "shared", "datasets"));

    public static string ProjectOutput(string project, string file) =>
        Path.Combine(Root, "src", project, "bin", Configuration, "net10.0", file);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MlFunctions.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("MlFunctions.sln not found above " + AppContext.BaseDirectory);
    }
}
