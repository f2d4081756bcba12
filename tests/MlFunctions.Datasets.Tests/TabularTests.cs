using System.Text.Json;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Json;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Datasets.Tests;

/// <summary>The tabular life cycle's pure parts: schema inference, the transform fitted on train only, encoding, metrics, the gate.</summary>
public sealed class TabularTests
{
    private static TabularTable Table(params string[] rows) =>
        TabularTable.FromRows(["id", "age", "city", "label"], rows.Select(r => r.Split(',')));

    [Fact]
    public void Columns_are_inferred_and_the_inference_is_reported()
    {
        var table = Table("1,30,Lyon,yes", "2,,Graz,no", "3,41,Lyon,yes", "4,NA,Porto,no");
        var (features, label, problems) = table.Schema(new TabularColumns { Label = "label", Ignore = ["id"] });
        Assert.Empty(problems);
        Assert.Equal(3, label);
        Assert.Equal([("age", ColumnKind.Numeric), ("city", ColumnKind.Categorical)], features.Select(f => (f.Name, f.Kind)));
        var profile = TabularPreparation.Profile(table, features, label);
        Assert.Equal(["age: numeric (inferred: every value is a number)", "city: categorical (inferred: has non-numeric values)"], profile.Inference);
        Assert.Equal(2, profile.Columns[0].Missing);
        Assert.Equal(2, profile.ClassCounts["yes"]);
    }

    [Fact]
    public void Every_schema_problem_is_reported_at_once()
    {
        var table = Table("1,30,Lyon,yes", "2,x,Graz,yes");
        var (_, _, problems) = table.Schema(new TabularColumns { Label = "label", Numeric = ["age", "height"], Categorical = ["age"] });
        Assert.Contains(problems, p => p.Contains("unknown column 'height'"));
        Assert.Contains(problems, p => p.Contains("'age' is listed in more than one"));
        Assert.Contains(problems, p => p.Contains("a single class"));
        var numeric = Table("1,30,Lyon,yes", "2,x,Graz,no").Schema(new TabularColumns { Label = "label", Numeric = ["age"] }).Problems;
        Assert.Contains("numeric column 'age' has 'x' at rows line 3", Assert.Single(numeric));
    }

    [Fact]
    public void The_transform_is_fitted_on_train_rows_only_and_encodes_unseen_and_missing_values()
    {
        var table = Table("1,10,Lyon,a", "2,20,Lyon,b", "3,30,Graz,a", "4,1000,Porto,b");
        var features = table.Schema(new TabularColumns { Label = "label", Ignore = ["id"] }).Features;

        // Row 3 (age 1000, Porto) is not in train: it moves neither the mean nor the vocabulary.
        var t = TabularTransform.Fit(table, features, 3, [0, 1, 2], new TabularTransformOptions());
        Assert.Equal(20, t.Columns[0].Center, 9);
        Assert.Equal(Math.Sqrt(200.0 / 3), t.Columns[0].Scale, 9);
        Assert.Equal(["Lyon", "Graz"], t.Columns[1].Vocabulary);
        Assert.Equal(["a", "b"], t.Classes);
        Assert.Equal(1 + 3, t.FeatureCount);

        var row = new float[4];
        t.Encode(["30", "Porto"], row);
        Assert.Equal([(float)(10 / Math.Sqrt(200.0 / 3)), 0, 0, 1], row); // Porto → the OOV slot
        t.Encode(["", null], row);
        Assert.Equal([0, 0, 0, 1], row); // missing age → the train mean → 0; missing city → OOV
        Assert.Throws<FormatException>(() => t.Encode(["old", "Lyon"], row));

        var minMax = TabularTransform.Fit(table, features, 3, [0, 1, 2], new TabularTransformOptions { Numeric = NumericScaling.MinMax, Impute = Imputation.Median });
        minMax.Encode(["", "Lyon"], row);
        Assert.Equal(0.5f, row[0]);
    }

    [Fact]
    public void Numeric_labels_are_ordered_as_numbers()
    {
        Assert.Equal(["2", "10", "100"], TabularTransform.ClassesOf(["10", "2", "100", "2"]));
        Assert.Equal(["no", "yes"], TabularTransform.ClassesOf(["yes", "no", " yes "]));
    }

