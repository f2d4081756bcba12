// The training worker. Modes:
//   dotnet MlFunctions.GpuWorker.dll                 consume the training-jobs queue until stopped
//   dotnet MlFunctions.GpuWorker.dll --job-file F    run the job in F once, exit 0 (completed/stopped) or 1 (failed)
//   MLF_TRAINING_JOB='{...}' ... [--single-job]      the same with the job in the environment (Kubernetes Jobs)
// Configuration: AzureWebJobsStorage and Worker:* (appsettings.json, environment Worker__X, or --Worker:X value).
return await MlFunctions.GpuWorker.TrainingWorkerHost.MainAsync(args);
