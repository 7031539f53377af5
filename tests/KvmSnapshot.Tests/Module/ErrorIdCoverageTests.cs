using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Reflection;
using System.Text.RegularExpressions;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Offline;
using KvmSnapshot.QemuImg;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Module;

/// <summary>
/// Every ErrorId scripts are told about is one the module really produces: each constant of ErrorIds is in
/// about_KvmSnapshot's table (and the table names nothing else), and each is provoked by at least one test. The
/// ids no other test provoked are provoked here, for real.
/// </summary>
public sealed class ErrorIdCoverageTests
{
    private static readonly string[] Ids = typeof(ErrorIds).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!).OrderBy(i => i, StringComparer.Ordinal).ToArray();

    [Fact]
    public void EveryErrorIdIsDocumentedAndTheTableNamesNoOther()
    {
        var about = File.ReadAllText(Repo.PathOf("docs", "help", "about_KvmSnapshot.help.md"));
        var table = Regex.Match(about, @"ErrorId\s+Category\s+Meaning\s*\n-+[ -]+\n(?<rows>.*?)```", RegexOptions.Singleline).Groups["rows"].Value;
        var documented = Regex.Matches(table, @"^([A-Z][A-Za-z0-9]+)\s", RegexOptions.Multiline).Select(m => m.Groups[1].Value).OrderBy(i => i, StringComparer.Ordinal).ToArray();
        Assert.Equal(Ids, documented);
    }

    [Fact]
    public void EveryErrorIdIsProducedByTheModule()
    {
        var sources = Directory.EnumerateFiles(Repo.PathOf("src", "KvmSnapshot"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal)
                && !f.EndsWith("ErrorIds.cs", StringComparison.Ordinal))
            .Select(File.ReadAllText).ToList();
        var unused = Ids.Where(id => !sources.Any(s => Regex.IsMatch(s, $@"ErrorIds\.{id}\b"))).ToList();
        Assert.True(unused.Count == 0, "documented but never produced: " + string.Join(", ", unused));
    }

    [Fact]
    public void EveryErrorIdIsProvokedByATest()
    {
        // The table test maps codes without provoking anything; this file's own name list does not count either.
        var tests = Directory.EnumerateFiles(Repo.PathOf("tests"), "*.*", SearchOption.AllDirectories)
            .Where(f => (f.EndsWith(".cs", StringComparison.Ordinal) || f.EndsWith(".Tests.ps1", StringComparison.Ordinal))
                && !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal)
                && !f.EndsWith("LibvirtErrorTableTests.cs", StringComparison.Ordinal))
            .Select(File.ReadAllText).ToList();
        var untested = Ids.Where(id => !tests.Any(t => Regex.IsMatch(t, $@"(ErrorIds\.{id}\b|['""]{id}[,'""])"))).ToList();
        Assert.True(untested.Count == 0, "no test provokes: " + string.Join(", ", untested));
    }

    [Fact]
    public void AnImageTheUserMayNotReadIsDiskImageAccessDenied()
    {
        // Mode 0200: sysctl files are the one place where even root is refused reading (EACCES). Read-only here.
        const string path = "/proc/sys/vm/drop_caches";
        using var ps = new PowerShellSession();
        var error = ps.Run("Get-KvmDiskImage -Path $args[0]", path).SingleError();
        Assert.Equal("DiskImageAccessDenied,KvmSnapshot.Cmdlets.GetKvmDiskImageCommand", error.FullyQualifiedErrorId);
        Assert.Equal((ErrorCategory.PermissionDenied, (object)path), (error.CategoryInfo.Category, error.TargetObject));
    }

    [Fact]
    public void AnImageWhoseReadFailsIsDiskImageReadFailed()
    {
        // Reading /proc/self/mem at offset 0 (unmapped) fails with EIO, as a failing disk would.
        const string path = "/proc/self/mem";
        using var ps = new PowerShellSession();
        var error = ps.Run("Get-KvmDiskImage -Path $args[0]", path).SingleError();
        Assert.Equal("DiskImageReadFailed,KvmSnapshot.Cmdlets.GetKvmDiskImageCommand", error.FullyQualifiedErrorId);
        Assert.Equal((ErrorCategory.ReadError, (object)path), (error.CategoryInfo.Category, error.TargetObject));
    }

    [Fact]
    public void OutputThatIsNotQemuImgsJsonIsQemuImgOutputInvalid()
    {
        // A real qemu-img 7.2 always prints valid JSON, so a program that prints something else stands in for a
        // broken or foreign qemu-img (KVMSNAPSHOT_QEMU_IMG may name any program). The Pester suite does the same
        // through the variable and the cmdlet; here it is one engine instance, so parallel tests are not affected.
        using var dir = new TempDirectory("qi");
        Tool.CreateQcow2(dir.File("d.qcow2"), "8M");
        var engine = new OfflineEngine(new QemuImgCommands(new QemuImgRunner("/bin/echo")));
        var e = Assert.Throws<KvmSnapshotException>(() => engine.GetImage(dir.File("d.qcow2"), new RecordingOperationContext()));
        Assert.Equal((ErrorIds.QemuImgOutputInvalid, KvmErrorKind.InvalidResult, (object)dir.File("d.qcow2")), (e.ErrorId, e.Category, e.Target));
        Assert.Contains("/bin/echo", e.Message, StringComparison.Ordinal);
    }
}
