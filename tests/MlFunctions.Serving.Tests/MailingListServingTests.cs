using System.Text;
using MlFunctions.Activities.Datasets.Mail;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Datasets.Mail;
using MlFunctions.Core.Transforms;
using MlFunctions.Serving.Protocol;
using MlFunctions.Tests.Infrastructure;

namespace MlFunctions.Serving.Tests;

/// <summary>
/// #12's serving contract on a real archive: a text model served on the raw RFC 5322 message (the <c>message</c>
/// input) scores exactly as the same message's table row does offline, and as its named fields sent as BYTES.
/// </summary>
public sealed class MailingListServingTests
{
    private static readonly string Archive = Path.Combine(RepoPaths.SharedDatasets, "mailing-list", "asterix-dev-201709-mailarchivesao.mbox");

    private static InferTensor Bytes(string name, params string[] values) => new(name, Datatype.BYTES, [values.Length], values);

    [Fact]
    public async Task A_raw_message_scores_as_its_archived_row_offline()
    {
        var (table, _) = MailingListTable.Build([CsvSource.FromFile(Archive)]);
        var (features, label, problems) = table.Schema(MailingListTable.Columns);
        Assert.Empty(problems);
        var transform = TabularTransform.Fit(table, features, label, Enumerable.Range(0, table.Rows.Count).ToList(),
            new TabularTransformOptions { Text = new TextOptions { Buckets = 512, StripQuoted = true, Flags = true } });
        var onnx = OnnxModels.Mlp(transform.FeatureCount, 8, 2, seed: 5);
        var artifacts = new MemoryArtifactStore();
        var uri = artifacts.Put("memory://mailing-list.onnx", onnx);
        await using var scorer = await ModelScorer.LoadAsync(artifacts, new OrtSessionFactory([new CpuExecutionProvider()], 1), uri, OnnxModels.Sha256(onnx), TransformSpec.ForTable(transform));

        var raw = MboxReader.RawMessages(await File.ReadAllBytesAsync(Archive));
        var columns = features.Select(f => f.Name).ToList();
        var compared = 0;
        foreach (var row in table.Rows)
        {
            // The row's message in the archive (CsvRecord.Line is the 1-based message index); a JSON string carries
            // UTF-8, so a message with other 8-bit bytes is not sent as text here.
            var chunk = raw[row.Line - 1];
            string text;
            try
            {
                text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(chunk.Span);
            }
            catch (DecoderFallbackException)
            {
                continue;
            }

            var values = columns.Select(c => row.Values[table.Header.ToList().IndexOf(c)]).ToArray();
            var offline = new float[transform.FeatureCount];
            transform.Encode(values, offline);
            var direct = OnnxModels.RunDirect(onnx, "input", offline, [1, offline.Length], "output");

            var byFields = await Logits(scorer, columns.Select((c, i) => Bytes(c, values[i])).ToList());
            var byMessage = await Logits(scorer, [Bytes(MailFields.Message, text), Bytes(MailingListTable.PostedBefore, values[columns.IndexOf(MailingListTable.PostedBefore)])]);
            Assert.Equal(byFields, byMessage);
            Assert.Equal(direct, byMessage);
            compared++;
        }

        Assert.True(compared >= 10, $"only {compared} of {table.Rows.Count} messages compared");
        Console.WriteLine($"{compared} of {table.Rows.Count} archived thread starts scored identically from raw text, named fields and offline");
    }

    [Fact]
    public async Task A_raw_message_without_history_or_date_is_imputed_and_a_bad_one_is_a_400()
    {
        var (table, _) = MailingListTable.Build([CsvSource.FromFile(Archive)]);
        var (features, label, _) = table.Schema(MailingListTable.Columns);
        var transform = TabularTransform.Fit(table, features, label, Enumerable.Range(0, table.Rows.Count).ToList(), new TabularTransformOptions { Text = new TextOptions { Buckets = 64, Flags = true } });
        var onnx = OnnxModels.Mlp(transform.FeatureCount, 4, 2, seed: 2);
        var artifacts = new MemoryArtifactStore();
        var uri = artifacts.Put("memory://m.onnx", onnx);
        await using var scorer = await ModelScorer.LoadAsync(artifacts, new OrtSessionFactory([new CpuExecutionProvider()], 1), uri, OnnxModels.Sha256(onnx), TransformSpec.ForTable(transform));

        // No Date header and no posted_before: hour, weekday and posted_before are missing values, as empty fields are.
        var message = "From: Ann <ann@example.org>\nSubject: How do I configure the feed?\nMessage-ID: <q1@example.org>\n\nIs there a setting for it?\n";
        var byMessage = await Logits(scorer, [Bytes(MailFields.Message, message)]);
        var byFields = await Logits(scorer, [Bytes("subject", "How do I configure the feed?"), Bytes("body", "Is there a setting for it?\n"), Bytes("list", "request"), Bytes("hour", ""), Bytes("weekday", ""), Bytes("posted_before", "")]);
        Assert.Equal(byFields, byMessage);

        var bad = await Assert.ThrowsAsync<InferenceError>(() => scorer.PredictAsync(new InferRequest { Inputs = [Bytes(MailFields.Message, "   ")] }));
        Assert.Contains("not a usable mail message", bad.Message, StringComparison.Ordinal);
        var numeric = await Assert.ThrowsAsync<InferenceError>(() => scorer.PredictAsync(new InferRequest { Inputs = [new InferTensor(MailFields.Message, Datatype.FP32, [1], new[] { 1f })] }));
        Assert.Contains("send it as BYTES", numeric.Message, StringComparison.Ordinal);
    }

    private static async Task<float[]> Logits(ModelScorer scorer, IReadOnlyList<InferTensor> inputs)
    {
        var outputs = await scorer.PredictAsync(new InferRequest { Inputs = inputs });
        return (float[])outputs.First(o => o.Name == "output").Data;
    }
}
