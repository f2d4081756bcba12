using MlFunctions.Core.Datasets;

namespace MlFunctions.Core.Pipelines;

/// <summary>
/// The spec's <c>images</c> section (<see cref="ImagesRecipe"/>) for dataset.kind "images": PNG folders
/// (<c>{train|test?}/{label}/*.png</c>) or a CSV of pixels (<c>label,p0,p1,…</c>); IDX files need no section.
/// </summary>
public static class PipelineImages
{
    /// <summary>Every problem with the section, prefixed as the HTTP starter's 400 lists them.</summary>
    public static IEnumerable<string> Problems(PipelineSpec spec)
    {
        if (spec.Images is null)
            return [];
        if (spec.Dataset.Kind != DatasetKinds.Images)
            return [$"the images section is for dataset.kind \"images\", not \"{spec.Dataset.Kind}\""];
        var problems = spec.Images.Problems().ToList();
        if (spec.Dataset.TestSource is not null)
            problems.Add("dataset.testSource names an IDX test set; a PNG folder's test set is its test/ folder, and a pixel CSV splits test off");
        return problems;
    }
}
