using MlFunctions.Activities.Datasets.Mail;
using MlFunctions.Core.Datasets;

namespace MlFunctions.Activities.Datasets;

/// <summary>
/// A registered dataset as one table of named fields: CSV files as they are, mbox archives as one row per labeled
/// thread start (<see cref="MailingListTable"/>). Validation and the transform read tables through here, so both
/// see the same rows; <c>Notes</c> says what the reader did (skipped messages with reasons, the bot filter).
/// </summary>
internal static class DatasetTables
{
    public static (TabularTable Table, IReadOnlyList<string> Notes) Read(RegisteredDataset dataset, TabularColumns columns, int maxRows = 0)
    {
        if (dataset.Manifest.Format == "mbox")
        {
            var (table, report) = MailingListTable.Build(dataset.CsvSources());
            if (maxRows > 0 && table.Rows.Count > maxRows)
                table = TabularTable.FromRecords(table.Header, table.Rows.Take(maxRows).ToList());
            return (table, report.Lines());
        }

        return (TabularTable.Read(dataset.CsvSources(), columns, maxRows), []);
    }
}
