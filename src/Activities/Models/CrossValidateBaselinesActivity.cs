using MlFunctions.Activities.Datasets;
using MlFunctions.Activities.Storage;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Training;

namespace MlFunctions.Activities.Models;

/// <summary>
/// The baselines a binary classifier is reported beside, on the same cross-validation folds as the model's
/// (train+val of the prepared data, in the worker's order, cut by <see cref="CrossValidationFold.Assign"/>): the
/// majority class and a plain logistic regression (<see cref="ClassificationBaselines"/>) on the prepared features
/// the model sees, restricted to the TF-IDF term slots when the table has text columns (the book's "logistic
/// regression on TF-IDF"; flags, length, hour, list and sender history are the model's extra). Read-only and
/// deterministic, so retries and the step cache are harmless.
/// </summary>
public sealed class CrossValidateBaselinesActivity(IStorageClients storage) : IActivity<CrossValidateBaselinesInput, CrossValidateBaselinesResult>
{
    public async Task<CrossValidateBaselinesResult> RunAsync(CrossValidateBaselinesInput input, ActivityCall call)
    {
        var ct = call.Cancellation;
        if (input.Folds is < 2 or > 20)
            throw new ArgumentException($"CrossValidateBaselines: folds must be between 2 and 20, got {input.Folds}");
        var reader = new PreparedDatasetReader(await storage.BlobsAsync(ct));
        var manifest = await reader.ReadManifestAsync(input.Data, ct);
        if (manifest.NumClasses != 2)
            throw new InvalidOperationException($"the baselines are for two classes; {input.Data.Prefix} has {manifest.NumClasses}");
        if (manifest.Transform.Tabular is not { } table)
            throw new InvalidOperationException($"the baselines need tabular or text data; {input.Data.Prefix} has a '{manifest.Transform.Kind}' transform");

        // Train then val, as the worker merges them for its folds.
        var parts = new List<PreparedShard> { await reader.ReadSplitAsync(input.Data, manifest, "train", ct) };
        if (manifest.Splits.Any(s => s.Name == "val" && s.Count > 0))
            parts.Add(await reader.ReadSplitAsync(input.Data, manifest, "val", ct));
        var width = table.FeatureCount;
        var features = parts.SelectMany(p => p.FloatFeatures ?? throw new InvalidDataException($"prepared split of {input.Data.Prefix} has no float features")).ToArray();
        var labels = parts.SelectMany(p => p.Labels).ToArray();
        if (labels.Length < input.Folds)
            throw new InvalidOperationException($"{labels.Length} train+val rows cannot make {input.Folds} folds");
        var folds = new CrossValidationFold(0, input.Folds).Assign(labels);

        var (columns, description) = TermSlots(table);
        var perFold = ClassificationBaselines.CrossValidate(features, width, labels, folds, columns);
        return new CrossValidateBaselinesResult(input.Folds, labels.Length, description, perFold, ClassificationBaselines.Metrics(perFold));
    }

    /// <summary>The feature indices of every text column's term slots (not its flags); every feature when there is no text column.</summary>
    public static (IReadOnlyList<int> Columns, string Description) TermSlots(Core.Transforms.TabularTransform table)
    {
        var columns = new List<int>();
        var names = new List<string>();
        var offset = 0;
        foreach (var c in table.Columns)
        {
            if (c.Text is { } text)
            {
                columns.AddRange(Enumerable.Range(offset, text.TermSlots));
                names.Add($"{c.Name} ({text.TermSlots} TF-IDF slots)");
            }

            offset += c.Width;
        }

        return columns.Count > 0
            ? (columns, $"TF-IDF of {string.Join(", ", names)}")
            : (Enumerable.Range(0, table.FeatureCount).ToList(), $"all {table.FeatureCount} encoded features (no text column)");
    }
}
