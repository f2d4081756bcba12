using System.Globalization;
using System.Text.Json;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Datasets.Tests;

/// <summary>Tabular regression's pure parts: the label checks, the train-only target scaling and its round trip, the metrics, the spec's defaults.</summary>
public sealed class RegressionTests
{
    private static readonly TabularColumns Regression = new() { Label = "price", Task = "regression" };

    private static TabularTable Houses(int rows, int seed)
    {
        var rng = new Random(seed);
        return TabularTable.FromRows(["area", "rooms", "town", "price"], Enumerable.Range(0, rows).Select(_ =>
        {
            var area = 40 + (rng.NextDouble() * 100);
            var rooms = rng.Next(1, 6);
            var town = rng.Next(2) == 0 ? "north" : "south";
            var price = (2.5 * area) + (10 * rooms) + (town == "north" ? 30 : 0) + rng.NextDouble();
            return new[] { area.ToString("F2", CultureInfo.InvariantCulture), rooms.ToString(CultureInfo.InvariantCulture), town, price.ToString("F3", CultureInfo.InvariantCulture) };
        }));
    }

    [Fact]
    public void The_target_is_standardized_on_train_only_and_round_trips_in_label_units()
    {
        var table = Houses(200, 3);
        var prepared = TabularPreparation.Prepare(table, new TabularRecipe { Columns = Regression }, 0.7, 0.15, 0.15, 1);
        var target = prepared.Transform.Target!;
        Assert.True(prepared.Transform.IsRegression);
        Assert.Empty(prepared.Transform.Classes);

        // Samples are [features + standardized target]; on train the target has mean 0 and std 1.
        var train = prepared.Shards[PreparedLayout.Train];
        var width = prepared.Transform.FeatureCount;
        Assert.Equal([width + 1], train.SampleShape);
        var z = Enumerable.Range(0, train.Count).Select(i => (double)train.FloatFeatures![(i * (width + 1)) + width]).ToArray();
        Assert.Equal(0, z.Average(), 5);
        Assert.Equal(1, Math.Sqrt(z.Sum(v => v * v) / z.Length), 5);
        Assert.All(train.Labels, l => Assert.Equal(0, l));

        // The scaling is the train rows' alone: the raw test targets do not enter it, and they come back in label units.
        var test = prepared.Raw[PreparedLayout.Test];
        var testShard = prepared.Shards[PreparedLayout.Test];
        Assert.Equal(testShard.Count, test.Targets!.Count);
        for (var i = 0; i < testShard.Count; i++)
        {
            var stored = testShard.FloatFeatures![(i * (width + 1)) + width];
            Assert.Equal(test.Targets[i], target.Unstandardize(stored), 3);
            Assert.Equal(stored, target.Standardize(target.Unstandardize(stored)), 5);
        }

        var all = Enumerable.Range(0, table.Rows.Count).Select(r => TabularTransform.TargetOf(table.Rows[r], 3)).ToList();
        Assert.NotEqual(all.Average(), target.Mean);

        // The scaling travels with the transform JSON (model version, prepared manifest) and validates.
        var spec = TransformSpec.ForTable(prepared.Transform);
        var back = JsonSerializer.Deserialize<TransformSpec>(JsonSerializer.Serialize(spec, MlJson.Options), MlJson.Options)!;
        back.Validate();
        Assert.Equal(target, back.Tabular!.Target);
        Assert.Contains(prepared.Profile.Inference, l => l.StartsWith("price: regression target (numeric;", StringComparison.Ordinal));
    }

