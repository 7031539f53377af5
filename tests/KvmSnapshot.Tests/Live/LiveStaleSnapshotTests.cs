using System;
using System.IO;
using System.Linq;
using System.Threading;
using KvmSnapshot.Errors;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

/// <summary>
/// Issue 12, item 4: a commit that changes the images a snapshot reverts to names the snapshots it makes stale, and a
/// revert to a stale snapshot is refused (SnapshotStale) unless -Force, because it would give a disk holding data
/// written after the snapshot.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveStaleSnapshotTests
{
    [Fact]
    public void An_active_commit_names_the_snapshots_it_makes_stale_and_a_revert_to_one_is_refused_without_Force()
    {
        using var dom = TestDomain.Create("stale", persistent: true);
        using var ps = new PowerShellSession();
        ps.SetVariable("uri", LibvirtDaemonFixture.Uri);
        dom.GuestWrite("vda", 0x71, "0", "1M");
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -Atomic -DiskSpec ('vda,snapshot=external,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s1.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x72, "1M", "1M");
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s2 -DiskOnly -Atomic -DiskSpec ('vda,snapshot=external,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s2.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x73, "2M", "1M");
        // The commit must come later than the snapshots' own final flush of the frozen images (FreezeSlack).
        Thread.Sleep(KvmSnapshot.Live.LiveEngine.FreezeSlack + TimeSpan.FromSeconds(1.5));

        var commit = ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Pivot -ConnectionUri $uri -Confirm:$false", dom.Name).AssertNoErrors();
        var warning = Assert.Single(commit.Warnings, w => w.Contains("changes the content of", StringComparison.Ordinal));
        Assert.Contains($"{dom.Name}/s1", warning);
        Assert.Contains($"{dom.Name}/s2", warning);

        LibvirtDaemonFixture.Virsh("destroy", dom.Name).EnsureSuccess();
        var definition = LibvirtDaemonFixture.Virsh("dumpxml", "--inactive", dom.Name).EnsureSuccess().StdOut;
        var files = Directory.GetFiles(dom.Dir).OrderBy(f => f, StringComparer.Ordinal).ToList();

        var refused = ps.Run("Restore-KvmSnapshot -Domain $args[0] -Name s2 -ConnectionUri $uri -Confirm:$false", dom.Name).SingleError();
        Assert.StartsWith(ErrorIds.SnapshotStale + ",", refused.FullyQualifiedErrorId, StringComparison.Ordinal);
        // -WhatIf checks the same before it says anything.
        var whatIf = ps.Run("Restore-KvmSnapshot -Domain $args[0] -Name s2 -ConnectionUri $uri -WhatIf", dom.Name);
        Assert.StartsWith(ErrorIds.SnapshotStale + ",", whatIf.SingleError().FullyQualifiedErrorId, StringComparison.Ordinal);
        Assert.Contains(dom.File("base.qcow2"), refused.Exception.Message);
        Assert.Equal(definition, LibvirtDaemonFixture.Virsh("dumpxml", "--inactive", dom.Name).EnsureSuccess().StdOut);
        Assert.Equal(files, Directory.GetFiles(dom.Dir).OrderBy(f => f, StringComparer.Ordinal).ToList());

        // With -Force the revert happens, and shows why it was refused: data written after s2 is on the disk.
        var forced = ps.Run("Restore-KvmSnapshot -Domain $args[0] -Name s2 -Force -ConnectionUri $uri -Confirm:$false", dom.Name).AssertNoErrors();
        Assert.Contains(forced.Warnings, w => w.Contains("is stale", StringComparison.Ordinal));
        var view = dom.File("view.raw");
        Tool.Run("qemu-img", "convert", "-U", "-O", "raw", dom.ActiveImage(), view).EnsureSuccess();
        Assert.True(Tool.ReadsPattern(view, 0x73, "2M", "1M", "raw"), "the stale revert reads the data written after s2");
    }
}
