using MlFunctions.Core.Metrics;
using MlFunctions.Core.Training;

namespace MlFunctions.Core.Pipelines;

/// <summary>
/// Input of <c>CrossValidateBaselines</c>: the prepared data whose train+val is cut into <see cref="Folds"/> stratified
/// folds (<see cref="Training.CrossValidationFold.Assign"/>, the worker's folds).
/// </summary>
public sealed record CrossValidateBaselinesInput(PreparedDataRef Data, int Folds);

/// <summary>The baselines on each fold and as named means and standard deviations (<see cref="ClassificationBaselines.Metrics"/>).</summary>
public sealed record CrossValidateBaselinesResult(int Folds, int Samples, string LogRegFeatures, IReadOnlyList<BaselineFold> PerFold, IReadOnlyDictionary<string, double> Metrics);
