using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>Every offline cmdlet in a pipeline, under -WhatIf, with -Verbose and progress, through the hosted engine.</summary>
public sealed class OfflineCmdletTests
{
    [Fact]
    public void StoreScanFeedsWhereObjectAndTestChain()
    {
        using var tmp = new TempDirectory("scan");
        using var ps = new PowerShellSession();
        OfflineWalkTests.BuildSeedStore(ps, tmp.Path);

        var deep = ps.Run("Get-KvmSnapshotChain -Directory $args[0] | Where-Object Depth -gt 3", tmp.Path).AssertNoErrors().All<SnapshotChain>().ToList();
        var only = Assert.Single(deep);
        Assert.Equal("sn4.qcow2", only.Active.Name);
        Assert.Equal(6, only.Depth);

        var all = ps.Run("Get-KvmSnapshotChain -Directory $args[0]", tmp.Path).AssertNoErrors().All<SnapshotChain>().ToList();
        Assert.Equal(new[] { "centos1.qcow2", "sn4.qcow2" }, all.Select(c => c.Active.Name).OrderBy(n => n).ToArray());
        var baseLayer = all.Single(c => c.Active.Name == "sn4.qcow2").Base;
        Assert.Equal(new[] { "centos1.qcow2", "centos2.qcow2" }, baseLayer.ReferencedBy.Select(Path.GetFileName).OrderBy(n => n).ToArray());

        var verdicts = ps.Run("Get-KvmSnapshotChain -Directory $args[0] | Test-KvmSnapshotChain", tmp.Path).AssertNoErrors().All<SnapshotChainTestResult>().ToList();
        Assert.Equal(2, verdicts.Count);
        Assert.All(verdicts, v => Assert.True(v.Passed, string.Join("; ", v.Problems)));
        Assert.All(verdicts, v => Assert.Contains(v.Problems, p => p.Kind == ChainProblemKind.SharedBase));
        Assert.True(ps.Run("Test-KvmSnapshotChain -Path $args[0] -Quiet", Path.Combine(tmp.Path, "sn4.qcow2")).AssertNoErrors().Single<bool>());
    }

    [Fact]
    public void DiskImagesBindFromStringsAndObjects()
    {
        using var tmp = new TempDirectory("img");
        using var ps = new PowerShellSession();
        ps.Run("New-KvmDiskImage -Path $args[0] -Size 32MB", tmp.File("a.qcow2")).AssertNoErrors();
        ps.Run("New-KvmDiskImage -Path $args[0] -BackingFile (Get-KvmDiskImage $args[1])", tmp.File("b.qcow2"), tmp.File("a.qcow2")).AssertNoErrors();

        var images = ps.Run("$f = [IO.Directory]::GetFiles($args[0]); [Array]::Sort($f); $f | Get-KvmDiskImage", tmp.Path).AssertNoErrors();
        var list = images.All<DiskImage>().ToList();
        Assert.Equal(2, list.Count);
        Assert.Equal("qcow2", list[1].Format);
        Assert.Equal(32L * 1024 * 1024, list[1].VirtualSize);
        Assert.Equal(tmp.File("a.qcow2"), list[1].BackingFileFullPath);
        Assert.Equal("qcow2", list[1].BackingFormat);

        // Chain objects bind by property name into the cmdlets that act on them.
        var viaChain = ps.Run("Get-KvmSnapshotChain -Path $args[0] | Get-KvmDiskImage", tmp.File("b.qcow2")).AssertNoErrors().Single<DiskImage>();
        Assert.Equal(tmp.File("b.qcow2"), viaChain.Path);
    }

    [Fact]
    public void InternalSnapshotNamesTabCompleteRelativeToTheSessionLocation()
    {
        using var tmp = new TempDirectory("tab");
        using var ps = new PowerShellSession();
        Tool.CreateQcow2(tmp.File("disk.qcow2"), "16M");
        ps.Run("New-KvmSnapshot -Path $args[0] -Name 'nightly 1'; New-KvmSnapshot -Path $args[0] -Name weekly", tmp.File("disk.qcow2")).AssertNoErrors();
        var line = "Get-KvmSnapshot -Path ./disk.qcow2 -Name n";
        var matches = ps.Run("$null = $ExecutionContext.SessionState.Path.SetLocation($args[0]); (TabExpansion2 -inputScript $args[1] -cursorColumn $args[1].Length).CompletionMatches.CompletionText",
            tmp.Path, line).AssertNoErrors().All<string>().ToArray();
        Assert.Equal(new[] { "'nightly 1'" }, matches);
    }

