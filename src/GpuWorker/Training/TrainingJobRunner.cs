using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using MlFunctions.Core.Json;
using MlFunctions.Core.Training;
using MlFunctions.GpuWorker.Data;
using MlFunctions.GpuWorker.Models;
using MlFunctions.GpuWorker.Onnx;
using MlFunctions.GpuWorker.Storage;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlFunctions.GpuWorker.Training;

/// <summary>
/// Runs one <see cref="TrainingJob"/> end to end: data, model, epochs with a checkpoint each, progress events and
/// status, the stop marker, ONNX export and parity. Redelivery of a job id resumes from its newest checkpoint; a
/// job already finished re-reports its stored result. Failures throw: the caller (queue consumer or single-job
/// mode) decides between retrying and reporting <see cref="TrainingEvents.Failed"/>.
/// </summary>
public sealed class TrainingJobRunner(JobStore store, CallbackClient callbacks, WorkerOptions options, ILogger logger)
{
    public static string WorkerId { get; } = $"{Environment.MachineName}/{Environment.ProcessId}";

    /// <summary>Throws <see cref="JobValidationException"/> for a job that can never succeed as written.</summary>
    public static void Validate(TrainingJob job)
    {
        if (job.SchemaVersion < 1 || job.SchemaVersion > TrainingJob.CurrentSchemaVersion)
            throw new JobValidationException($"TrainingJob schema version {job.SchemaVersion} is not supported by this worker (1..{TrainingJob.CurrentSchemaVersion}); deploy a newer worker.");
        if (string.IsNullOrWhiteSpace(job.JobId) || job.JobId.Contains("..", StringComparison.Ordinal) || job.JobId.Any(c => char.IsControl(c) || c is '\\' or '?' or '#'))
            throw new JobValidationException($"jobId '{job.JobId}' is empty or not usable as a blob folder name.");
        if (job.Hyperparameters is null)
            throw new JobValidationException("hyperparameters are missing.");
        if (job.Data is null || string.IsNullOrWhiteSpace(job.Data.Container))
            throw new JobValidationException("data (the prepared dataset reference: container, prefix, contentHash) is missing.");
        ModelZoo.Get(job.Model ?? "");
        var hp = job.Hyperparameters;
        if (hp.Epochs is < 1 or > 10_000) throw new JobValidationException($"hyperparameters.epochs must be 1..10000, got {hp.Epochs}.");
        if (hp.BatchSize is < 1 or > 1 << 20) throw new JobValidationException($"hyperparameters.batchSize must be positive, got {hp.BatchSize}.");
        if (!(hp.LearningRate > 0) || !double.IsFinite(hp.LearningRate)) throw new JobValidationException($"hyperparameters.learningRate must be positive, got {hp.LearningRate}.");
        _ = EpochTrainer.LearningRateAt(hp, 1); // an unknown schedule fails the job before any work
        if (!(hp.Dropout >= 0 && hp.Dropout < 1)) throw new JobValidationException($"hyperparameters.dropout must be in [0, 1), got {hp.Dropout}.");
        ImageAugmentation.Validate(hp.Augment, [1, 1, 1]); // the range now; the sample shape once the data is loaded
        if (!(hp.WeightDecay >= 0)) throw new JobValidationException($"hyperparameters.weightDecay must be >= 0, got {hp.WeightDecay}.");
        if (hp.Optimizer?.ToLowerInvariant() is not ("adam" or "sgd")) throw new JobValidationException($"Unknown optimizer '{hp.Optimizer}': use 'adam' or 'sgd' (with momentum).");
        if (hp.MaxTrainSamples < 0) throw new JobValidationException($"hyperparameters.maxTrainSamples must be >= 0, got {hp.MaxTrainSamples}.");
        if (hp.Negatives is < 1 or > 1000) throw new JobValidationException($"hyperparameters.negatives must be 1..1000, got {hp.Negatives}.");
        if (hp.TopK < 1) throw new JobValidationException($"hyperparameters.topK must be positive, got {hp.TopK}.");
        if (!string.IsNullOrWhiteSpace(job.Objective))
        {
            // The task named in the job is checked now; one taken from the prepared data is checked once it is read.
            try
            {
                TrainingObjectives.LossFor(job.Objective, hp.Loss);
            }
            catch (ArgumentException e)
            {
                throw new JobValidationException(e.Message);
            }

            ModelZoo.Get(job.Model ?? "", job.Objective);
        }
    }

