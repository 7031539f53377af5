using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>The live cmdlets through the hosted engine against the real libvirtd and real QEMU (TCG) domains.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveCmdletTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;

    private static PowerShellSession Session()
    {
        var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        return ps;
    }

    private static string[] Snapshots(TestDomain dom)
        => LibvirtDaemonFixture.Virsh("snapshot-list", dom.Name, "--name").EnsureSuccess().StdOut
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public void DomainDisksFeedChainsAndChainsFeedCommit()
    {
        using var dom = TestDomain.Create("cmd-pipe");
        using var ps = Session();
        var disk = ps.Run("Get-KvmDomainDisk -Domain $args[0] -ConnectionUri $uri", dom.Name).AssertNoErrors().Single<DomainDisk>();
        Assert.Equal(("vda", "file", "disk", "qcow2", dom.File("base.qcow2")), (disk.Disk, disk.Type, disk.Device, disk.Format, disk.Source));
        Assert.Equal(Uri, disk.ConnectionUri);
        var missing = ps.Run("Get-KvmDomainDisk -Domain $args[0] -Disk vdz -ConnectionUri $uri", dom.Name);
        Assert.Empty(missing.Output);
        Assert.Equal("DomainDiskNotFound,KvmSnapshot.Cmdlets.GetKvmDomainDiskCommand", missing.SingleError().FullyQualifiedErrorId);
        Assert.Contains("Its disks are: vda", missing.SingleError().Exception.Message);
        ps.Run("Get-KvmDomainDisk -Domain $args[0] -Disk vdz* -ConnectionUri $uri", dom.Name).AssertNoErrors();

        dom.GuestWrite("vda", 0x51, "0", "1M");
        var s1 = ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -Atomic -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri -Confirm:$false",
            dom.Name, dom.File("s1.qcow2")).AssertNoErrors().Single<DomainSnapshot>();
        Assert.Equal(SnapshotLocation.External, s1.Location);
        dom.GuestWrite("vda", 0x52, TestDomain.Mib(1), "1M");
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s2 -DiskOnly -DiskSpec ('vda,snapshot=external,file=' + $args[1]) -ConnectionUri $uri",
            dom.Name, dom.File("s2.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x53, TestDomain.Mib(2), "1M");
        var reference = dom.SnapshotGuestView("vda", dom.File("ref.raw"));

        var chain = ps.Run("Get-KvmDomainDisk -Domain $args[0] -ConnectionUri $uri | Get-KvmSnapshotChain", dom.Name).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { "s2.qcow2", "s1.qcow2", "base.qcow2" }, chain.Layers.Select(l => l.Name));
        Assert.Equal((dom.Name, "vda"), (chain.Domain, chain.Disk));
        Assert.Equal("base.qcow2 <- s1.qcow2 <- s2.qcow2", chain.ToString());

        // The live chain (Domain, Disk, ConnectionUri) binds into the live parameter set; a layer names -Top.
        var after = ps.Run(@"
            $chain = Get-KvmSnapshotChain -Domain $args[0] -Disk vda -ConnectionUri $uri
            $chain | Invoke-KvmBlockCommit -Top ($chain.Layers | Where-Object Name -eq 's1.qcow2') -Base $chain.Base -Confirm:$false",
            dom.Name).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { "s2.qcow2", "base.qcow2" }, after.Layers.Select(l => l.Name));
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());
        Assert.True(dom.GuestViewEquals("vda", reference));

        // Active commit with -Pivot: s1.qcow2, merged above, still names the base as its backing file, so its
        // content would change: refused, naming it, until -Force.
        var refused = ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Pivot -ConnectionUri $uri -Confirm:$false", dom.Name).SingleError();
        Assert.Equal("ChainBaseShared,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand", refused.FullyQualifiedErrorId);
        Assert.Contains("s1.qcow2", refused.Exception.Message);
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());
        var pivoted = ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Pivot -Force -ConnectionUri $uri -Confirm:$false", dom.Name).AssertNoErrors();
        Assert.Equal(new[] { "base.qcow2" }, pivoted.Single<SnapshotChain>().Layers.Select(l => l.Name));
        Assert.Equal(dom.File("base.qcow2"), dom.ActiveImage());
        Assert.True(dom.GuestViewEquals("vda", reference));
        Assert.Contains(pivoted.Progress, p => p.RecordType == ProgressRecordType.Completed);

        // The snapshots' metadata is stale now: remove it through the pipeline.
        ps.Run("Get-KvmSnapshot -Domain $args[0] -ConnectionUri $uri | Remove-KvmSnapshot -MetadataOnly -Confirm:$false", dom.Name).AssertNoErrors();
        Assert.Empty(Snapshots(dom));
        Assert.True(File.Exists(dom.File("s1.qcow2")) && File.Exists(dom.File("s2.qcow2")), "metadata-only removal keeps the files");
    }

    [Fact]
    public void RemoveMergedLayersDeletesWhatLeftTheChainAndNothingElse()
    {
        using var dom = TestDomain.Create("cmd-rm");
        using var ps = Session();
        // Without metadata: no libvirt snapshot names the overlays, so only the chains decide what may go
        // (overlays a snapshot names are always kept: MergedLayerSafetyTests).
        void Snap(string name)
            => ps.Run("New-KvmSnapshot -Domain $args[0] -Name $args[1] -DiskOnly -NoMetadata -DiskSpec ('vda,file=' + $args[2]) -ConnectionUri $uri",
                dom.Name, name, dom.File(name + ".qcow2")).AssertNoErrors();
        byte pattern = 0x80;
        foreach (var name in new[] { "s1", "s2", "s3" })
        {
            Snap(name);
            dom.GuestWrite("vda", ++pattern, TestDomain.Mib(pattern - 0x80), "1M");
        }
        var reference = dom.SnapshotGuestView("vda", dom.File("ref.raw"));
        var before = Tool.HashTree(dom.Dir);

        // Removal needs the job's end: refused up front with -NoWait, nothing started.
        var refused = ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Top $args[1] -NoWait -RemoveMergedLayers -ConnectionUri $uri -Confirm:$false",
            dom.Name, dom.File("s2.qcow2")).SingleError();
        Assert.Equal("MergedLayersNeedWait,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand", refused.FullyQualifiedErrorId);
        Assert.False(dom.HasBlockJob());
        Assert.Equal(before, Tool.HashTree(dom.Dir));

        // s2 into s1: s2 leaves the chain and goes; nothing else is touched.
        ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Top $args[1] -Base $args[2] -RemoveMergedLayers -ConnectionUri $uri -Confirm:$false",
            dom.Name, dom.File("s2.qcow2"), dom.File("s1.qcow2")).AssertNoErrors();
        Assert.False(File.Exists(dom.File("s2.qcow2")));
        Assert.True(File.Exists(dom.File("s1.qcow2")) && File.Exists(dom.File("s3.qcow2")));
        Assert.True(dom.GuestViewEquals("vda", reference));

        // With s2 gone nothing outside the chain uses s1 or the base: the active commit needs no -Force, and both
        // merged layers (s3, s1) go once the disk has pivoted onto the base.
        var chain = ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Pivot -RemoveMergedLayers -ConnectionUri $uri -Confirm:$false -Verbose",
            dom.Name).AssertNoErrors();
        Assert.Equal(new[] { "base.qcow2" }, chain.Single<SnapshotChain>().Layers.Select(l => l.Name));
        Assert.False(File.Exists(dom.File("s3.qcow2")) || File.Exists(dom.File("s1.qcow2")));
        Assert.Contains(chain.Verbose, v => v.StartsWith("rm ", StringComparison.Ordinal) && v.Contains("s3.qcow2", StringComparison.Ordinal));
        Assert.True(dom.GuestViewEquals("vda", reference));

        // A pull onto the base removes the layer it pulled in; a layer another image still uses is kept and said so.
        Snap("s4");
        dom.GuestWrite("vda", 0x91, TestDomain.Mib(10), "1M");
        Snap("s5");
        dom.GuestWrite("vda", 0x92, TestDomain.Mib(11), "1M");
        Tool.CreateQcow2(dom.File("other.qcow2"), null, dom.File("s4.qcow2"));
        reference = dom.SnapshotGuestView("vda", dom.File("ref2.raw"));
        var pulled = ps.Run("Invoke-KvmBlockPull -Domain $args[0] -Disk vda -Base $args[1] -RemoveMergedLayers -ConnectionUri $uri -Confirm:$false",
            dom.Name, dom.File("base.qcow2")).AssertNoErrors();
        Assert.Equal(new[] { "s5.qcow2", "base.qcow2" }, pulled.Single<SnapshotChain>().Layers.Select(l => l.Name));
        Assert.True(File.Exists(dom.File("s4.qcow2")), "other.qcow2 still uses s4.qcow2");
        Assert.Contains(pulled.Warnings, w => w.Contains("other.qcow2", StringComparison.Ordinal));
        Assert.True(dom.GuestViewEquals("vda", reference));
    }

    [Fact]
    public void InternalSnapshotsCreateListRevertRemove()
    {
        using var dom = TestDomain.Create("cmd-int", persistent: true);
        using var ps = Session();
        dom.GuestWrite("vda", 0x61, "0", "1M");
        var s1 = ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -Description 'before the change' -ConnectionUri $uri", dom.Name).AssertNoErrors().Single<DomainSnapshot>();
        Assert.Equal((SnapshotLocation.Internal, "running", "before the change"), (s1.Location, s1.State, s1.Description));
        dom.GuestWrite("vda", 0x62, "0", "1M");
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s2 -ConnectionUri $uri", dom.Name).AssertNoErrors();

        var all = ps.Run("Get-KvmSnapshot -Domain $args[0] -ConnectionUri $uri", dom.Name).AssertNoErrors().All<DomainSnapshot>().ToList();
        Assert.Equal(new[] { "s1", "s2" }, all.Select(s => s.Name).OrderBy(n => n));
        Assert.Equal("s1", all.Single(s => s.Name == "s2").Parent);
        Assert.Equal(new[] { "s2" }, all.Single(s => s.Name == "s1").Children);
        Assert.Equal("s2", ps.Run("(Get-KvmSnapshot -Domain $args[0] -Current -ConnectionUri $uri).Name", dom.Name).AssertNoErrors().Single<string>());
        Assert.Equal(new[] { "s1" }, ps.Run("Get-KvmSnapshot -Domain $args[0] -Name 's1*' -ConnectionUri $uri", dom.Name).AssertNoErrors().All<DomainSnapshot>().Select(s => s.Name));
        Assert.Contains("<domainsnapshot>", s1.GetXml());
        // The XML is no property unless asked for: -IncludeXml adds it, the object stays a DomainSnapshot.
        Assert.Empty(ps.Run("(Get-KvmSnapshot -Domain $args[0] -Name s1 -ConnectionUri $uri).PSObject.Properties.Match('Xml')", dom.Name).AssertNoErrors().Output);
        var withXml = ps.Run("Get-KvmSnapshot -Domain $args[0] -Name s1 -IncludeXml -ConnectionUri $uri", dom.Name).AssertNoErrors().Output.Single();
        Assert.IsType<DomainSnapshot>(withXml.BaseObject);
        Assert.Equal(s1.GetXml(), withXml.Properties["Xml"].Value);
        Assert.Equal("s2", ps.Run("\"$((Get-KvmSnapshot -Domain $args[0] -Name s1 -ConnectionUri $uri).Children)\"", dom.Name).AssertNoErrors().Single<string>());

        // Revert through the pipeline, leaving it paused: the guest sees s1's data again.
        ps.Run("Get-KvmSnapshot -Domain $args[0] -Name s1 -ConnectionUri $uri | Restore-KvmSnapshot -Paused -Confirm:$false", dom.Name).AssertNoErrors();
        Assert.Equal("paused", dom.State);
        Assert.True(dom.GuestReads("vda", 0x61, "0", "1M"));
        Assert.Equal("s1", ps.Run("(Get-KvmSnapshot -Domain $args[0] -Current -ConnectionUri $uri).Name", dom.Name).AssertNoErrors().Single<string>());
        ps.Run("Restore-KvmSnapshot -Domain $args[0] -Name s2 -Running -Confirm:$false -ConnectionUri $uri", dom.Name).AssertNoErrors();
        Assert.Equal("running", dom.State);
        Assert.True(dom.GuestReads("vda", 0x62, "0", "1M"));

        ps.Run("Remove-KvmSnapshot -Domain $args[0] -Name s1 -Children -Confirm:$false -ConnectionUri $uri", dom.Name).AssertNoErrors();
        Assert.Empty(Snapshots(dom));
        Assert.DoesNotContain("s1", Tool.Run("qemu-img", "snapshot", "-U", "-l", dom.File("base.qcow2")).StdOut.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void WhatIfChangesNothingOnTheDomain()
    {
        using var dom = TestDomain.Create("cmd-whatif");
        using var ps = Session();
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name keep -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("keep.qcow2")).AssertNoErrors();
        var before = (Snapshots(dom), dom.ActiveImage(), Tool.HashTree(dom.Dir));

        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s2 -DiskOnly -ConnectionUri $uri -WhatIf", dom.Name).AssertNoErrors();
        ps.Run("Get-KvmSnapshot -Domain $args[0] -ConnectionUri $uri | Remove-KvmSnapshot -WhatIf", dom.Name).AssertNoErrors();
        ps.Run("Get-KvmSnapshot -Domain $args[0] -ConnectionUri $uri | Restore-KvmSnapshot -WhatIf", dom.Name).AssertNoErrors();
        ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Pivot -ConnectionUri $uri -WhatIf", dom.Name).AssertNoErrors();
        ps.Run("Invoke-KvmBlockPull -Domain $args[0] -Disk vda -ConnectionUri $uri -WhatIf", dom.Name).AssertNoErrors();
        ps.Run("Save-KvmDomainState -Domain $args[0] -Path $args[1] -ConnectionUri $uri -WhatIf", dom.Name, dom.File("state.sav")).AssertNoErrors();

        Assert.Equal(before.Item1, Snapshots(dom));
        Assert.Equal(before.Item2, dom.ActiveImage());
        Assert.Equal("running", dom.State);
        Assert.False(File.Exists(dom.File("state.sav")));
        Assert.Contains($"on target \"{dom.Name}/vda\"", ps.Host.Recorder.Text);
        Assert.Contains("Delete snapshot 'keep'", ps.Host.Recorder.Text);
    }

    [Fact]
    public void NoWaitJobsFlowIntoGetStopAndComplete()
    {
        using var dom = TestDomain.Create("cmd-jobs", disks: dir =>
        {
            Tool.CreateQcow2(dir.File("base.qcow2"), "256M");
            return new[] { new TestDisk("vda", dir.File("base.qcow2")) };
        });
        using var ps = Session();
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s1.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x71, "0", "64M");
        var reference = dom.SnapshotGuestView("vda", dom.File("ref.raw"));

        // A throttled active commit, returned at once, then aborted through the pipeline: nothing changes.
        var job = ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Bandwidth 1MB -NoWait -ConnectionUri $uri -Confirm:$false", dom.Name).AssertNoErrors().Single<BlockJob>();
        Assert.Equal((BlockJobType.ActiveCommit, "vda"), (job.Type, job.Disk));
        var listed = ps.Run("Get-KvmBlockJob -Domain $args[0] -ConnectionUri $uri", dom.Name).AssertNoErrors().Single<BlockJob>();
        Assert.Equal(BlockJobType.ActiveCommit, listed.Type);
        ps.Run("Get-KvmBlockJob -Domain $args[0] -Disk vda -ConnectionUri $uri | Stop-KvmBlockJob -Confirm:$false", dom.Name).AssertNoErrors();
        Assert.False(dom.HasBlockJob());
        Assert.Empty(ps.Run("Get-KvmBlockJob -Domain $args[0] -ConnectionUri $uri", dom.Name).AssertNoErrors().Output);
        Assert.Equal(dom.File("s1.qcow2"), dom.ActiveImage());
        Assert.True(dom.GuestViewEquals("vda", reference));

        // Unthrottled, then pivoted with Complete-KvmBlockJob once ready.
        ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -NoWait -ConnectionUri $uri -Confirm:$false", dom.Name).AssertNoErrors();
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!ps.Run("(Get-KvmBlockJob -Domain $args[0] -Disk vda -ConnectionUri $uri).IsReady", dom.Name).AssertNoErrors().Single<bool>())
        {
            Assert.True(DateTime.UtcNow < deadline, "the active commit never became ready");
            System.Threading.Thread.Sleep(100);
        }
        var chain = ps.Run("Get-KvmBlockJob -Domain $args[0] -ConnectionUri $uri | Complete-KvmBlockJob -PassThru -Confirm:$false", dom.Name).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { "base.qcow2" }, chain.Layers.Select(l => l.Name));
        Assert.Equal(dom.File("base.qcow2"), dom.ActiveImage());
        Assert.True(dom.GuestViewEquals("vda", reference));
    }

    [Fact]
    public void CtrlCDuringAThrottledCommitAbortsTheJob()
    {
        using var dom = TestDomain.Create("cmd-stop", disks: dir =>
        {
            Tool.CreateQcow2(dir.File("base.qcow2"), "256M");
            return new[] { new TestDisk("vda", dir.File("base.qcow2")) };
        });
        using var ps = Session();
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s1.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x72, "0", "32M");
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s2 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s2.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x73, TestDomain.Mib(32), "1M");
        var reference = dom.SnapshotGuestView("vda", dom.File("ref.raw"));
        var files = Directory.GetFiles(dom.Dir).OrderBy(f => f).ToArray();

        var result = ps.RunAndStop("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Top $args[1] -Bandwidth 1MB -ConnectionUri $uri -Confirm:$false",
            p => p.Streams.Progress.Count > 0, TimeSpan.FromMinutes(2), dom.Name, dom.File("s1.qcow2"));
        Assert.IsAssignableFrom<PipelineStoppedException>(result.Terminating);
        Assert.False(dom.HasBlockJob(), "Ctrl+C must abort the block job");
        Assert.Equal("running", dom.State);
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());
        var chain = ps.Run("Get-KvmSnapshotChain -Domain $args[0] -Disk vda -ConnectionUri $uri", dom.Name).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { "s2.qcow2", "s1.qcow2", "base.qcow2" }, chain.Layers.Select(l => l.Name));
        Assert.Equal(files, Directory.GetFiles(dom.Dir).OrderBy(f => f).ToArray());
        Assert.True(dom.GuestViewEquals("vda", reference));
    }

    [Fact]
    public void SaveAndRestoreDomainState()
    {
        using var dom = TestDomain.Create("cmd-save");
        using var ps = Session();
        dom.GuestWrite("vda", 0x74, "0", "1M");
        var saved = ps.Run("Save-KvmDomainState -Domain $args[0] -Path $args[1] -Paused -ConnectionUri $uri -Confirm:$false", dom.Name, dom.File("state.sav")).AssertNoErrors().Single<DomainStateFile>();
        Assert.Equal(dom.Name, saved.Domain);
        Assert.Equal(dom.File("state.sav"), saved.Path);
        Assert.Equal(new FileInfo(saved.Path).Length, saved.Size);
        Assert.True(saved.Size > 0);
        Assert.Equal("paused", saved.RestoreState);
        Assert.Equal(LibvirtDaemonFixture.Uri, saved.ConnectionUri);
        Assert.True(Math.Abs((DateTime.Now - saved.SaveTime).TotalMinutes) < 5);
        Assert.False(dom.Exists, "a transient domain is gone after its state is saved");
        // The object binds Path and ConnectionUri by property name; the file records -Paused.
        var name = ps.Run("$args[0] | Restore-KvmDomainState -Confirm:$false", saved).AssertNoErrors();
        Assert.Equal(dom.Name, name.Output.Last().BaseObject);
        Assert.Equal("paused", dom.State);
        Assert.True(dom.GuestReads("vda", 0x74, "0", "1M"));
    }

    [Fact]
    public void BadInputGivesTypedErrorsAndChangesNothing()
    {
        using var dom = TestDomain.Create("cmd-bad");
        using var ps = Session();
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s1.qcow2")).AssertNoErrors();
        var before = (Snapshots(dom), dom.ActiveImage(), Tool.HashTree(dom.Dir).Keys.ToArray());

        void Expect(string script, string errorId, string cmdletClass, ErrorCategory category)
        {
            var error = ps.Run(script, dom.Name, dom.File("base.qcow2")).SingleError();
            Assert.Equal($"{errorId},KvmSnapshot.Cmdlets.{cmdletClass}", error.FullyQualifiedErrorId);
            Assert.Equal(category, error.CategoryInfo.Category);
            Assert.NotNull(error.TargetObject);
        }

        Expect("Get-KvmSnapshot -Domain 'no-such-domain' -ConnectionUri $uri", "DomainNotFound", "GetKvmSnapshotCommand", ErrorCategory.ObjectNotFound);
        Expect("Get-KvmSnapshot -Domain $args[0] -Name nope -ConnectionUri $uri", "SnapshotNotFound", "GetKvmSnapshotCommand", ErrorCategory.ObjectNotFound);
        Expect("Remove-KvmSnapshot -Domain $args[0] -Name nope -ConnectionUri $uri -Confirm:$false", "SnapshotNotFound", "RemoveKvmSnapshotCommand", ErrorCategory.ObjectNotFound);
        Expect("Get-KvmSnapshotChain -Domain $args[0] -Disk vdz -ConnectionUri $uri", "DomainDiskNotFound", "GetKvmSnapshotChainCommand", ErrorCategory.ObjectNotFound);
        Expect("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Top /nope.qcow2 -ConnectionUri $uri -Confirm:$false", "ChainLayerNotFound", "InvokeKvmBlockCommitCommand", ErrorCategory.ObjectNotFound);
        Expect("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Top $args[1] -Base $args[1] -ConnectionUri $uri -Confirm:$false", "ChainBaseAboveTop", "InvokeKvmBlockCommitCommand", ErrorCategory.InvalidArgument);
        Expect("Get-KvmDomainDisk -Domain $args[0] -ConnectionUri 'qemu+tcp://127.0.0.1:1/system'", "ConnectionFailed", "GetKvmDomainDiskCommand", ErrorCategory.ConnectionError);
        Expect("New-KvmSnapshot -Domain $args[0] -DiskSpec 'file=/x.qcow2' -ConnectionUri $uri", "InvalidDiskSpec", "NewKvmSnapshotCommand", ErrorCategory.InvalidArgument);

        Assert.Equal(before.Item1, Snapshots(dom));
        Assert.Equal(before.Item2, dom.ActiveImage());
        Assert.Equal(before.Item3, Tool.HashTree(dom.Dir).Keys.ToArray());
        Assert.False(dom.HasBlockJob());
    }

    [Fact]
    public void DomainSnapshotAndDiskNamesTabComplete()
    {
        using var dom = TestDomain.Create("cmd-tab");
        using var ps = Session();
        ps.SetVariable("domain", dom.Name);
        ps.Run("New-KvmSnapshot -Domain $domain -Name 'tab one' -ConnectionUri $uri", dom.Name).AssertNoErrors();

        string[] Complete(string line) => ps.Run("(TabExpansion2 -inputScript $args[0] -cursorColumn $args[0].Length).CompletionMatches.CompletionText", line)
            .AssertNoErrors().All<string>().ToArray();

        Assert.Contains(dom.Name, Complete($"Get-KvmSnapshot -ConnectionUri {Uri} -Domain {dom.Name[..12]}"));
        Assert.Equal(new[] { "'tab one'" }, Complete($"Get-KvmSnapshot -ConnectionUri {Uri} -Domain {dom.Name} -Name ta"));
        Assert.Equal(new[] { "vda" }, Complete($"Get-KvmBlockJob -ConnectionUri {Uri} -Domain {dom.Name} -Disk v"));
    }
}
