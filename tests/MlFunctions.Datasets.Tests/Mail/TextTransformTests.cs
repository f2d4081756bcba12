using MlFunctions.Core.Datasets;
using MlFunctions.Core.Metrics;
using MlFunctions.Core.Training;
using MlFunctions.Core.Transforms;

namespace MlFunctions.Datasets.Tests.Mail;

/// <summary>The text encoding (TF-IDF, quoted-text strip, flags), stratified folds and the cross-validation baselines, as pure functions.</summary>
public sealed class TextTransformTests
{
    private static float[] Encode(TextEncoding e, string? text)
    {
        var v = new float[e.Width];
        e.Encode(text, v);
        return v;
    }

    [Fact]
    public void Tfidf_is_fitted_on_train_only_and_l2_normalized()
    {
        var options = new TextOptions { Mode = TextTermMode.Vocabulary, MinTokenLength = 2 };
        var e = TextEncoding.Fit(["maven build fails", "maven release vote", "maven build passes"], options);

        // Three train documents: "maven" is in all three (idf ln(4/4)+1 = 1), "vote" in one (ln(4/2)+1).
        var maven = e.Vocabulary.ToList().IndexOf("maven");
        var vote = e.Vocabulary.ToList().IndexOf("vote");
        Assert.Equal(1.0, e.Idf[maven], 12);
        Assert.Equal(Math.Log(2) + 1, e.Idf[vote], 12);

        // A word never seen in train goes to the OOV slot; the term part has unit L2 norm.
        var v = Encode(e, "maven vote jenkins");
        Assert.True(v[e.Vocabulary.Count] > 0);
        Assert.Equal(1.0, Math.Sqrt(v.Take(e.TermSlots).Sum(x => (double)x * x)), 6);
        Assert.True(v[vote] > v[maven]);

        // The fit does not see the served text: encoding a new document leaves the idf as it was.
        Assert.Equal(e.Idf, TextEncoding.Fit(["maven build fails", "maven release vote", "maven build passes"], options).Idf);
        Assert.All(Encode(e, ""), x => Assert.Equal(0f, x));
    }

    [Fact]
    public void Hashing_is_stable_and_quoted_text_is_stripped()
    {
        var options = new TextOptions { Buckets = 64, StripQuoted = true };
        var e = TextEncoding.Fit(["a question about plugins", "another thread"], options);

        // FNV-1a, not string.GetHashCode: the same bucket in every process (this value is part of stored transforms).
        Assert.Equal(0xE40C292Cu, TextEncoding.Fnv1a("a"));
        var quoted = "Thanks, that works.\nOn Mon, 6 Nov 2017 at 10:00, Bob <bob@x.org> wrote:\n> have you tried mvn clean?\n> plugins plugins plugins\n";
        Assert.Equal("Thanks, that works.", TextEncoding.Prepare(quoted, stripQuoted: true).Trim());
        Assert.Equal(Encode(e, "Thanks, that works."), Encode(e, quoted));
        var original = "See below\n-----Original Message-----\nFrom: x\nplugins";
        Assert.Equal("See below\n", TextEncoding.Prepare(original, stripQuoted: true));
    }

    [Fact]
    public void Flags_mark_stack_traces_code_questions_links_and_length()
    {
        var e = TextEncoding.Fit(["short", "a somewhat longer train document here"], new TextOptions { Buckets = 16, Flags = true });
        float[] Flags(string text) => Encode(e, text)[e.TermSlots..];
        var java = "Build fails:\njava.lang.NullPointerException: boom\n\tat org.apache.maven.Foo.bar(Foo.java:42)\n";
        var python = "Traceback (most recent call last):\n  File \"x.py\", line 3, in <module>\n";
        Assert.Equal(1f, Flags(java)[0]);
        Assert.Equal(1f, Flags(python)[0]);
        Assert.Equal(0f, Flags("no trace here")[0]);
        Assert.Equal(1f, Flags("```\nmvn install\n```")[1]);
        Assert.Equal(1f, Flags("public class A {\n  int x;\n}")[1]);
        Assert.Equal(0f, Flags("Just prose, nothing else.")[1]);
        Assert.Equal(1f, Flags("does it work?")[2]);
        Assert.Equal(0f, Flags("it works.")[2]);
        Assert.Equal(1f, Flags("see https://issues.apache.org/jira/browse/MNG-1")[3]);
        Assert.Equal(0f, Flags("see the issue")[3]);

        // log(1 + tokens), standardized on the two train documents: longer text, larger value.
        Assert.True(Flags("one two three four five six seven eight nine ten")[4] > Flags("one")[4]);
        Assert.Equal(TextEncoding.FlagNames.Count, e.Width - e.TermSlots);
    }

