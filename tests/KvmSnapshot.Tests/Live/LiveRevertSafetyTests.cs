using System;
using System.IO;
using System.Linq;
using KvmSnapshot.Errors;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

/// <summary>
/// Issue 7, item 1 (the revert trap of virt-manager issue 811): an internal snapshot, then an external one, then a
/// revert to the internal one would make the external snapshot's frozen image writable again and leave its overlay
/// outside every chain. Refused (SnapshotRevertUnsafe) naming both unless -Force; with -Force every file stays.
/// An offline -Path revert of an image other images use is refused the same way.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveRevertSafetyTests
{
    [Fact]
    public void Reverting_to_an_internal_snapshot_under_a_later_external_one_is_refused_and_Force_keeps_every_file()
    {
        using var dom = TestDomain.Create("trap", persistent: true);
        using var ps = new PowerShellSession();
        ps.SetVariable("uri", LibvirtDaemonFixture.Uri);
        dom.GuestWrite("vda", 0x21, "0", "1M");
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name i1 -ConnectionUri $uri", dom.Name).AssertNoErrors();
        dom.GuestWrite("vda", 0x22, "1M", "1M");
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name e1 -DiskOnly -Atomic -DiskSpec ('vda,snapshot=external,file=' + $args[1]) -ConnectionUri $uri",
            dom.Name, dom.File("e1.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x23, "2M", "1M");
        var frozen = dom.File("frozen.raw");
        dom.Suspend();
        Tool.Run("qemu-img", "convert", "-U", "-O", "raw", dom.File("base.qcow2"), frozen).EnsureSuccess();
        dom.Resume();

        var whatIf = ps.Run("Restore-KvmSnapshot -Domain $args[0] -Name i1 -ConnectionUri $uri -WhatIf", dom.Name).SingleError();
        Assert.StartsWith(ErrorIds.SnapshotRevertUnsafe + ",", whatIf.FullyQualifiedErrorId, StringComparison.Ordinal);
        var refused = ps.Run("Restore-KvmSnapshot -Domain $args[0] -Name i1 -ConnectionUri $uri -Confirm:$false", dom.Name).SingleError();
        Assert.StartsWith(ErrorIds.SnapshotRevertUnsafe + ",", refused.FullyQualifiedErrorId, StringComparison.Ordinal);
        Assert.Contains($"{dom.Name}/e1", refused.Exception.Message);
        Assert.Contains(dom.File("e1.qcow2"), refused.Exception.Message);
        Assert.Equal(dom.File("e1.qcow2"), dom.ActiveImage());
        Assert.True(dom.GuestReads("vda", 0x23, "2M", "1M"), "the domain still runs on its current state");
        Assert.True(Tool.Run("qemu-img", "compare", "-U", "-F", "raw", dom.File("base.qcow2"), frozen).ExitCode == 0, "e1's frozen image is unchanged");

        var forced = ps.Run("Restore-KvmSnapshot -Domain $args[0] -Name i1 -Force -ConnectionUri $uri -Confirm:$false", dom.Name);
        if (forced.Errors.Count > 0)
        {
            // libvirt itself may refuse this revert; then nothing may have changed either.
            Assert.Equal(dom.File("e1.qcow2"), dom.ActiveImage());
        }
        else
        {
            Assert.Contains(forced.Warnings, w => w.Contains($"{dom.Name}/e1", StringComparison.Ordinal));
        }
        Assert.True(File.Exists(dom.File("e1.qcow2")), "the overlay stays on disk");
        Assert.True(File.Exists(dom.File("base.qcow2")));
    }

    [Fact]
    public void Applying_an_internal_snapshot_offline_to_an_image_an_overlay_uses_is_refused_without_Force()
    {
        using var tmp = new TempDirectory("applyrev");
        Tool.CreateQcow2(tmp.File("a.qcow2"), "16M");
        Tool.WritePattern(tmp.File("a.qcow2"), 0x31, "0", "1M");
        Tool.Run("qemu-img", "snapshot", "-c", "s1", tmp.File("a.qcow2")).EnsureSuccess();
        Tool.WritePattern(tmp.File("a.qcow2"), 0x32, "0", "1M");
        Tool.CreateQcow2(tmp.File("o.qcow2"), null, tmp.File("a.qcow2"));
        using var ps = new PowerShellSession();
        var before = Tool.HashTree(tmp.Path);

        var whatIf = ps.Run("Restore-KvmSnapshot -Path $args[0] -Name s1 -WhatIf", tmp.File("a.qcow2")).SingleError();
        Assert.StartsWith(ErrorIds.SnapshotRevertUnsafe + ",", whatIf.FullyQualifiedErrorId, StringComparison.Ordinal);
        var refused = ps.Run("Restore-KvmSnapshot -Path $args[0] -Name s1 -Confirm:$false", tmp.File("a.qcow2")).SingleError();
        Assert.StartsWith(ErrorIds.SnapshotRevertUnsafe + ",", refused.FullyQualifiedErrorId, StringComparison.Ordinal);
        Assert.Contains(tmp.File("o.qcow2"), refused.Exception.Message);
        Assert.Equal(before, Tool.HashTree(tmp.Path));
        Assert.True(Tool.ReadsPattern(tmp.File("o.qcow2"), 0x32, "0", "1M"));

        var forced = ps.Run("Restore-KvmSnapshot -Path $args[0] -Name s1 -Force -Confirm:$false", tmp.File("a.qcow2")).AssertNoErrors();
        Assert.Contains(forced.Warnings, w => w.Contains(tmp.File("o.qcow2"), StringComparison.Ordinal));
        Assert.True(Tool.ReadsPattern(tmp.File("a.qcow2"), 0x31, "0", "1M"), "the snapshot was applied");
        Assert.True(File.Exists(tmp.File("o.qcow2")));
    }
}
