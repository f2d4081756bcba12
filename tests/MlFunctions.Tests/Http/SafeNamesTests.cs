using MlFunctions.Core;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Registry;
using Xunit;

namespace MlFunctions.Tests.Http;

/// <summary>The one rule per kind of name (SafeNames), and that the older entry points answer by it.</summary>
public sealed class SafeNamesTests
{
    [Theory]
    [InlineData("mnist", true)]
    [InlineData("loans-2025_v1.2", true)]
    [InlineData("0day", true)]
    [InlineData("Mnist", false)] // folder names are lower-case
    [InlineData("-mnist", false)]
    [InlineData("a/b", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void FolderNames(string? name, bool ok)
    {
        Assert.Equal(ok, SafeNames.IsFolderName(name));
        Assert.Equal(ok, DatasetLayout.IsValidName(name));
    }

    [Fact]
    public void FolderNamesStopAt63Characters()
    {
        Assert.True(SafeNames.IsFolderName(new string('a', 63)));
        Assert.False(SafeNames.IsFolderName(new string('a', 64)));
    }

    [Theory]
    [InlineData("mnist", true)]
    [InlineData("Loans.Model_v2", true)]
    [InlineData(".hidden", false)]
    [InlineData("-x", false)]
    [InlineData("mnist@champion", false)] // '@' is the reference separator
    [InlineData("a/b", false)]
    [InlineData("", false)]
    public void ModelAndAliasNames(string name, bool ok)
    {
        Assert.Equal(ok, SafeNames.IsModelName(name));
        Assert.Equal(ok, RegistryNames.IsValid(name));
    }

    [Theory]
    [InlineData("mnist-20261203-sweep-t001", true)]
    [InlineData("loans-s-hourly-20250301050000", true)]
    [InlineData("Run With Spaces", true)]
    [InlineData("../x", false)]
    [InlineData("a/b", false)]
    [InlineData("a\\b", false)]
    [InlineData("a#b", false)]
    [InlineData("a?b", false)]
    [InlineData("a\nb", false)]
    [InlineData("   ", false)]
    public void Ids(string id, bool ok) => Assert.Equal(ok, SafeNames.IsId(id));

    [Fact]
    public void IdsStopAtTheirLimit()
    {
        Assert.True(SafeNames.IsId(new string('r', SafeNames.MaxIdLength)));
        Assert.False(SafeNames.IsId(new string('r', SafeNames.MaxIdLength + 1)));
    }
}