    public async Task<TrainingResult> RunAsync(TrainingJob job, CancellationToken cancellation)
    {
        Validate(job);
        await store.EnsureContainersAsync(cancellation);
        await using var events = new EventPump(callbacks, job.CallbackUri);

        var previous = await store.ReadStatusAsync(job.JobId, cancellation);
        if (previous is { Result: { } done } && previous.State is TrainingJobStates.Completed or TrainingJobStates.Stopped)
        {
            // Redelivered after it finished (e.g. the message delete was lost): report again, do not retrain.
            logger.LogInformation("Job {JobId} already {State}; re-reporting its result", job.JobId, previous.State);
            await Journal(job, "job-already-finished", null, cancellation);
            await events.SendFinalAsync(Event(job, previous.State == TrainingJobStates.Completed ? TrainingEvents.Completed : TrainingEvents.Stopped) with { Result = done });
            return done;
        }

        TorchRuntime.ConfigureThreads(options.Threads);
        var device = TorchRuntime.SelectDevice(options.Device);
        var deviceName = TorchRuntime.Name(device);
        var hp = job.Hyperparameters;
        var definition = ModelZoo.Get(job.Model);

        var progress = new Progress();
        using var heartbeatStop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var heartbeat = HeartbeatLoopAsync(job, events, progress, heartbeatStop.Token);
        try
        {
            await Journal(job, "job-start", null, cancellation);
            var data = await PreparedDataReader.ReadAsync(store.Blobs, job.Data, cancellation);
            // Merged only when used: a denoiser's train patches and held-out slices differ in size and cannot merge.
            PreparedSplit TrainPlusVal() => PreparedSplit.Merge("train+val", new[] { data.Splits["train"], data.Split("val") }.OfType<PreparedSplit>().ToArray());
            var trainSplit = job.TrainOnValidation ? TrainPlusVal() : data.Splits["train"];

            // Held-out data: val while tuning; test when val is trained on; the fold under cross-validation.
            // Without any, train (reported as such).
            var evalSplit = (job.TrainOnValidation ? data.Split("test") : data.Split("val") ?? data.Split("test")) ?? trainSplit;
            if (job.Fold is { } fold)
            {
                (trainSplit, evalSplit) = TrainPlusVal().Fold(fold);
            }

            var paritySplit = data.Split("test") ?? data.Split("val") ?? trainSplit;
            var task = TrainingObjectives.Resolve(job.Objective, data.Objective);
            definition = ModelZoo.Get(job.Model, task);
            using var objective = TrainingObjective.Create(task, data, trainSplit, evalSplit, paritySplit, hp, device);

            manual_seed(hp.Seed);
            using var model = definition.BuildModule(hp, objective.Inputs);
            model.to(device);
            using var optimizer = EpochTrainer.CreateOptimizer(model, objective.OptimizerSettings(hp));
            var parameterCount = EpochTrainer.ParameterCount(model);

            var history = new List<EpochMetrics>();
            Uri? checkpointUri = null;
            var checkpoint = await store.LoadNewestCheckpointAsync(job.JobId, cancellation);
            if (checkpoint is not null)
            {
                EnsureCompatible(job, checkpoint.Info);
                using (var ms = new MemoryStream(checkpoint.ModelState))
                    model.load(ms);
                using (var reader = new BinaryReader(new MemoryStream(checkpoint.OptimizerState)))
                    optimizer.load_state_dict(reader);
                history.AddRange(checkpoint.Info.History.Where(h => h.Epoch <= checkpoint.Info.Epoch));
                checkpointUri = checkpoint.Uri;
                logger.LogInformation("Job {JobId}: resuming after epoch {Epoch} from {Checkpoint}", job.JobId, checkpoint.Info.Epoch, checkpoint.Uri);
                await Journal(job, "resume", checkpoint.Info.Epoch, cancellation);

                // A worker killed between committing a checkpoint and journaling it leaves that epoch without its
                // epoch-end line: record it now, so the journal lists every finished epoch exactly once.
                var journal = await store.ReadJournalAsync(job.JobId, cancellation);
                var entries = journal.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                    .Select(l => JsonSerializer.Deserialize<JournalEntry>(l, MlJson.Options))
                    .ToList();
                var ended = entries.Where(e => e?.Entry == "epoch-end").Select(e => e!.Epoch).ToHashSet();

                // A warm-started job (PBT) took its first epochs from its parent; it journals only its own.
                var inherited = entries.Where(e => e?.Entry == "warm-start").Select(e => e!.Epoch ?? 0).DefaultIfEmpty(0).Max();
                for (var finished = inherited + 1; finished <= checkpoint.Info.Epoch; finished++)
                {
                    if (!ended.Contains(finished))
                        await Journal(job, "epoch-end", finished, cancellation, "journaled on resume: the checkpoint was committed by a worker that stopped before journaling it");
                }
            }
            else if (job.WarmStartFrom is { } parent)
            {
                history.AddRange(await WarmStartAsync(job, parent, model, optimizer, cancellation));
            }

            var samples = objective.TrainSamples;
            progress.Total = samples;
            await WriteStatus(job, TrainingJobStates.Running, history, deviceName, null, null, cancellation);

            var stopped = false;
            for (var epoch = history.Count + 1; epoch <= hp.Epochs; epoch++)
            {
                if (await store.StopRequestedAsync(job.JobId, cancellation))
                {
                    stopped = true;
                    break;
                }

                progress.Epoch = epoch;
                await Journal(job, "epoch-start", epoch, cancellation);
                var e = epoch;
                EpochTrainer.SetLearningRate(optimizer, EpochTrainer.LearningRateAt(hp, epoch));
                var (trainLoss, seconds) = await Task.Run(
                    () => objective.TrainEpoch(model, optimizer, hp, e, s => progress.Done = s, cancellation),
                    cancellation);
                var evaluation = await Task.Run(() => objective.Evaluate(model), cancellation);
                var (valLoss, valAccuracy) = (evaluation.Loss, evaluation.Primary);
                var metrics = new EpochMetrics(epoch, trainLoss, valLoss, valAccuracy, samples / Math.Max(seconds, 1e-9), seconds, evaluation.Metrics);
                history.Add(metrics);

                // Once the checkpoint is committed, its journal line and status follow even during shutdown.
                checkpointUri = await SaveCheckpointAsync(job, model, optimizer, history, deviceName, cancellation);
                await Journal(job, "epoch-end", epoch, CancellationToken.None);
                await WriteStatus(job, TrainingJobStates.Running, history, deviceName, null, null, CancellationToken.None);
                events.Post(Event(job, TrainingEvents.Progress) with { Metrics = metrics });
                logger.LogInformation(
                    "Job {JobId} epoch {Epoch}/{Epochs}: train loss {TrainLoss:F4}, val loss {ValLoss:F4}, {ValPrimary}, {Rate:F0} samples/s on {Device}",
                    job.JobId, epoch, hp.Epochs, trainLoss, valLoss, DescribePrimary(objective.Task, valAccuracy), metrics.SamplesPerSecond, deviceName);
            }

            var result = new TrainingResult
            {
                JobId = job.JobId,
                Model = job.Model,
                Device = deviceName,
                History = history,
                StoppedEarly = stopped,
                CheckpointUri = checkpointUri?.ToString(),
                Transform = data.Transform,
                ParameterCount = parameterCount,
                Labels = job.Labels,
            };

            if (stopped)
            {
                logger.LogInformation("Job {JobId}: stop requested; stopped early after {Epochs} epochs", job.JobId, history.Count);
                await Journal(job, "job-stopped", history.Count, cancellation);
                await WriteStatus(job, TrainingJobStates.Stopped, history, deviceName, result, "stopped early", cancellation);
                await events.SendFinalAsync(Event(job, TrainingEvents.Stopped) with { Result = result, Error = "stopped early" });
                return result;
            }

            if (job.ExportOnnx)
                result = await ExportAsync(job, definition, model, objective, data, result, cancellation);

            await Journal(job, "job-completed", history.Count, cancellation);
            await WriteStatus(job, TrainingJobStates.Completed, history, deviceName, result, null, cancellation);
            await events.SendFinalAsync(Event(job, TrainingEvents.Completed) with { Result = result });
            return result;
        }
        finally
        {
            await heartbeatStop.CancelAsync();
            await heartbeat;
        }
    }

