using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Live;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

/// <summary>
/// Connections to the real libvirtd going away under the module: libvirtd is made to drop this process's
/// connections (virt-admin client-disconnect, what a restart does to a client), never restarted.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveConnectionTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;

    private static void WaitFor(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout) throw new TimeoutException($"{what} within {timeout.TotalSeconds} s");
            Thread.Sleep(50);
        }
    }

    [Fact]
    public void The_connection_version_is_the_daemons_as_virsh_reports_it()
    {
        var daemon = Tool.Run("virsh", "-c", Uri, "version", "--daemon").EnsureSuccess().StdOut
            .Split('\n').Single(l => l.StartsWith("Running against daemon:", StringComparison.Ordinal));
        var parts = daemon.Split(':')[1].Trim().Split('.').Select(ulong.Parse).ToArray();

        using var connection = LibvirtConnection.Get(Uri);

        Assert.Equal(parts[0] * 1_000_000 + parts[1] * 1000 + parts[2], connection.LibVersion);
        Assert.Equal($"{parts[0]}.{parts[1]}", connection.LibVersionText);
        Assert.Equal(connection.LibVersion, LiveEngine.Default.GetLibvirtVersion(Uri));
    }

    [Fact]
    public void Libvirtd_closing_the_connection_evicts_it_and_the_next_Get_opens_a_working_one()
    {
        LibvirtConnection.PooledConnection closed;
        // A connection that receives events: its close callback runs on the event loop as soon as libvirtd closes it.
        using (var first = LibvirtConnection.Get(Uri, events: true))
        {
            closed = first.Shared;
            Assert.True(first.IsAlive);
        }
        Assert.True(NativeCallbacks.HoldsOpaqueFor(closed.Events));

        Assert.True(DaemonClients.DisconnectThisProcess() >= 1);

        WaitFor(() => closed.ClosedReason is not null, TimeSpan.FromSeconds(10), "the close callback did not run");
        WaitFor(() => closed.IsEvicted && closed.IsClosed, TimeSpan.FromSeconds(10), "the closed connection was not evicted and closed");
        Assert.Contains("end of file", closed.ClosedReason, StringComparison.Ordinal);
        using var second = LibvirtConnection.Get(Uri, events: true);
        Assert.NotSame(closed, second.Shared);
        Assert.True(second.IsAlive);
        Assert.Equal(closed.Uri, second.Uri);
        Assert.NotEqual(0UL, second.LibVersion); // a call that goes to libvirtd
        // libvirt released the event callback's opaque through the free callback once it was done with it.
        WaitFor(() => !NativeCallbacks.HoldsOpaqueFor(closed.Events), TimeSpan.FromSeconds(10), "the event opaque was not freed");
    }

    [Fact]
    public void A_lease_taken_before_libvirtd_closed_the_connection_fails_as_a_libvirt_error_not_a_disposed_object()
    {
        using var dom = TestDomain.Create("lease");
        using var lease = LibvirtConnection.Get(Uri, events: true);
        Assert.True(DaemonClients.DisconnectThisProcess() >= 1);
        WaitFor(() => lease.Shared.IsEvicted, TimeSpan.FromSeconds(10), "the connection was not evicted");

        // The handle is still valid (this lease holds it): the call reaches libvirt and fails there.
        var e = Assert.ThrowsAny<KvmSnapshot.Errors.KvmSnapshotException>(() => lease.LookupDomain(dom.Name, null));
        Assert.False(lease.IsAlive);
        Assert.NotEmpty(e.Message);
        // Meanwhile the engine already works on a new connection.
        Assert.Contains(dom.Name, LiveEngine.Default.GetDomainNames(Uri));
    }

    [Fact]
    public void A_waited_commit_survives_libvirtd_dropping_the_connection_and_reports_the_real_outcome()
    {
        using var dom = TestDomain.Create("reconnect");
        var engine = LiveEngine.Default;
        var ctx = new RecordingOperationContext();
        dom.GuestWrite("vda", 0x61, "0", "8M");
        engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "sn1", DiskOnly = true, DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = dom.File("s1.qcow2") } } }, ctx);
        dom.GuestWrite("vda", 0x62, TestDomain.Mib(8), "8M");
        engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "sn2", DiskOnly = true, DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = dom.File("s2.qcow2") } } }, ctx);

        // 8 MiB at 1 MiB/s: the commit is still running when the connection goes.
        var commit = Task.Run(() => engine.BlockCommit(Uri, new BlockCommitRequest
        {
            Domain = dom.Name, Disk = "vda", Top = dom.File("s1.qcow2"), Base = dom.File("base.qcow2"), Bandwidth = 1048576,
        }, ctx));
        WaitFor(() => dom.HasBlockJob(), TimeSpan.FromSeconds(20), "the commit did not start");
        Assert.True(DaemonClients.DisconnectThisProcess() >= 1);
        // Let it finish at full speed (virsh is another process: its connection is not dropped).
        LibvirtDaemonFixture.Virsh("blockjob", dom.Name, "vda", "--bandwidth", "0");

        Assert.True(commit.Wait(TimeSpan.FromSeconds(60)), "the waiting commit did not return");
        Assert.Null(commit.Result);
        Assert.Contains(ctx.Warnings, w => w.Contains("connection to libvirt was lost", StringComparison.Ordinal));
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("Reconnected to libvirt", StringComparison.Ordinal));
        Assert.False(dom.HasBlockJob());
        var chain = Assert.Single(engine.GetChains(Uri, dom.Name, "vda", ctx));
        Assert.Equal(new[] { "s2.qcow2", "base.qcow2" }, chain.Layers.Select(l => Path.GetFileName(l.Path)));
        Assert.True(dom.GuestReads("vda", 0x62, TestDomain.Mib(8), "8M"));
    }

    [Fact]
    public void An_active_commit_with_pivot_survives_libvirtd_dropping_the_connection_and_ends_pivoted()
    {
        using var dom = TestDomain.Create("repivot");
        var engine = LiveEngine.Default;
        var ctx = new RecordingOperationContext();
        dom.GuestWrite("vda", 0x61, "0", "4M");
        engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "sn1", DiskOnly = true, DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = dom.File("s1.qcow2") } } }, ctx);
        dom.GuestWrite("vda", 0x62, TestDomain.Mib(8), "8M");

        var commit = Task.Run(() => engine.BlockCommit(Uri, new BlockCommitRequest
        {
            Domain = dom.Name, Disk = "vda", Base = dom.File("base.qcow2"), Bandwidth = 1048576, Pivot = true,
        }, ctx));
        WaitFor(() => dom.HasBlockJob(), TimeSpan.FromSeconds(20), "the active commit did not start");
        Assert.True(DaemonClients.DisconnectThisProcess() >= 1);
        LibvirtDaemonFixture.Virsh("blockjob", dom.Name, "vda", "--bandwidth", "0");

        Assert.True(commit.Wait(TimeSpan.FromSeconds(60)), "the waiting commit did not return");
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("Reconnected to libvirt", StringComparison.Ordinal));
        Assert.False(dom.HasBlockJob());
        Assert.Equal(dom.File("base.qcow2"), dom.ActiveImage()); // pivoted: reported done only because it is
        Assert.True(dom.GuestReads("vda", 0x62, TestDomain.Mib(8), "8M"));
        Assert.True(dom.GuestReads("vda", 0x61, "0", "4M"));
    }
}
