using System;
using System.IO;
using System.Linq;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// Files libvirt would write for a live command (state files, memory files, external overlays) are never silently
/// replaced: an existing one is FileExists unless -Force, and one that snapshot metadata names is FileExists always.
/// Through the hosted engine against the real libvirtd.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveStateFileTests
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

    private static void AssertFileExists(PsResult result, string cmdletClass, string path)
    {
        var error = result.SingleError();
        Assert.Equal($"FileExists,KvmSnapshot.Cmdlets.{cmdletClass}", error.FullyQualifiedErrorId);
        Assert.Equal(System.Management.Automation.ErrorCategory.ResourceExists, error.CategoryInfo.Category);
        Assert.Equal(path, error.TargetObject);
        Assert.DoesNotContain("What if", result.HostText, StringComparison.Ordinal);
    }

    [Fact]
    public void SaveDomainStateRefusesAnExistingFileUnlessForce()
    {
        using var dom = TestDomain.Create("state-exists");
        using var ps = Session();
        var other = dom.File("db1.save");
        File.WriteAllText(other, "another domain's saved state");
        var hash = Tool.Sha256(other);

        AssertFileExists(ps.Run("Save-KvmDomainState -Domain $args[0] -Path $args[1] -ConnectionUri $uri -Confirm:$false", dom.Name, other),
            "SaveKvmDomainStateCommand", other);
        Assert.Equal("running", dom.State);
        Assert.Equal(hash, Tool.Sha256(other));
        // -WhatIf checks the same and says the same.
        AssertFileExists(ps.Run("Save-KvmDomainState -Domain $args[0] -Path $args[1] -ConnectionUri $uri -WhatIf", dom.Name, other),
            "SaveKvmDomainStateCommand", other);

        // -Force replaces a file that nothing uses.
        ps.Run("Save-KvmDomainState -Domain $args[0] -Path $args[1] -Force -ConnectionUri $uri -Confirm:$false", dom.Name, other).AssertNoErrors();
        Assert.False(dom.Exists, "a transient domain is gone once saved");
        Assert.NotEqual(hash, Tool.Sha256(other));
    }

    [Fact]
    public void MemoryAndOverlayFilesAreNeverReplacedAndThoseOfSnapshotsNotEvenWithForce()
    {
        using var dom = TestDomain.Create("mem-exists", persistent: true);
        using var ps = Session();
        dom.GuestWrite("vda", 0x41, "0", "1M");
        var p1 = dom.File("p1.bin");
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name p1 -MemoryFile $args[1] -DiskSpec ('vda,file=' + $args[2]) -ConnectionUri $uri",
            dom.Name, p1, dom.File("p1.qcow2")).AssertNoErrors();
        var p1Hash = Tool.Sha256(p1);
        string Before() => string.Join("|", Snapshots(dom)) + "|" + dom.ActiveImage() + "|" + dom.State;
        var before = Before();

        // Another snapshot's memory state: refused, with and without -Force; no snapshot is made.
        AssertFileExists(ps.Run("New-KvmSnapshot -Domain $args[0] -Name p2 -MemoryFile $args[1] -DiskSpec ('vda,file=' + $args[2]) -ConnectionUri $uri",
            dom.Name, p1, dom.File("p2.qcow2")), "NewKvmSnapshotCommand", p1);
        var forced = ps.Run("New-KvmSnapshot -Domain $args[0] -Name p2 -MemoryFile $args[1] -DiskSpec ('vda,file=' + $args[2]) -Force -ConnectionUri $uri",
            dom.Name, p1, dom.File("p2.qcow2"));
        AssertFileExists(forced, "NewKvmSnapshotCommand", p1);
        Assert.Contains("/p1 (memory state)", forced.Errors[0].Exception.Message, StringComparison.Ordinal);
        // The same for a state file.
        AssertFileExists(ps.Run("Save-KvmDomainState -Domain $args[0] -Path $args[1] -Force -ConnectionUri $uri -Confirm:$false", dom.Name, p1),
            "SaveKvmDomainStateCommand", p1);
        Assert.Equal(p1Hash, Tool.Sha256(p1));
        Assert.False(File.Exists(dom.File("p2.qcow2")));
        Assert.Equal(before, Before());

        // An existing overlay file: FileExists (libvirt's own refusal says "unsupported configuration").
        var stray = dom.File("stray.qcow2");
        Tool.CreateQcow2(stray, "64M");
        var strayHash = Tool.Sha256(stray);
        AssertFileExists(ps.Run("New-KvmSnapshot -Domain $args[0] -Name p3 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, stray),
            "NewKvmSnapshotCommand", stray);
        // An image snapshot metadata names (p1's frozen base) cannot be reused as a new overlay either.
        AssertFileExists(ps.Run("New-KvmSnapshot -Domain $args[0] -Name p3 -DiskOnly -ReuseExternal -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri",
            dom.Name, dom.File("base.qcow2")), "NewKvmSnapshotCommand", dom.File("base.qcow2"));
        Assert.Equal(strayHash, Tool.Sha256(stray));
        Assert.Equal(before, Before());

        // A file nothing uses is replaced with -Force.
        var old = dom.File("old.bin");
        File.WriteAllText(old, "stale");
        AssertFileExists(ps.Run("New-KvmSnapshot -Domain $args[0] -Name p4 -MemoryFile $args[1] -DiskSpec ('vda,file=' + $args[2]) -ConnectionUri $uri",
            dom.Name, old, dom.File("p4.qcow2")), "NewKvmSnapshotCommand", old);
        var p4 = ps.Run("New-KvmSnapshot -Domain $args[0] -Name p4 -MemoryFile $args[1] -DiskSpec ('vda,file=' + $args[2]) -Force -ConnectionUri $uri",
            dom.Name, old, dom.File("p4.qcow2")).AssertNoErrors().Single<DomainSnapshot>();
        Assert.Equal(old, p4.MemoryFile);
        Assert.True(new FileInfo(old).Length > 1000);
        Assert.Equal(dom.File("p4.qcow2"), dom.ActiveImage());
    }
}