    [Fact]
    public void WhatIfChangesNothingAndSaysWhatWouldHappen()
    {
        using var tmp = new TempDirectory("whatif");
        using var ps = new PowerShellSession();
        OfflineWalkTests.BuildSeedStore(ps, tmp.Path);
        ps.Run("New-KvmSnapshot -Path $args[0] -Name keep", tmp.File("centos1.qcow2")).AssertNoErrors();
        var before = Tool.HashTree(tmp.Path);

        ps.Run("New-KvmDiskImage -Path $args[0] -Size 1GB -WhatIf", tmp.File("new.qcow2")).AssertNoErrors();
        ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1] -WhatIf", tmp.File("sn4.qcow2"), tmp.File("flat.qcow2")).AssertNoErrors();
        ps.Run("New-KvmSnapshot -Path $args[0] -Name s2 -WhatIf", tmp.File("centos1.qcow2")).AssertNoErrors();
        ps.Run("Get-KvmSnapshot -Path $args[0] | Restore-KvmSnapshot -WhatIf", tmp.File("centos1.qcow2")).AssertNoErrors();
        ps.Run("Get-KvmSnapshot -Path $args[0] | Remove-KvmSnapshot -WhatIf", tmp.File("centos1.qcow2")).AssertNoErrors();
        ps.Run("Invoke-KvmBlockCommit -Path $args[0] -Top $args[1] -WhatIf", tmp.File("sn4.qcow2"), tmp.File("sn2.qcow2")).AssertNoErrors();
        ps.Run("Invoke-KvmBlockPull -Path $args[0] -WhatIf", tmp.File("sn4.qcow2")).AssertNoErrors();