    /// <summary>Records a failure in the status blob and journal (best effort: storage may be what failed).</summary>
    public async Task RecordFailureAsync(TrainingJob job, string state, string reason)
    {
        try
        {
            await store.EnsureContainersAsync(CancellationToken.None);
            var previous = await store.ReadStatusAsync(job.JobId, CancellationToken.None);
            await store.WriteStatusAsync(
                new TrainingJobStatus
                {
                    JobId = job.JobId,
                    State = state,
                    Attempt = job.Attempt,
                    EpochsDone = previous?.History.Count ?? 0,
                    Epochs = job.Hyperparameters?.Epochs ?? 0,
                    Device = previous?.Device,
                    Worker = WorkerId,
                    History = previous?.History ?? [],
                    Error = reason,
                },
                CancellationToken.None);
            await Journal(job, state == TrainingJobStates.Failed ? "job-failed" : "job-retry", null, CancellationToken.None, reason);
        }
        catch (Exception e)
        {
            logger.LogWarning("Job {JobId}: could not record failure in storage: {Error}", job.JobId, e.Message);
        }
    }

    /// <summary>
    /// The epoch's primary held-out metric as the worker log shows it: a denoiser's is PSNR in dB ("val psnr 44.68 dB";
    /// as a percentage it read "val acc 4,467.85 %"), every other task's an accuracy-like fraction ("val acc 97.12 %").
    /// Invariant culture, as the rest of the log's figures.
    /// </summary>
    public static string DescribePrimary(string task, double value) =>
        TrainingObjectives.Normalize(task) == TrainingObjectives.Denoise
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"val psnr {value:F2} dB")
            : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"val acc {value:P2}");

    private async Task<TrainingResult> ExportAsync(
        TrainingJob job, IModelDefinition definition, nn.Module<Tensor, Tensor> model, ITrainingObjective objective, PreparedDataset data, TrainingResult result, CancellationToken cancellation)
    {
        model.eval();
        var graph = definition.ExportModule(model, objective.Inputs);
        var onnx = OnnxExporter.ToModelBytes(graph, data.Classes, job.Model);
        using (var parityX = objective.ParityBatch(options.ParityBatchSize))
        {
            var parity = OnnxParityCheck.Run(onnx, model, parityX, objective.ParityArgmax);
            if (!(parity.MaxAbsLogitDiff <= objective.ParityLimit) || !parity.ArgmaxIdentical)
            {
                throw new OnnxExportException(
                    $"ONNX parity failed on {parity.BatchSize} held-out samples: max |Δlogit| {parity.MaxAbsLogitDiff:G3} (limit {objective.ParityLimit:G1}), argmax identical {parity.ArgmaxIdentical}; the exporter's mapping of model '{job.Model}' does not compute the trained network.");
            }

            var uri = await store.UploadOnnxAsync(job.JobId, onnx, BinaryData.FromObjectAsJson(data.Transform, MlJson.Options), cancellation);
            logger.LogInformation("Job {JobId}: exported ONNX ({Bytes} bytes) to {Uri}; parity max |Δlogit| {Diff:G3}", job.JobId, onnx.Length, uri, parity.MaxAbsLogitDiff);
            return result with { OnnxUri = uri.ToString(), OnnxSha256 = JobStore.Sha256(onnx), Parity = parity };
        }
    }

    private async Task<Uri> SaveCheckpointAsync(TrainingJob job, nn.Module model, OptimizerHelper optimizer, List<EpochMetrics> history, string device, CancellationToken cancellation)
    {
        byte[] modelState, optimizerState;
        using (var ms = new MemoryStream())
        {
            model.save(ms);
            modelState = ms.ToArray();
        }

        using (var ms = new MemoryStream())
        {
            using (var writer = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true))
                optimizer.save_state_dict(writer);
            optimizerState = ms.ToArray();
        }

        var epoch = history.Count;
        var folder = JobStore.EpochFolder(job.JobId, epoch);
        var info = new CheckpointInfo
        {
            JobId = job.JobId,
            Model = job.Model,
            Epoch = epoch,
            Seed = job.Hyperparameters.Seed,
            RngScheme = Seeds.Scheme,
            Hyperparameters = job.Hyperparameters,
            History = history.ToArray(),
            Device = device,
            Optimizer = job.Hyperparameters.Optimizer.ToLowerInvariant(),
            ModelBlob = $"{folder}/model.bin",
            ModelSha256 = JobStore.Sha256(modelState),
            OptimizerBlob = $"{folder}/optimizer.bin",
            OptimizerSha256 = JobStore.Sha256(optimizerState),
        };
        return await store.SaveCheckpointAsync(info, modelState, optimizerState, cancellation);
    }

    /// <summary>
    /// PBT's exploit: loads the newest checkpoint of job <paramref name="parent"/> into this job's network and
    /// optimizer (its learning rate is set from this job's hyperparameters at each epoch) and returns the parent's
    /// finished epochs, which this job continues after. Only the model must match: the hyperparameters differ by design.
    /// </summary>
    private async Task<IEnumerable<EpochMetrics>> WarmStartAsync(TrainingJob job, string parent, nn.Module model, OptimizerHelper optimizer, CancellationToken cancellation)
    {
        var donor = await store.LoadNewestCheckpointAsync(parent, cancellation)
            ?? throw new JobValidationException($"warmStartFrom: job {parent} has no checkpoint to start job {job.JobId} from.");
        if (!string.Equals(donor.Info.Model, job.Model, StringComparison.OrdinalIgnoreCase))
            throw new JobValidationException($"warmStartFrom: job {parent} trained model '{donor.Info.Model}', not '{job.Model}'.");
        try
        {
            using (var ms = new MemoryStream(donor.ModelState))
                model.load(ms);
            using (var reader = new BinaryReader(new MemoryStream(donor.OptimizerState)))
                optimizer.load_state_dict(reader);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new JobValidationException($"warmStartFrom: the checkpoint of job {parent} (epoch {donor.Info.Epoch}) does not fit job {job.JobId}'s network or optimizer: {e.Message}. PBT may perturb only hyperparameters that keep the network's shape.");
        }

        logger.LogInformation("Job {JobId}: warm start after epoch {Epoch} from job {Parent} ({Checkpoint})", job.JobId, donor.Info.Epoch, parent, donor.Uri);
        await Journal(job, "warm-start", donor.Info.Epoch, cancellation, $"from {parent}");
        return donor.Info.History.Where(h => h.Epoch <= donor.Info.Epoch).ToArray();
    }

    /// <summary>A checkpoint is only resumed by the same model and hyperparameters (epochs may grow).</summary>
    private static void EnsureCompatible(TrainingJob job, CheckpointInfo info)
    {
        static string Key(HyperParameters hp) => JsonSerializer.Serialize(hp with { Epochs = 0 }, MlJson.Options);
        if (!string.Equals(info.Model, job.Model, StringComparison.OrdinalIgnoreCase) || Key(info.Hyperparameters) != Key(job.Hyperparameters))
        {
            throw new JobValidationException(
                $"job {job.JobId} has a checkpoint (epoch {info.Epoch}) trained as model '{info.Model}' with other hyperparameters; resuming it would mix two runs. Use a new jobId or delete checkpoints/{TrainingStorage.JobFolder(job.JobId)}.");
        }
    }

    private Task WriteStatus(TrainingJob job, string state, List<EpochMetrics> history, string device, TrainingResult? result, string? error, CancellationToken cancellation) =>
        store.WriteStatusAsync(
            new TrainingJobStatus
            {
                JobId = job.JobId,
                State = state,
                Attempt = job.Attempt,
                EpochsDone = history.Count,
                Epochs = job.Hyperparameters.Epochs,
                Device = device,
                Worker = WorkerId,
                History = history.ToArray(),
                Result = result,
                Error = error,
            },
            cancellation);

    private Task Journal(TrainingJob job, string entry, int? epoch, CancellationToken cancellation, string? detail = null) =>
        store.AppendJournalAsync(
            job.JobId,
            new JournalEntry(entry, epoch, job.Attempt, WorkerId, DateTimeOffset.UtcNow, detail),
            cancellation);

    private static TrainingEvent Event(TrainingJob job, string kind) => new() { JobId = job.JobId, Kind = kind, Attempt = job.Attempt };

    private async Task HeartbeatLoopAsync(TrainingJob job, EventPump events, Progress progress, CancellationToken cancellation)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.HeartbeatSeconds));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellation))
            {
                logger.LogDebug("Job {JobId} heartbeat: epoch {Epoch}, {Done}/{Total} samples", job.JobId, progress.Epoch, progress.Done, progress.Total);
                events.Post(Event(job, TrainingEvents.Heartbeat));
            }
        }
        catch (OperationCanceledException)
        {
            // The job ended.
        }
    }

    private sealed class Progress
    {
        public volatile int Epoch;
        public long Done;
        public long Total;
    }

    /// <summary>
    /// Delivers one job's events in order on a background task, so a slow or unreachable callback (retried with
    /// backoff) never stalls training. The final event waits for everything before it.
    /// </summary>
    private sealed class EventPump : IAsyncDisposable
    {
        private readonly Channel<TrainingEvent> queue = Channel.CreateUnbounded<TrainingEvent>(new UnboundedChannelOptions { SingleReader = true });
        private readonly Task pump;

        public EventPump(CallbackClient callbacks, string? callbackUri)
        {
            pump = Task.Run(async () =>
            {
                await foreach (var e in queue.Reader.ReadAllAsync())
                    await callbacks.SendAsync(callbackUri, e);
            });
        }

        public void Post(TrainingEvent e) => queue.Writer.TryWrite(e);

        public async Task SendFinalAsync(TrainingEvent e)
        {
            queue.Writer.TryWrite(e);
            queue.Writer.TryComplete();
            await pump;
        }

        public async ValueTask DisposeAsync()
        {
            queue.Writer.TryComplete();
            await pump;
        }
    }
}

/// <summary>One line of a job's journal blob.</summary>
public sealed record JournalEntry(string Entry, int? Epoch, int Attempt, string Worker, DateTimeOffset At, string? Detail = null);
