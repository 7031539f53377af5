using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Live;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>The documented live ErrorIds no other test provoked, each provoked for real through its cmdlet.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveErrorIdTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;

    private static PowerShellSession Session()
    {
        var ps = new PowerShellSession();
        ps.SetVariable("uri", Uri);
        return ps;
    }

    [Fact]
    public void AFileThatIsNoSavedStateIsLibvirtErrorWithLibvirtsMessage()
    {
        using var dir = new TempDirectory("live");
        File.WriteAllText(dir.File("junk.save"), "not a saved domain");
        using var ps = Session();
        var error = ps.Run("Restore-KvmDomainState -Path $args[0] -ConnectionUri $uri -Confirm:$false", dir.File("junk.save")).SingleError();
        Assert.Equal("LibvirtError,KvmSnapshot.Cmdlets.RestoreKvmDomainStateCommand", error.FullyQualifiedErrorId);
        Assert.Contains("failed to read qemu header", error.Exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AJobAbortedByAnotherClientIsBlockJobAborted()
    {
        using var dom = TestDomain.Create("aborted", disks: dir =>
        {
            Tool.CreateQcow2(dir.File("base.qcow2"), "256M");
            return new[] { new TestDisk("vda", dir.File("base.qcow2")) };
        });
        using var ps = Session();
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s1.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x75, "0", "32M");
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s2 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s2.qcow2")).AssertNoErrors();

        // A throttled commit the cmdlet waits for; virsh (another client) cancels it meanwhile.
        var commit = Task.Run(() => ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Top $args[1] -Bandwidth 1MB -ConnectionUri $uri -Confirm:$false",
            dom.Name, dom.File("s1.qcow2")));
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (!dom.HasBlockJob())
        {
            Assert.True(DateTime.UtcNow < deadline, "the commit never started");
            Thread.Sleep(50);
        }
        LibvirtDaemonFixture.Virsh("blockjob", dom.Name, "vda", "--abort").EnsureSuccess();
        var error = commit.Result.SingleError();
        Assert.Equal("BlockJobAborted,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand", error.FullyQualifiedErrorId);
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());
    }

    [Fact]
    public void ACommitQemuCannotWriteIsBlockJobFailed()
    {
        using var dom = TestDomain.Create("failed");
        using var ps = Session();
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s1 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s1.qcow2")).AssertNoErrors();
        dom.GuestWrite("vda", 0x76, "0", "1M");
        ps.Run("New-KvmSnapshot -Domain $args[0] -Name s2 -DiskOnly -DiskSpec ('vda,file=' + $args[1]) -ConnectionUri $uri", dom.Name, dom.File("s2.qcow2")).AssertNoErrors();
        // Immutable: not even root (libvirt, QEMU) may write the base, as with a read-only or failing store.
        Tool.Run("chattr", "+i", dom.File("base.qcow2")).EnsureSuccess();
        try
        {
            var error = ps.Run("Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Top $args[1] -ConnectionUri $uri -Confirm:$false",
                dom.Name, dom.File("s1.qcow2")).SingleError();
            Assert.Equal("BlockJobFailed,KvmSnapshot.Cmdlets.InvokeKvmBlockCommitCommand", error.FullyQualifiedErrorId);
        }
        finally
        {
            Tool.Run("chattr", "-i", dom.File("base.qcow2")).EnsureSuccess();
        }
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());
        Assert.False(dom.HasBlockJob());
    }
}
