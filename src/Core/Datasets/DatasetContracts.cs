using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Core.Datasets;

/// <summary>
/// Input of <c>RegisterDataset</c>. The files come from exactly one kind of source:
/// <list type="bullet">
/// <item><see cref="SourceDirectories"/>: folders on the disk of the host that runs the activity (the local
/// case, e.g. <c>../shared/datasets/mnist-train</c>). Relative paths resolve against the host's
/// <c>Datasets:Root</c> setting, else its working directory. Several folders merge into one dataset (MNIST
/// train parts + the t10k test set); file names must be unique across them.</item>
/// <item><see cref="SourceContainer"/> + <see cref="SourcePrefix"/>: blobs already in the storage account
/// (e.g. uploaded by a person or a blob trigger), the case for Azure, where the host has no dataset disk.</item>
/// </list>
/// Either way the files are hashed, and copied into <c>datasets/{name}/{version}/</c> only when that
/// content is new.
/// </summary>
public sealed record RegisterDatasetInput
{
    public required string Name { get; init; }

    public IReadOnlyList<string> SourceDirectories { get; init; } = [];

    public string? SourceContainer { get; init; }

    public string? SourcePrefix { get; init; }

    /// <summary>
    /// Several folders of <see cref="SourceContainer"/> merged into one dataset, in place of <see cref="SourcePrefix"/>
    /// (an upload trigger's batches so far, #13); file names must be unique across them.
    /// </summary>
    public IReadOnlyList<string> SourcePrefixes { get; init; } = [];

    /// <summary>File name patterns (<c>*</c>, <c>?</c>) to include; empty = every file (not recursive).</summary>
    public IReadOnlyList<string> Include { get; init; } = [];

    /// <summary>Files in subfolders too, named by their '/'-separated path under the source (CT: <c>{subject}/{slice}_low.png</c>).</summary>
    public bool Recursive { get; init; }

    /// <summary>CT (#14): the files are simulated (<see cref="Imaging.CtSimulator"/>) instead of read; the sources must be empty.</summary>
    public Imaging.CtSimulationSpec? SimulateCt { get; init; }
}

public sealed record RegisterDatasetResult(DatasetRef Dataset, bool AlreadyRegistered, int FilesUploaded, IReadOnlyList<DatasetFile> Files);

/// <summary>Input of <c>ValidateDataset</c>; null rules check only what needs no expectations (readable, non-empty, finite).</summary>
public sealed record ValidateDatasetInput(DatasetRef Dataset, DatasetValidationRules? Rules = null);

/// <summary>Input of <c>TransformDataset</c>: the registered (and validated) dataset and how to prepare it.</summary>
public sealed record TransformDatasetInput(DatasetRef Dataset, PreparationRecipe Recipe);

/// <summary>What <c>TransformDataset</c> produced: <see cref="Data"/> goes into <see cref="TrainingJob.Data"/>.</summary>
public sealed record TransformDatasetResult(
    PreparedDataRef Data,
    TransformSpec Transform,
    IReadOnlyList<PreparedSplit> Splits,
    bool AlreadyPrepared);