        Assert.Equal(before, Tool.HashTree(tmp.Path));
        var text = ps.Host.Recorder.Text;
        Assert.Contains("What if: Performing the operation \"Create qcow2 image (it needs up to ", text);
        Assert.Contains("Delete internal snapshot 'keep'", text);
        Assert.Contains("commit sn2.qcow2 down into sn1.qcow2, then point sn3.qcow2 at sn1.qcow2", text);
        Assert.Contains("flatten", text);
    }

    [Fact]
    public void ConfirmNoLeavesTheChainAlone()
    {
        using var tmp = new TempDirectory("confirm");
        using var ps = new PowerShellSession();
        OfflineWalkTests.BuildSeedStore(ps, tmp.Path);
        var before = Tool.HashTree(tmp.Path);
        ps.Host.Recorder.ChoiceAnswer = 2; // "No"
        ps.Run("Invoke-KvmBlockCommit -Path $args[0] -Top $args[1]", tmp.File("sn4.qcow2"), tmp.File("sn3.qcow2")).AssertNoErrors();
        Assert.Single(ps.Host.Recorder.Prompts);
        Assert.Equal(before, Tool.HashTree(tmp.Path));
    }

    [Fact]
    public void ChainLayersFromThePipelineNameTopAndBase()
    {
        using var tmp = new TempDirectory("layers");
        using var ps = new PowerShellSession();
        OfflineWalkTests.BuildSeedStore(ps, tmp.Path);
        var reference = tmp.File("ref.qcow2");
        ps.Run("Convert-KvmDiskImage $args[0] $args[1]", tmp.File("sn4.qcow2"), reference).AssertNoErrors();
        var result = ps.Run(@"
            $chain = Get-KvmSnapshotChain -Path $args[0]
            $top = $chain.Layers | Where-Object Name -eq 'sn3.qcow2'
            $base = $chain.Layers | Where-Object Name -eq 'sn1.qcow2'
            Invoke-KvmBlockCommit -Path $chain.Path -Top $top -Base $base -RemoveMergedLayers -Confirm:$false -Verbose",
            tmp.File("sn4.qcow2")).AssertNoErrors();
        var chain = result.Single<SnapshotChain>();
        Assert.Equal(new[] { "sn4.qcow2", "sn1.qcow2", "centos2.qcow2", "centosbase.qcow2" }, chain.Layers.Select(l => l.Name).ToArray());
        Assert.True(Tool.SameContent(reference, tmp.File("sn4.qcow2")));
        Assert.False(File.Exists(tmp.File("sn3.qcow2")), "-RemoveMergedLayers removes unreferenced merged layers");
        Assert.False(File.Exists(tmp.File("sn2.qcow2")));
        Assert.Contains(result.Verbose, v => v.Contains("qemu-img commit", StringComparison.Ordinal));
        Assert.Contains(result.Verbose, v => v.Contains("qemu-img rebase", StringComparison.Ordinal) && v.Contains("-u", StringComparison.Ordinal));
    }

    [Fact]
    public void CommitIntoASharedBaseNeedsForceAndNamesTheOtherImages()
    {
        using var tmp = new TempDirectory("shared");
        using var ps = new PowerShellSession();
        OfflineWalkTests.BuildSeedStore(ps, tmp.Path);
        var centos1View = tmp.File("c1view.qcow2");
        ps.Run("Convert-KvmDiskImage $args[0] $args[1]", tmp.File("centos1.qcow2"), centos1View).AssertNoErrors();
        var before = Tool.HashTree(tmp.Path);

        var refused = ps.Run("Invoke-KvmBlockCommit -Path $args[0] -Top $args[1] -Base $args[2] -Confirm:$false",
            tmp.File("sn4.qcow2"), tmp.File("centos2.qcow2"), tmp.File("centosbase.qcow2"));
        var error = refused.SingleError();
        Assert.Equal("ChainBaseShared,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand", error.FullyQualifiedErrorId);
        Assert.Contains("centos1.qcow2", error.Exception.Message);
        Assert.Equal(before, Tool.HashTree(tmp.Path));

        var reference = tmp.File("ref.qcow2");
        ps.Run("Convert-KvmDiskImage $args[0] $args[1]", tmp.File("sn4.qcow2"), reference).AssertNoErrors();
        ps.Run("Invoke-KvmBlockCommit -Path $args[0] -Top $args[1] -Base $args[2] -Force -Confirm:$false",
            tmp.File("sn4.qcow2"), tmp.File("centos2.qcow2"), tmp.File("centosbase.qcow2")).AssertNoErrors();
        Assert.True(Tool.SameContent(reference, tmp.File("sn4.qcow2")));
        Assert.False(Tool.SameContent(centos1View, tmp.File("centos1.qcow2")), "forced: centos1 now sees centos2's data in the base");
    }

    [Fact]
    public void LongStepsReportProgressAndComplete()
    {
        using var tmp = new TempDirectory("progress");
        using var ps = new PowerShellSession();
        Tool.CreateQcow2(tmp.File("src.qcow2"), "256M");
        Tool.WritePattern(tmp.File("src.qcow2"), 0x7e, "0", "128M");
        var result = ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1]", tmp.File("src.qcow2"), tmp.File("dst.qcow2")).AssertNoErrors();
        Assert.Contains(result.Progress, p => p.RecordType == ProgressRecordType.Processing && p.PercentComplete >= 0);
        Assert.Equal(ProgressRecordType.Completed, result.Progress[^1].RecordType);
        Assert.True(Tool.SameContent(tmp.File("src.qcow2"), tmp.File("dst.qcow2")));
    }

    [Fact]
    public void CtrlCStopsTheChildAndLeavesTheSourceValid()
    {
        using var tmp = new TempDirectory("stop");
        using var ps = new PowerShellSession();
        Tool.CreateQcow2(tmp.File("big.qcow2"), "2G");
        // Non-zero data everywhere, so a compressed convert takes seconds (about 4 s of CPU for these 512 MiB; Ctrl+C
        // comes at its first progress record, within tens of milliseconds).
        Tool.WritePattern(tmp.File("big.qcow2"), 0x5c, "0", "512M");
        Tool.CreateQcow2(tmp.File("top.qcow2"), null, tmp.File("big.qcow2"));
        var before = Tool.HashTree(tmp.Path);

        var result = ps.RunAndStop("Convert-KvmDiskImage -Path $args[0] -Destination $args[1] -Compress",
            p => p.Streams.Progress.Count > 0, TimeSpan.FromMinutes(3), tmp.File("top.qcow2"), tmp.File("out.qcow2"));
        Assert.IsAssignableFrom<PipelineStoppedException>(result.Terminating);
        Assert.False(Tool.ProcessRunningWith("qemu-img", tmp.File("out.qcow2")), "the qemu-img child outlived Ctrl+C");
        var after = Tool.HashTree(tmp.Path);
        Assert.Equal(before[tmp.File("big.qcow2")], after[tmp.File("big.qcow2")]);
        Assert.Equal(before[tmp.File("top.qcow2")], after[tmp.File("top.qcow2")]);
        Assert.True(ps.Run("Test-KvmSnapshotChain -Path $args[0] -Quiet", tmp.File("top.qcow2")).AssertNoErrors().Single<bool>());
    }
}