    [Fact]
    public void Stratified_folds_keep_the_class_balance_and_partition_the_rows()
    {
        // 60 unanswered and 40 answered, the answered last (an archive in time order can be as skewed).
        var labels = Enumerable.Repeat(0, 60).Concat(Enumerable.Repeat(1, 40)).ToArray();
        var folds = new CrossValidationFold(0, 5).Assign(labels);
        for (var f = 0; f < 5; f++)
        {
            Assert.Equal(12, Enumerable.Range(0, 100).Count(i => folds[i] == f && labels[i] == 0));
            Assert.Equal(8, Enumerable.Range(0, 100).Count(i => folds[i] == f && labels[i] == 1));
        }

        // Deterministic (the worker and the baselines step compute it separately) and every row in exactly one fold.
        Assert.Equal(folds, new CrossValidationFold(3, 5).Assign(labels));
        Assert.All(folds, f => Assert.InRange(f, 0, 4));

        // A label with the folds' period: i mod 5 would put every positive in fold 0; the stratified deal spreads them.
        var periodic = Enumerable.Range(0, 50).Select(i => i % 5 == 0 ? 1 : 0).ToArray();
        var spread = new CrossValidationFold(0, 5).Assign(periodic);
        for (var f = 0; f < 5; f++)
            Assert.Equal(2, Enumerable.Range(0, 50).Count(i => spread[i] == f && periodic[i] == 1));
    }

    [Fact]
    public void Baselines_majority_is_half_and_logistic_regression_learns_a_separable_signal()
    {
        // 120 rows, 10 features: feature 0 carries the label (plus noise), the rest is noise.
        var rng = new Random(7);
        var n = 120;
        var width = 10;
        var labels = Enumerable.Range(0, n).Select(i => i % 3 == 0 ? 1 : 0).ToArray();
        var x = new float[n * width];
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j < width; j++)
                x[(i * width) + j] = (float)(rng.NextDouble() - 0.5);
            x[i * width] += labels[i] == 1 ? 1.5f : -1.5f;
        }

        var folds = new CrossValidationFold(0, 5).Assign(labels);
        var all = Enumerable.Range(0, width).ToList();
        var perFold = ClassificationBaselines.CrossValidate(x, width, labels, folds, all);
        Assert.Equal(5, perFold.Count);
        Assert.All(perFold, f => Assert.Equal(0.5, f.MajorityAuc));
        Assert.All(perFold, f => Assert.True(f.LogRegAuc > 0.95, $"fold {f.Fold}: logistic regression AUC {f.LogRegAuc}"));

        // Without the informative column the same regression is near chance: it does not see the labels another way.
        var noise = ClassificationBaselines.CrossValidate(x, width, labels, folds, Enumerable.Range(1, width - 1).ToList());
        Assert.InRange(ClassificationBaselines.MeanStd(noise.Select(f => f.LogRegAuc)).Mean, 0.2, 0.8);

        // 300 gradient steps are converged: 3,000 give the same held-out AUC to 1e-3.
        var longer = ClassificationBaselines.CrossValidate(x, width, labels, folds, all, iterations: 3000);
        for (var f = 0; f < 5; f++)
            Assert.Equal(longer[f].LogRegAuc, perFold[f].LogRegAuc, 3);

        var metrics = ClassificationBaselines.Metrics(perFold);
        Assert.Equal(0.5, metrics["baseline_auc"]);
        Assert.Equal(0, metrics["baseline_auc_std"]);
        Assert.True(metrics["logreg_auc"] > 0.95);
        Console.WriteLine($"logreg_auc {metrics["logreg_auc"]:F4} ± {metrics["logreg_auc_std"]:F4}; noise-only {ClassificationBaselines.MeanStd(noise.Select(f => f.LogRegAuc)).Mean:F4}");
    }
}
