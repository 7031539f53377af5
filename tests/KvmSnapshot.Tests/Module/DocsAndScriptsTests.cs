using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Text.RegularExpressions;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Module;

/// <summary>Help pages exist for every cmdlet and parameter; every PowerShell script in the repo parses.</summary>
public sealed class DocsAndScriptsTests : IClassFixture<DocsAndScriptsTests.BenchmarkArtifacts>
{
    private readonly BenchmarkArtifacts _artifacts;

    public DocsAndScriptsTests(BenchmarkArtifacts artifacts) => _artifacts = artifacts;

    public static IEnumerable<object[]> CmdletNames => ModuleShapeTests.Cmdlets.Select(c => new object[] { c });

    public static IEnumerable<object[]> Scripts =>
        Directory.EnumerateFiles(Repo.Root, "*.ps1", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/output/", StringComparison.Ordinal))
            .Select(f => new object[] { Path.GetRelativePath(Repo.Root, f) });

    [Theory]
    [MemberData(nameof(CmdletNames))]
    public void EveryCmdletHasAPlatyPSPageCoveringEveryParameter(string cmdlet)
    {
        var page = Repo.PathOf("docs", "help", cmdlet + ".md");
        Assert.True(File.Exists(page), $"missing help page {page}");
        var text = File.ReadAllText(page);
        Assert.StartsWith("---", text);
        Assert.Contains("external help file: KvmSnapshot.dll-Help.xml", text);
        Assert.Contains("Module Name: KvmSnapshot", text);
        foreach (var section in new[] { "## SYNOPSIS", "## SYNTAX", "## DESCRIPTION", "## EXAMPLES", "## PARAMETERS", "## INPUTS", "## OUTPUTS" })
        {
            Assert.Contains(section, text);
        }
        Assert.True(Regex.Matches(text, @"^### Example \d+", RegexOptions.Multiline).Count >= 2, $"{cmdlet}: at least two examples");
        Assert.Contains("### CommonParameters", text);

        using var ps = new PowerShellSession();
        var info = ps.Run("Get-Command -Name $args[0]", cmdlet).AssertNoErrors().Single<CmdletInfo>();
        var common = new HashSet<string>(Cmdlet.CommonParameters.Concat(Cmdlet.OptionalCommonParameters), StringComparer.OrdinalIgnoreCase);
        foreach (var parameter in info.Parameters.Keys.Where(p => !common.Contains(p)))
        {
            Assert.True(Regex.IsMatch(text, $@"^### -{parameter}\s*$", RegexOptions.Multiline), $"{cmdlet}: no entry for -{parameter}");
        }
    }

    [Fact]
    public void AboutTopicExists()
    {
        var about = Repo.PathOf("docs", "help", "about_KvmSnapshot.help.md");
        Assert.True(File.Exists(about));
        var text = File.ReadAllText(about);
        Assert.Contains("about_KvmSnapshot", text);
        Assert.Contains("## SHORT DESCRIPTION", text);
        Assert.Contains("## LONG DESCRIPTION", text);
    }

    [Theory]
    [MemberData(nameof(Scripts))]
    public void EveryScriptParses(string relativePath)
    {
        Parser.ParseFile(Repo.PathOf(relativePath), out _, out var errors);
        Assert.True(errors.Length == 0, string.Join(Environment.NewLine, errors.Select(e => $"{relativePath}:{e.Extent.StartLineNumber}: {e.Message}")));
    }

    [Fact]
    public void EveryCmdletHasAPesterTest()
    {
        var pester = Directory.EnumerateFiles(Repo.PathOf("tests", "Pester"), "*.Tests.ps1").Select(File.ReadAllText).ToList();
        Assert.NotEmpty(pester);
        foreach (var cmdlet in ModuleShapeTests.Cmdlets)
        {
            Assert.True(pester.Any(t => t.Contains(cmdlet, StringComparison.Ordinal)), $"no Pester test uses {cmdlet}");
        }
    }

    /// <summary>
    /// The benchmarks reach below the cmdlets (InternalsVisibleTo); nothing else builds them, so a change to the
    /// engines' surface would leave them broken unseen.
    /// </summary>
    [Theory]
    [InlineData("offline/OfflineBenchmark.csproj")]
    [InlineData("live/LiveBenchmark.csproj")]
    [InlineData("snapshots/stages/StagesBenchmark.csproj")]
    public void EveryBenchmarkBuilds(string project)
    {
        var result = Tool.Run("dotnet", "build", Repo.PathOf("benchmarks", project), "-c", "Release", "--nologo", "-v", "quiet", "--artifacts-path", _artifacts.Folder.Path);
        Assert.True(result.ExitCode == 0, $"benchmarks/{project} does not build:\n{result.StdOut}{result.StdErr}");
    }

    /// <summary>
    /// One artifacts folder for the benchmark builds of this class: both benchmarks reference the module's project,
    /// which the second build then finds built (MSBuild's incremental build) instead of compiling it again. Each
    /// benchmark project itself is still restored and compiled from nothing.
    /// </summary>
    public sealed class BenchmarkArtifacts : IDisposable
    {
        public TempDirectory Folder { get; } = new("bench");

        public void Dispose() => Folder.Dispose();
    }
}
