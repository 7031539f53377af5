using System;
using System.IO;
using System.Management.Automation;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>Bad input: a typed ErrorRecord with a stable ErrorId, the target object set, and no file changed.</summary>
public sealed class OfflineErrorTests : IDisposable
{
    private readonly TempDirectory _tmp = new("bad");
    private readonly PowerShellSession _ps = new();

    public OfflineErrorTests()
    {
        Tool.CreateQcow2(_tmp.File("good.qcow2"), "16M");
        Tool.CreateRaw(_tmp.File("disk.raw"));
        Directory.CreateDirectory(_tmp.File("adir"));
        // Truncated: only the first 40 bytes of a real header.
        Tool.CreateQcow2(_tmp.File("full.qcow2"), "16M");
        File.WriteAllBytes(_tmp.File("truncated.qcow2"), File.ReadAllBytes(_tmp.File("full.qcow2"))[..40]);
        File.Delete(_tmp.File("full.qcow2"));
        // Absurd sizes: snapshot count 0xFFFFFFFF at an offset past the end of the file.
        var absurd = File.ReadAllBytes(_tmp.File("good.qcow2"));
        absurd[60] = absurd[61] = absurd[62] = absurd[63] = 0xFF;
        absurd[64] = 0x7F;
        File.WriteAllBytes(_tmp.File("absurd.qcow2"), absurd);
        // A backing loop a -> b -> a (created with -u: qemu-img itself would refuse to open the loop).
        Tool.CreateQcow2(_tmp.File("loop-a.qcow2"), "16M");
        Tool.CreateQcow2(_tmp.File("loop-b.qcow2"), "16M", _tmp.File("loop-a.qcow2"));
        Tool.Run("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", _tmp.File("loop-b.qcow2"), "-F", "qcow2", _tmp.File("loop-a.qcow2")).EnsureSuccess();
        // A json: backing name.
        Tool.CreateQcow2(_tmp.File("json.qcow2"), "16M");
        Tool.Run("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"/etc/passwd\"}}", "-F", "qcow2", _tmp.File("json.qcow2")).EnsureSuccess();
    }

    public void Dispose()
    {
        _ps.Dispose();
        _tmp.Dispose();
    }

    private void AssertError(string script, string errorId, string cmdletClass, ErrorCategory category, params object[] args)
    {
        var before = Tool.HashTree(_tmp.Path);
        var result = _ps.Run(script, args);
        var error = result.SingleError();
        Assert.Equal($"{errorId},KvmSnapshot.Cmdlets.{cmdletClass}", error.FullyQualifiedErrorId);
        Assert.Equal(category, error.CategoryInfo.Category);
        Assert.NotNull(error.TargetObject);
        Assert.IsNotType<KvmSnapshotCmdletTarget>(error.TargetObject);
        Assert.Equal(before, Tool.HashTree(_tmp.Path));
    }

    // Marker type: the target object must be the path/name, never the cmdlet.
    private sealed class KvmSnapshotCmdletTarget { }

    [Fact]
    public void MissingFile() => AssertError("Get-KvmDiskImage -Path $args[0]", "DiskImageNotFound", "GetKvmDiskImageCommand", ErrorCategory.ObjectNotFound, _tmp.File("nope.qcow2"));

    [Fact]
    public void MissingFileForAChain() => AssertError("Get-KvmSnapshotChain -Path $args[0]", "DiskImageNotFound", "GetKvmSnapshotChainCommand", ErrorCategory.ObjectNotFound, _tmp.File("nope.qcow2"));

    [Fact]
    public void ADirectory() => AssertError("Get-KvmSnapshot -Path $args[0]", "DiskImageIsDirectory", "GetKvmSnapshotCommand", ErrorCategory.InvalidArgument, _tmp.File("adir"));

    [Fact]
    public void RawWhereQcow2IsNeeded()
    {
        AssertError("New-KvmSnapshot -Path $args[0] -Name s1", "SnapshotNeedsQcow2", "NewKvmSnapshotCommand", ErrorCategory.InvalidArgument, _tmp.File("disk.raw"));
        var message = _ps.Run("New-KvmSnapshot -Path $args[0] -Name s1", _tmp.File("disk.raw")).Errors[0].Exception.Message;
        Assert.Contains("qcow2", message);
        Assert.Contains("disk.raw", message);
    }

    [Fact]
    public void TruncatedQcow2() => AssertError("Get-KvmSnapshot -Path $args[0]", "DiskImageMalformed", "GetKvmSnapshotCommand", ErrorCategory.InvalidData, _tmp.File("truncated.qcow2"));

    [Fact]
    public void AbsurdHeaderSizes() => AssertError("Get-KvmSnapshot -Path $args[0]", "DiskImageMalformed", "GetKvmSnapshotCommand", ErrorCategory.InvalidData, _tmp.File("absurd.qcow2"));

