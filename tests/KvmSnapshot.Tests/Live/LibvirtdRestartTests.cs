using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

/// <summary>
/// Issue 7.3: the real libvirtd is stopped (SIGTERM, an orderly restart) or killed (SIGKILL, a crash) and started again
/// while a cmdlet waits for a live block job. QEMU keeps running the job meanwhile; the restarted libvirtd reconnects
/// to QEMU and picks the job up (or finalizes it, if it ended while the daemon was down). The wait must reconnect and
/// report what really happened: finished only when the chain shows it, otherwise a typed error. Guest data is
/// compared byte for byte (qemu-img compare) against a copy taken before the job.
/// libvirtd is shared: each test keeps it down for seconds only and always starts it again.
/// </summary>
[Collection(LibvirtdRestartCollection.Name)]
public sealed class LibvirtdRestartTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private const ulong OneMiBPerSecond = 1048576;

    /// <summary>base (8 MiB of 0x61) &lt;- s1 (8 MiB of 0x62 at 8M) &lt;- s2 (active, 1 MiB of 0x63 at 20M).</summary>
    private static TestDomain ChainWithData(string tag)
    {
        var dom = TestDomain.Create(tag);
        try
        {
            var ctx = new RecordingOperationContext();
            dom.GuestWrite("vda", 0x61, "0", "8M");
            LiveEngine.Default.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "sn1", DiskOnly = true, DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = dom.File("s1.qcow2") } } }, ctx);
            dom.GuestWrite("vda", 0x62, TestDomain.Mib(8), "8M");
            LiveEngine.Default.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "sn2", DiskOnly = true, DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = dom.File("s2.qcow2") } } }, ctx);
            dom.GuestWrite("vda", 0x63, TestDomain.Mib(20), "1M");
            return dom;
        }
        catch
        {
            dom.Dispose();
            throw;
        }
    }

    private static string[] ChainFiles(TestDomain dom)
        => Assert.Single(LiveEngine.Default.GetChains(Uri, dom.Name, "vda", new RecordingOperationContext())).Layers.Select(l => Path.GetFileName(l.Path)).ToArray();

    /// <summary>The test's files in the domain's folder, but the test's own before-copy.</summary>
    private static string[] Files(TestDomain dom)
        => Directory.GetFiles(dom.Dir).Select(f => Path.GetFileName(f)!).Where(f => f != "before.raw").OrderBy(f => f, StringComparer.Ordinal).ToArray();

    private static void WaitFor(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout) throw new TimeoutException($"{what} within {timeout.TotalSeconds} s");
            Thread.Sleep(100);
        }
    }

    /// <summary>Waits until the job on vda has made progress, so the restart hits it mid-way.</summary>
    private static void WaitUntilRunning(TestDomain dom, Task operation)
    {
        WaitFor(() => operation.IsCompleted || LibvirtDaemonFixture.Virsh("blockjob", dom.Name, "vda", "--info").StdErr.Contains('%')
            && !LibvirtDaemonFixture.Virsh("blockjob", dom.Name, "vda", "--info").StdErr.Contains("[  0 %]", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "the block job did not start");
        Assert.False(operation.IsCompleted, $"the operation ended before the restart: {operation.Exception}");
    }

    /// <summary>The pool hands out a live connection again and it answers (a new connection, not the dead one).</summary>
    private static void AssertPooledConnectionWorks(TestDomain dom)
    {
        using (var lease = LibvirtConnection.Get(Uri)) Assert.True(lease.IsAlive);
        Assert.Contains(dom.Name, LiveEngine.Default.GetDomainNames(Uri));
    }

    private static void RestartDuringWaitingJob(string signal, bool pull)
    {
        using var dom = ChainWithData(pull ? "rs-pull" : "rs-commit");
        var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));
        var files = Files(dom);
        var ctx = new RecordingOperationContext();
        var engine = LiveEngine.Default;
        // 8 MiB at 1 MiB/s (commit) or 16 MiB at 2 MiB/s (pull): the job runs for seconds after the restart.
        var operation = Task.Run(() => pull
            ? engine.BlockPull(Uri, new BlockPullRequest { Domain = dom.Name, Disk = "vda", Bandwidth = 2 * OneMiBPerSecond }, ctx)
            : engine.BlockCommit(Uri, new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Top = dom.File("s1.qcow2"), Base = dom.File("base.qcow2"), Bandwidth = OneMiBPerSecond }, ctx));
        WaitUntilRunning(dom, operation);

        LibvirtDaemonProcess.Restart(signal);

        // QEMU ran the job on; the restarted libvirtd lists it again (it may have ended meanwhile).
        Assert.True(operation.Wait(TimeSpan.FromSeconds(120)), "the waiting operation did not return after libvirtd came back");
        Assert.Null(operation.Result); // no exception: it reports success, so the job must really have finished
        Assert.Contains(ctx.Warnings, w => w.Contains("connection to libvirt was lost", StringComparison.Ordinal));
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("Reconnected to libvirt", StringComparison.Ordinal));
        Assert.False(dom.HasBlockJob());
        Assert.Empty(engine.GetBlockJobs(Uri, dom.Name, null, ctx));
        Assert.Equal(pull ? new[] { "s2.qcow2" } : new[] { "s2.qcow2", "base.qcow2" }, ChainFiles(dom));
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());
        Assert.True(dom.GuestViewEquals("vda", before), "the guest-visible disk changed");
        Assert.Equal(files, Files(dom)); // no file lost
        AssertPooledConnectionWorks(dom);
        // The domain still takes guest writes where they belong.
        dom.GuestWrite("vda", 0x64, TestDomain.Mib(30), "1M");
        Assert.True(dom.GuestReads("vda", 0x64, TestDomain.Mib(30), "1M"));
    }

    [Fact]
    public void Libvirtd_restart_during_a_waiting_live_commit_reconnects_and_finishes_guest_data_intact()
        => RestartDuringWaitingJob("TERM", pull: false);

    [Fact]
    public void Libvirtd_SIGKILL_during_a_waiting_live_commit_reconnects_and_finishes_guest_data_intact()
        => RestartDuringWaitingJob("KILL", pull: false);

    [Fact]
    public void Libvirtd_restart_during_a_waiting_live_pull_reconnects_and_finishes_guest_data_intact()
        => RestartDuringWaitingJob("TERM", pull: true);

    [Fact]
    public void Libvirtd_SIGKILL_during_a_waiting_live_pull_reconnects_and_finishes_guest_data_intact()
        => RestartDuringWaitingJob("KILL", pull: true);

    [Fact]
    public void Libvirtd_SIGKILL_while_a_waiting_commit_ends_unseen_reports_the_outcome_from_the_chain_guest_data_intact()
    {
        using var dom = ChainWithData("rs-unseen");
        var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));
        var ctx = new RecordingOperationContext();
        // 8 MiB at 4 MiB/s: the job ends about 2 s in, while libvirtd is down (kept down for 6 s); nobody sees its event.
        var operation = Task.Run(() => LiveEngine.Default.BlockCommit(Uri, new BlockCommitRequest
        {
            Domain = dom.Name, Disk = "vda", Top = dom.File("s1.qcow2"), Base = dom.File("base.qcow2"), Bandwidth = 4 * OneMiBPerSecond,
        }, ctx));
        WaitFor(() => operation.IsCompleted || dom.HasBlockJob(), TimeSpan.FromSeconds(30), "the commit did not start");

        LibvirtDaemonProcess.Restart("KILL", down: TimeSpan.FromSeconds(6));

        Assert.True(operation.Wait(TimeSpan.FromSeconds(120)), "the waiting commit did not return after libvirtd came back");
        Assert.Null(operation.Result);
        Assert.False(dom.HasBlockJob());
        Assert.Contains(ctx.Warnings, w => w.Contains("ended while the connection to libvirt was down", StringComparison.Ordinal));
        Assert.Equal(new[] { "s2.qcow2", "base.qcow2" }, ChainFiles(dom)); // success reported because the chain shows it
        Assert.True(dom.GuestViewEquals("vda", before), "the guest-visible disk changed");
        AssertPooledConnectionWorks(dom);
    }

    [Fact]
    public void Libvirtd_restart_during_a_waiting_active_commit_waits_for_ready_and_Complete_KvmBlockJob_pivots_guest_data_intact()
    {
        using var dom = ChainWithData("rs-ready");
        var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));
        var ctx = new RecordingOperationContext();
        // Active commit of s2 and s1 into base (9 MiB at 1 MiB/s), no -Pivot: the wait ends at READY.
        var operation = Task.Run(() => LiveEngine.Default.BlockCommit(Uri, new BlockCommitRequest
        {
            Domain = dom.Name, Disk = "vda", Base = dom.File("base.qcow2"), Bandwidth = OneMiBPerSecond,
        }, ctx));
        WaitUntilRunning(dom, operation);

        LibvirtDaemonProcess.Restart("TERM");

        Assert.True(operation.Wait(TimeSpan.FromSeconds(120)), "the waiting commit did not return after libvirtd came back");
        Assert.Null(operation.Result);
        var job = Assert.Single(LiveEngine.Default.GetBlockJobs(Uri, dom.Name, "vda", ctx));
        Assert.Equal((BlockJobType.ActiveCommit, true), (job.Type, job.IsReady)); // reported ready only because it is
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());

        LiveEngine.Default.PivotBlockJob(Uri, dom.Name, "vda", ctx);

        Assert.False(dom.HasBlockJob());
        Assert.Equal(dom.File("base.qcow2"), dom.ActiveImage());
        Assert.Equal(new[] { "base.qcow2" }, ChainFiles(dom));
        Assert.True(dom.GuestViewEquals("vda", before), "the guest-visible disk changed");
        AssertPooledConnectionWorks(dom);
    }

    [Fact]
    public void Libvirtd_down_longer_than_the_reconnect_timeout_is_BlockJobOutcomeUnknown_and_the_job_can_be_stopped_afterwards()
    {
        using var dom = ChainWithData("rs-unknown");
        var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));
        var files = Files(dom);
        var ctx = new RecordingOperationContext();
        var engine = new LiveEngine { ReconnectTimeout = TimeSpan.FromSeconds(2) };
        // 8 MiB at 256 KiB/s: still running long after libvirtd is back.
        var operation = Task.Run(() => engine.BlockCommit(Uri, new BlockCommitRequest
        {
            Domain = dom.Name, Disk = "vda", Top = dom.File("s1.qcow2"), Base = dom.File("base.qcow2"), Bandwidth = OneMiBPerSecond / 4,
        }, ctx));
        WaitUntilRunning(dom, operation);

        try
        {
            LibvirtDaemonProcess.Stop("KILL");
            var e = Assert.Throws<AggregateException>(() => operation.Wait(TimeSpan.FromSeconds(60))).InnerException as KvmSnapshotException;
            Assert.NotNull(e);
            Assert.Equal((ErrorIds.BlockJobOutcomeUnknown, KvmErrorKind.ConnectionError), (e!.ErrorId, e.Category));
            Assert.Contains("may still be running", e.Message, StringComparison.Ordinal);
            Assert.Contains(dom.Name + "/vda", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            LibvirtDaemonProcess.Start();
        }

        // The job QEMU kept running is listed truthfully, and Stop-KvmBlockJob abandons it.
        var job = Assert.Single(LiveEngine.Default.GetBlockJobs(Uri, dom.Name, "vda", ctx));
        Assert.Equal(BlockJobType.Commit, job.Type);
        Assert.True(job.Current < job.End, "the job should still be running");
        // While QEMU runs the job it holds the job's layers: the chain test says "not checked now", never "unreadable".
        var test = KvmSnapshot.Offline.OfflineEngine.Default.TestChain(Assert.Single(LiveEngine.Default.GetChains(Uri, dom.Name, "vda", ctx)), null, true, ctx);
        Assert.True(test.Passed, string.Join("\n", test.Problems));
        Assert.DoesNotContain(test.Problems, p => p.Kind == ChainProblemKind.ImageUnreadable);
        LiveEngine.Default.AbortBlockJob(Uri, dom.Name, "vda", async: false, ctx);
        Assert.False(dom.HasBlockJob());
        Assert.Equal(new[] { "s2.qcow2", "s1.qcow2", "base.qcow2" }, ChainFiles(dom));
        Assert.True(dom.GuestViewEquals("vda", before), "the guest-visible disk changed");
        Assert.Equal(files, Files(dom)); // no file lost
        AssertPooledConnectionWorks(dom);
    }
}

/// <summary>
/// The tests that stop libvirtd run alone, after every other collection: offline tests also ask libvirt which images
/// it uses, and live tests need the daemon up.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LibvirtdRestartCollection : ICollectionFixture<LibvirtDaemonFixture>
{
    public const string Name = "libvirtd restarts";
}
