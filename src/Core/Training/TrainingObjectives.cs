namespace MlFunctions.Core.Training;

/// <summary>
/// What a training job optimizes and how it is scored: the task (which decides the batch shape and the held-out
/// metrics) and its loss. Shared by the orchestration (which names it in the job and the prepared manifest), the
/// worker (which trains with it) and the metrics in <see cref="Metrics"/>. Versioned by name: a new task or loss is a
/// new constant; an empty value means the default, so jobs and manifests written before objectives existed
/// (MNIST, tabular classification) keep their meaning, cross-entropy classification.
/// </summary>
public static class TrainingObjectives
{
    /// <summary>Samples with an int class label; logits out; cross-entropy; accuracy (the only task before objectives).</summary>
    public const string Classification = "classification";

    /// <summary>(user, item, weight) interactions; a score per (user, item); HR@k and NDCG@k over the full catalogue.</summary>
    public const string Ranking = "ranking";

    /// <summary>
    /// A numeric table label (spec <c>"task": "regression"</c>): the target is standardized on the train split
    /// (<see cref="Transforms.TargetScaling"/>) and stored after the encoded features, each sample [F + 1]; the model
    /// maps [n, F] to one value [n, 1]; MSE on the standardized target; RMSE (primary for the gate, lower is better),
    /// MAE and R² in the label's units (<see cref="Metrics.RegressionMetrics"/>). Serving un-standardizes the output.
    /// </summary>
    public const string Regression = "regression";

    /// <summary>
    /// Image-to-image denoising: float samples [2, H, W] (channel 0 the noisy input, channel 1 the clean target, e.g.
    /// low- and full-dose CT in HU × 1e-3, <see cref="Imaging.CtDenoiseSamples"/>); the model maps [n, 1, H, W] to a
    /// denoised [n, 1, H, W]; MSE; PSNR (primary), SSIM and RMSE through <see cref="Imaging.CtEvaluation"/>.
    /// </summary>
    public const string Denoise = "denoise";

    public const string CrossEntropy = "cross_entropy";
    public const string BinaryCrossEntropy = "bce";
    public const string MeanSquaredError = "mse";
    public const string Bpr = "bpr";

    /// <summary>Binary cross-entropy of each observed (user, item) against <see cref="HyperParameters.Negatives"/> sampled unobserved items.</summary>
    public const string SampledBce = "sampled_bce";

    /// <summary>The task of a job: the job's own, else the prepared data's, else classification.</summary>
    public static string Resolve(string? job, string? prepared) =>
        Normalize(string.IsNullOrWhiteSpace(job) ? prepared : job);

    public static string Normalize(string? task) => string.IsNullOrWhiteSpace(task) ? Classification : task.Trim().ToLowerInvariant();

    /// <summary>Losses each task trains with; the first is its default.</summary>
    public static IReadOnlyList<string> LossesOf(string task) => Normalize(task) switch
    {
        Classification => [CrossEntropy, BinaryCrossEntropy],
        Ranking => [Bpr, SampledBce, MeanSquaredError],
        Regression => [MeanSquaredError],
        Denoise => [MeanSquaredError],
        var other => throw new ArgumentException($"Unknown training task '{other}': use {Classification}, {Regression}, {Ranking} or {Denoise}."),
    };

    /// <summary>The loss a job trains with: its hyperparameter, or the task's default. Throws for a loss the task cannot use.</summary>
    public static string LossFor(string task, string? loss)
    {
        var allowed = LossesOf(task);
        if (string.IsNullOrWhiteSpace(loss))
        {
            return allowed[0];
        }

        var l = loss.Trim().ToLowerInvariant();
        return allowed.Contains(l)
            ? l
            : throw new ArgumentException($"loss '{loss}' does not fit the {Normalize(task)} task: use {string.Join(", ", allowed)}.");
    }
}
