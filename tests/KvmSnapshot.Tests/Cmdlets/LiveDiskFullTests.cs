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

/// <summary>
/// Issue 7 item 2, live: a running domain under TCG writes a new overlay, a commit or a pull into a 16 MiB tmpfs.
/// The up-front estimate refuses (DiskFull, nothing changed, -WhatIf shows the estimate); with -SkipSpaceCheck the
/// write really runs out of space (libvirt's "No space left on device", or QEMU failing the block job): DiskFull
/// again, the disk on the chain it was on, the guest-visible bytes equal to a copy taken before, no file lost.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveDiskFullTests : IDisposable
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private readonly TempDirectory _tmp = new("lfull");
    private readonly SmallFileSystem _fs = new(16);
    private readonly PowerShellSession _ps = new();

    public LiveDiskFullTests() => _ps.SetVariable("uri", Uri);

    public void Dispose()
    {
        _ps.Dispose();
        _fs.Dispose();
        _tmp.Dispose();
    }

    [Fact]
    public void External_snapshot_on_a_full_file_system_is_refused_up_front_and_runs_out_without_leaving_an_overlay()
    {
        using var dom = TestDomain.Create("full-snap");
        dom.GuestWrite("vda", 0x61, "0", "4M");
        var before = dom.SnapshotGuestView("vda", _tmp.File("before.raw"));
        var overlay = _fs.File("s1.qcow2");
        const string create = "New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri";

        _fs.FillLeaving(256 * 1024);
        var refused = AssertDiskFull(_ps.Run(create, dom.Name, overlay), "NewKvmSnapshotCommand");
        Assert.Contains("needs up to 1.0 MiB", refused.Exception.Message);
        Assert.Contains("Nothing was changed", refused.Exception.Message);
        AssertUnchanged(dom, dom.File("base.qcow2"), before, overlay);

        _ps.Run(create + " -SkipSpaceCheck -WhatIf", dom.Name, overlay).AssertNoErrors();
        Assert.Matches(@"Create external disk-only snapshot 's1'.*\(it needs up to 1\.0 MiB on the file system of '[^']+', which has [0-9.]+ KiB free \(a new overlay for vda\)\)", _ps.Host.Recorder.Text);
        AssertUnchanged(dom, dom.File("base.qcow2"), before, overlay);

        File.Delete(_fs.File("filler"));
        _fs.FillLeaving(0);
        var ranOut = AssertDiskFull(_ps.Run(create + " -SkipSpaceCheck", dom.Name, overlay), "NewKvmSnapshotCommand");
        Assert.Contains("No space left on device", ranOut.Exception.Message);
        AssertUnchanged(dom, dom.File("base.qcow2"), before, overlay);
    }

    [Fact]
    public void Active_commit_into_a_base_on_a_full_file_system_is_refused_up_front_and_a_job_that_runs_out_leaves_the_chain()
    {
        // base.qcow2 on the small file system, the overlay with 12 MiB of guest data outside it.
        using var dom = TestDomain.Create("full-commit", disks: _ =>
        {
            Tool.CreateQcow2(_fs.File("base.qcow2"), "64M");
            return new[] { new TestDisk("vda", _fs.File("base.qcow2")) };
        });
        dom.GuestWrite("vda", 0x61, "0", "1M");
        _ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s1.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x62, TestDomain.Mib(1), "12M");
        var before = dom.SnapshotGuestView("vda", _tmp.File("before.raw"));
        _fs.FillLeaving(4 * 1024 * 1024);
        const string commit = "Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Pivot -ConnectionUri $uri -Confirm:$false";

        var refused = AssertDiskFull(_ps.Run(commit, dom.Name), "InvokeKvmBlockCommitCommand");
        Assert.Contains("commit into", refused.Exception.Message);
        Assert.Contains("the allocated size of s1.qcow2", refused.Exception.Message);
        AssertUnchanged(dom, dom.File("s1.qcow2"), before);

        _ps.Run(commit + " -SkipSpaceCheck -WhatIf", dom.Name).AssertNoErrors();
        Assert.Matches(@"commit the active layer .*s1\.qcow2 into .*base\.qcow2 .*\(it needs up to 1[0-9]\.[0-9] MiB on the file system of '[^']+', which has [0-9.]+ MiB free \(the allocated size of s1\.qcow2\)\)", _ps.Host.Recorder.Text);
        AssertUnchanged(dom, dom.File("s1.qcow2"), before);

        var ranOut = AssertDiskFull(_ps.Run(commit + " -SkipSpaceCheck", dom.Name), "InvokeKvmBlockCommitCommand");
        Assert.Contains("ran out of space", ranOut.Exception.Message);
        AssertUnchanged(dom, dom.File("s1.qcow2"), before);
        Assert.Contains(Tool.Run("qemu-img", "check", "-U", "-f", "qcow2", _fs.File("base.qcow2")).ExitCode, new[] { 0, 3 });
        var chain = _ps.Run("Get-KvmSnapshotChain -Domain $args[0] -Disk vda -ConnectionUri $uri", dom.Name).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { "s1.qcow2", "base.qcow2" }, chain.Layers.Select(l => Path.GetFileName(l.Path)));
    }

    [Fact]
    public void Pull_into_an_overlay_on_a_full_file_system_is_refused_up_front_and_a_job_that_runs_out_leaves_the_chain()
    {
        // base.qcow2 with 12 MiB of guest data outside, the active overlay on the small file system.
        using var dom = TestDomain.Create("full-pull");
        dom.GuestWrite("vda", 0x61, "0", "12M");
        _ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, _fs.File("s1.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x62, "0", "64k");
        var before = dom.SnapshotGuestView("vda", _tmp.File("before.raw"));
        _fs.FillLeaving(4 * 1024 * 1024);
        const string pull = "Invoke-KvmBlockPull -Domain $args[0] -Disk vda -ConnectionUri $uri -Confirm:$false";

        var refused = AssertDiskFull(_ps.Run(pull, dom.Name), "InvokeKvmBlockPullCommand");
        Assert.Contains("the allocated size of base.qcow2", refused.Exception.Message);
        AssertUnchanged(dom, _fs.File("s1.qcow2"), before);

        var ranOut = AssertDiskFull(_ps.Run(pull + " -SkipSpaceCheck", dom.Name), "InvokeKvmBlockPullCommand");
        Assert.Contains("ran out of space", ranOut.Exception.Message);
        AssertUnchanged(dom, _fs.File("s1.qcow2"), before);
        var chain = _ps.Run("Get-KvmSnapshotChain -Domain $args[0] -Disk vda -ConnectionUri $uri", dom.Name).AssertNoErrors().Single<SnapshotChain>();
        Assert.Equal(new[] { "s1.qcow2", "base.qcow2" }, chain.Layers.Select(l => Path.GetFileName(l.Path)));
    }

    /// <summary>The disk is still on <paramref name="active"/>, no job runs, what the guest reads is as before, and no overlay was left.</summary>
    private static void AssertUnchanged(TestDomain dom, string active, string before, string? absentOverlay = null)
    {
        Assert.Equal(active, dom.ActiveImage("vda"));
        Assert.False(dom.HasBlockJob("vda"));
        Assert.True(dom.GuestViewEquals("vda", before), "the guest-visible bytes changed");
        if (absentOverlay is not null) Assert.False(File.Exists(absentOverlay), $"{absentOverlay} was left behind");
    }

    private static ErrorRecord AssertDiskFull(PsResult result, string cmdletClass)
    {
        var error = result.SingleError();
        Assert.Equal($"DiskFull,KvmSnapshot.Cmdlets.{cmdletClass}", error.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ResourceUnavailable, error.CategoryInfo.Category);
        return error;
    }
}
