using MlFunctions.Local.Cli;

return await Commands.RunAsync(args);