    [Fact]
    public void Preparation_splits_stratified_keeps_raw_rows_and_the_transform_round_trips_as_json()
    {
        var rows = Enumerable.Range(0, 200).Select(i => $"{i},{i % 50},{(i % 3 == 0 ? "Lyon" : "Graz")},{(i % 4 == 0 ? "yes" : "no")}").ToArray();
        var prepared = TabularPreparation.Prepare(Table(rows), new TabularRecipe { Columns = new() { Label = "label", Ignore = ["id"] } }, 0.7, 0.15, 0.15, seed: 3);
        Assert.Equal(200, prepared.Shards.Values.Sum(s => s.Count));
        Assert.Equal([1 + 2 + 1], prepared.Shards["train"].SampleShape); // age, Lyon/Graz one-hot, OOV
        Assert.Equal(prepared.Shards["test"].Count, prepared.Raw["test"].Rows.Count);
        // Stratified: 15% of the 50 "yes" rows (7.5 → 8, banker's rounding) and of the 150 "no" rows (22.5 → 22).
        Assert.Equal(8, prepared.Shards["test"].Labels.Count(l => l == 1));
        Assert.Equal(22, prepared.Shards["test"].Labels.Count(l => l == 0));
        Assert.False(prepared.Raw.ContainsKey("train"));

        var spec = TransformSpec.ForTable(prepared.Transform);
        var back = JsonSerializer.Deserialize<TransformSpec>(JsonSerializer.Serialize(spec, MlJson.Options), MlJson.Options)!;
        back.Validate();
        var a = new float[4];
        var b = new float[4];
        prepared.Transform.Encode(prepared.Raw["test"].Rows[0], a);
        back.Tabular!.Encode(prepared.Raw["test"].Rows[0], b);
        Assert.Equal(a, b);
        Assert.Throws<InvalidOperationException>(() => back.Apply(a));
    }

    [Fact]
    public void Float_shards_round_trip_and_image_shards_keep_format_1()
    {
        var shard = new PreparedShard([2], [1.5f, -2f, 0.25f, 3f], [0, 1]);
        using var buffer = new MemoryStream();
        shard.WriteTo(buffer);
        Assert.Equal(2u, BitConverter.ToUInt32(buffer.ToArray(), 4));
        buffer.Position = 0;
        var back = PreparedShard.ReadFrom(buffer);
        Assert.Equal(shard.FloatFeatures, back.FloatFeatures);
        Assert.Equal([0, 1], back.Labels);
        var taken = ShardOps.Take(back, [1]);
        Assert.Equal([0.25f, 3f], taken.FloatFeatures!);

        using var images = new MemoryStream();
        new PreparedShard([1], [7, 9], [0, 1]).WriteTo(images);
        Assert.Equal(1u, BitConverter.ToUInt32(images.ToArray(), 4));
    }

    [Fact]
    public void Auc_f1_and_accuracy_match_hand_computed_values()
    {
        // Scores for class 1: positives 0.9, 0.4; negatives 0.6, 0.1 → 3 of 4 pairs ordered: AUC 0.75.
        var m = new ClassificationMetrics(2);
        foreach (var (p, label) in new[] { (0.9, 1), (0.4, 1), (0.6, 0), (0.1, 0) })
            m.Add([0f, (float)Math.Log(p / (1 - p))], label);
        Assert.Equal(0.75, m.Auc!.Value, 9);
        Assert.Equal(0.5, m.Accuracy, 9);
        Assert.Equal(0.5, m.MacroF1, 9);
        Assert.Equal(0.5, ClassificationMetrics.RocAuc([(1, true), (1, false)])!.Value);
        Assert.Null(ClassificationMetrics.RocAuc([(1, true)]));
        Assert.Null(new ClassificationMetrics(3).Auc);
    }

    [Fact]
    public void The_gate_promotes_only_a_strict_improvement_and_respects_the_metric_direction()
    {
        Assert.True(GateDecision.Decide("auc", 0.8, null, null, 0, "m").Promote);
        Assert.False(GateDecision.Decide("auc", 0.8, 0.8, 1, 0, "m").Promote);
        Assert.False(GateDecision.Decide("auc", 0.81, 0.8, 1, 0.02, "m").Promote);
        Assert.True(GateDecision.Decide("auc", 0.83, 0.8, 1, 0.02, "m").Promote);
        Assert.True(GateDecision.Decide("loss", 0.2, 0.3, 1, 0, "m").Promote);
        Assert.False(GateDecision.Decide("loss", 0.3, 0.2, 1, 0, "m").Promote);
        Assert.False(GateDecision.Decide("auc", double.NaN, null, null, 0, "m").Promote);
    }

    [Fact]
    public void A_spec_lists_every_problem()
    {
        var problems = new PipelineSpec { Name = "Runs!", Metric = "r2", Dataset = new() { Kind = "audio" }, Split = new(0.5, 0.5, 0.5) }.Problems();
        Assert.Contains(problems, p => p.StartsWith("name must be"));
        Assert.Contains(problems, p => p.StartsWith("dataset.kind"));
        Assert.Contains(problems, p => p.StartsWith("metric must be"));
        Assert.Contains(problems, p => p.StartsWith("split fractions"));
        Assert.Contains(problems, p => p.Contains("sourceDirectories"));
        Assert.Contains(new PipelineSpec { Name = "runs", Dataset = new() { SourceDirectories = ["x"] }, Columns = new() { Label = "y" } }.Problems(), p => p.StartsWith("name must be"));
        Assert.Empty(new PipelineSpec { Name = "churn", Dataset = new() { SourceDirectories = ["x"] }, Columns = new() { Label = "y" } }.Problems());
    }
}
