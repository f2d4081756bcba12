namespace MlFunctions.Api.Pipelines;

/// <summary>
/// Settings of the MNIST pipeline's triggers (section <c>Pipelines:Mnist</c>), read by both hosts. In the
/// Functions app the blob trigger's path and the timer's schedule are binding attributes, so there the
/// container is fixed at <see cref="PipelineTriggers.DefaultUploadsContainer"/> and the schedule is read by
/// the host from <c>%Pipelines:Mnist:Schedule%</c>; the other settings apply to both hosts.
/// </summary>
public sealed class PipelineTriggerOptions
{
    public const string Section = "Pipelines:Mnist";

    /// <summary>
    /// CRON of scheduled retraining, in the Functions timer's NCRONTAB form with seconds
    /// (<c>{second} {minute} {hour} {day} {month} {day-of-week}</c>, e.g. <c>0 0 3 * * 0</c> = Sundays 03:00 UTC);
    /// the 5-field form without seconds is accepted too. Empty = no scheduled retraining.
    /// </summary>
    public string? Schedule { get; set; }

    /// <summary>
    /// Folders (on the disk of the host that runs the activities) a scheduled run registers, as
    /// <see cref="Core.Datasets.RegisterDatasetInput.SourceDirectories"/>. Empty = the latest complete upload batch.
    /// </summary>
    public List<string> DataDirectories { get; set; } = [];

    /// <summary>Local host: poll the uploads container for new batches (Azurite has no Event Grid to push them).</summary>
    public bool WatchUploads { get; set; } = true;

    /// <summary>Local host: seconds between two polls of the uploads container.</summary>
    public double PollSeconds { get; set; } = 10;

    /// <summary>
    /// Container that upload batches land in. Not <c>datasets</c>: registration copies every version there,
    /// so a watcher on it would fire on the pipeline's own copies and start a run per run.
    /// </summary>
    public string UploadsContainer { get; set; } = PipelineTriggers.DefaultUploadsContainer;
}