    [Fact]
    public void A_regression_label_must_be_numeric_and_not_constant_and_every_problem_is_named()
    {
        var words = TabularTable.FromRows(["x", "price"], [["1", "cheap"], ["2", "10"], ["3", "dear"]]);
        var problems = words.Schema(Regression).Problems;
        Assert.Contains("label column 'price' is not numeric: 'cheap' at rows line 2, rows line 4", Assert.Single(problems));

        var constant = TabularTable.FromRows(["x", "price"], [["1", "5"], ["2", "5.0"], ["3", "5"]]);
        Assert.Contains("is constant", Assert.Single(constant.Schema(Regression).Problems));
        Assert.Throws<InvalidDataException>(() => TargetScaling.Fit([5.0, 5.0]));

        Assert.Contains(new TabularColumns { Label = "y", Task = "clustering" }.Problems(), p => p.Contains("task must be classification or regression"));
    }

    [Fact]
    public void A_classifier_on_a_many_valued_numeric_label_is_told_it_may_be_a_regression()
    {
        var table = Houses(60, 1);
        var (features, label, _) = table.Schema(new TabularColumns { Label = "price" });
        var profile = TabularPreparation.Profile(table, features, label);
        Assert.Contains(profile.Inference, l => l.Contains("set \"task\": \"regression\"", StringComparison.Ordinal));
    }

    [Fact]
    public void Regression_metrics_are_rmse_mae_and_r2_with_lower_error_better()
    {
        var m = new RegressionMetrics();
        m.Add(2, 1);
        m.Add(2, 3);
        m.Add(5, 5);

        // Residuals 1, −1, 0; targets 1, 3, 5 (mean 3, SStot 8).
        Assert.Equal(Math.Sqrt(2.0 / 3), m.Rmse, 12);
        Assert.Equal(2.0 / 3, m.Mae, 12);
        Assert.Equal(1 - (2.0 / 8), m.R2, 12);
        Assert.False(MetricNames.HigherIsBetter(MetricNames.Mae));
        Assert.True(MetricNames.HigherIsBetter(MetricNames.R2));
        Assert.True(GateDecision.Decide(MetricNames.Rmse, 4.0, 5.0, 1, 0.1, "m").Promote);
        Assert.False(GateDecision.Decide(MetricNames.Rmse, 5.0, 4.0, 1, 0, "m").Promote);
    }

    [Fact]
    public void A_regression_spec_defaults_to_rmse_and_a_minimized_val_rmse_sweep()
    {
        var spec = new PipelineSpec
        {
            Name = "houses",
            Dataset = new PipelineDataset { SourceDirectories = ["/data"] },
            Columns = new() { Label = "price" },
            Task = "regression",
        };
        Assert.Empty(spec.Problems());
        Assert.Equal(MetricNames.Rmse, spec.Metric);
        var sweep = spec.SweepSpecFor(new Core.Training.PreparedDataRef("prepared", "p", "h"));
        Assert.Equal("val_rmse", sweep.Objective.Metric);
        Assert.Equal(ObjectiveDirection.Minimize, sweep.Objective.Direction);
        Assert.Equal("regression", spec.Recipe().Tabular!.Columns.Task);
        Assert.Equal("regression", spec.ValidationRules().Table!.Task);

        // A classifier's spec is unchanged: accuracy, a maximized val_accuracy, no task in the recipe (its hash stays).
        var classifier = spec with { Task = null };
        Assert.Equal(MetricNames.Accuracy, classifier.Metric);
        Assert.Equal(ObjectiveDirection.Maximize, classifier.SweepSpecFor(new Core.Training.PreparedDataRef("prepared", "p", "h")).Objective.Direction);
        Assert.DoesNotContain("task", JsonSerializer.Serialize(classifier.Recipe(), MlJson.Options));

        var wrong = spec with { Metric = "accuracy", CrossValidationFolds = 5, Dataset = spec.Dataset with { Kind = DatasetKinds.Text } };
        var problems = wrong.Problems();
        Assert.Contains(problems, p => p.Contains("metric must be one of rmse, mae, r2, loss"));
        Assert.Contains(problems, p => p.Contains("task regression is for dataset.kind \"tabular\""));
        Assert.Contains(problems, p => p.Contains("crossValidationFolds"));
    }
}