    [Fact]
    public void BackingLoopIsReportedNotFollowedForever()
    {
        var before = Tool.HashTree(_tmp.Path);
        var chain = _ps.Run("Get-KvmSnapshotChain -Path $args[0]", _tmp.File("loop-a.qcow2")).AssertNoErrors().Single<SnapshotChain>();
        Assert.False(chain.IsComplete);
        Assert.Equal(ChainLayerState.Loop, chain.Base.State);
        var verdict = _ps.Run("Test-KvmSnapshotChain -Path $args[0]", _tmp.File("loop-a.qcow2")).AssertNoErrors().Single<SnapshotChainTestResult>();
        Assert.False(verdict.Passed);
        Assert.Contains(verdict.Problems, p => p.Kind == ChainProblemKind.BackingChainLoop);
        Assert.Equal(before, Tool.HashTree(_tmp.Path));
        AssertError("Invoke-KvmBlockPull -Path $args[0] -Confirm:$false", "BackingChainLoop", "InvokeKvmBlockPullCommand", ErrorCategory.InvalidData, _tmp.File("loop-a.qcow2"));
    }

    [Fact]
    public void JsonBackingNameIsReportedNeverOpened()
    {
        var chain = _ps.Run("Get-KvmSnapshotChain -Path $args[0]", _tmp.File("json.qcow2")).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(ChainLayerState.NotFollowed, chain.Base.State);
        Assert.StartsWith("json:", chain.Base.Path);
        var verdict = _ps.Run("Test-KvmSnapshotChain -Path $args[0]", _tmp.File("json.qcow2")).AssertNoErrors().Single<SnapshotChainTestResult>();
        Assert.Contains(verdict.Problems, p => p.Kind == ChainProblemKind.BackingFileNotFollowed && p.Image.StartsWith("json:", StringComparison.Ordinal));
        AssertError("Invoke-KvmBlockCommit -Path $args[0] -Confirm:$false", "BackingFileNotFollowed", "InvokeKvmBlockCommitCommand", ErrorCategory.InvalidData, _tmp.File("json.qcow2"));
    }

    [Fact]
    public void NamesWithSpacesAndShellMetacharactersAreTakenLiterally()
    {
        // Never a shell: these names are legal files and must work as files, and nothing in them may run.
        var odd = _tmp.File("my disk; touch pwned $(touch pwned2) `x` & | [1].qcow2");
        _ps.Run("New-KvmDiskImage -Path $args[0] -BackingFile $args[1]", odd, _tmp.File("good.qcow2")).AssertNoErrors();
        var chain = _ps.Run("Get-KvmSnapshotChain -Path $args[0]", odd).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { odd, _tmp.File("good.qcow2") }, new[] { chain.Active.Path, chain.Base.Path });
        Assert.False(File.Exists(_tmp.File("pwned")));
        Assert.False(File.Exists("pwned2"));
        // A missing file with such a name: the typed error names it, nothing runs.
        AssertError("Get-KvmDiskImage -Path $args[0]", "DiskImageNotFound", "GetKvmDiskImageCommand", ErrorCategory.ObjectNotFound, _tmp.File("x; rm -rf $HOME.qcow2"));
        // An internal snapshot name qemu cannot take.
        AssertError("New-KvmSnapshot -Path $args[0] -Name $args[1]", "InvalidSnapshotName", "NewKvmSnapshotCommand", ErrorCategory.InvalidArgument, _tmp.File("good.qcow2"), "bad\nname");
    }

    [Fact]
    public void UnknownSnapshotAndExistingDestination()
    {
        AssertError("Restore-KvmSnapshot -Path $args[0] -Name nope -Confirm:$false", "SnapshotNotFound", "RestoreKvmSnapshotCommand", ErrorCategory.ObjectNotFound, _tmp.File("good.qcow2"));
        AssertError("Remove-KvmSnapshot -Path $args[0] -Name nope -Confirm:$false", "SnapshotNotFound", "RemoveKvmSnapshotCommand", ErrorCategory.ObjectNotFound, _tmp.File("good.qcow2"));
        AssertError("Get-KvmSnapshot -Path $args[0] -Name nope", "SnapshotNotFound", "GetKvmSnapshotCommand", ErrorCategory.ObjectNotFound, _tmp.File("good.qcow2"));
        AssertError("New-KvmDiskImage -Path $args[0] -Size 1MB", "DiskImageExists", "NewKvmDiskImageCommand", ErrorCategory.ResourceExists, _tmp.File("good.qcow2"));
        AssertError("Convert-KvmDiskImage -Path $args[0] -Destination $args[1]", "DiskImageExists", "ConvertKvmDiskImageCommand", ErrorCategory.ResourceExists, _tmp.File("disk.raw"), _tmp.File("good.qcow2"));
    }

    [Fact]
    public void TopNotInChainAndBaseAboveTop()
    {
        Tool.CreateQcow2(_tmp.File("mid.qcow2"), null, _tmp.File("good.qcow2"));
        Tool.CreateQcow2(_tmp.File("top.qcow2"), null, _tmp.File("mid.qcow2"));
        AssertError("Invoke-KvmBlockCommit -Path $args[0] -Top $args[1] -Confirm:$false", "ChainLayerNotFound", "InvokeKvmBlockCommitCommand", ErrorCategory.ObjectNotFound, _tmp.File("top.qcow2"), _tmp.File("disk.raw"));
        AssertError("Invoke-KvmBlockCommit -Path $args[0] -Top $args[1] -Base $args[2] -Confirm:$false", "ChainBaseAboveTop", "InvokeKvmBlockCommitCommand", ErrorCategory.InvalidArgument, _tmp.File("top.qcow2"), _tmp.File("mid.qcow2"), _tmp.File("top.qcow2"));
    }
}
