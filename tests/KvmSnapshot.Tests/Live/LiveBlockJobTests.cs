using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Live;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

[Collection(LibvirtCollection.Name)]
public sealed class LiveBlockJobTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private const ulong OneMiBPerSecond = 1048576;
    private static readonly LiveEngine Engine = LiveEngine.Default;

    /// <summary>base (16 MiB of 0x61) &lt;- s1 (16 MiB of 0x62 at 16M) &lt;- s2 (active, 1 MiB of 0x63 at 40M).</summary>
    private static TestDomain ChainWithData(string tag)
    {
        var dom = TestDomain.Create(tag);
        try
        {
            var ctx = new RecordingOperationContext();
            dom.GuestWrite("vda", 0x61, "0", "16M");
            Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "sn1", DiskOnly = true, DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = dom.File("s1.qcow2") } } }, ctx);
            dom.GuestWrite("vda", 0x62, TestDomain.Mib(16), "16M");
            Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "sn2", DiskOnly = true, DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = dom.File("s2.qcow2") } } }, ctx);
            dom.GuestWrite("vda", 0x63, TestDomain.Mib(40), "1M");
            return dom;
        }
        catch
        {
            dom.Dispose();
            throw;
        }
    }

    private static string[] ChainFiles(TestDomain dom)
        => Assert.Single(Engine.GetChains(Uri, dom.Name, "vda", new RecordingOperationContext())).Layers.Select(l => Path.GetFileName(l.Path)).ToArray();

    [Fact]
    public void NoWait_commit_is_listed_as_a_job_and_abort_leaves_the_chain_as_it_was()
    {
        using var dom = ChainWithData("nowait");
        var ctx = new RecordingOperationContext();
        var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));

        var job = Engine.BlockCommit(Uri, new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Top = dom.File("s1.qcow2"), Base = dom.File("base.qcow2"), Bandwidth = OneMiBPerSecond, NoWait = true }, ctx);

        Assert.NotNull(job);
        Assert.Equal((dom.Name, "vda", BlockJobType.Commit, OneMiBPerSecond, false), (job!.Domain, job.Disk, job.Type, job.Bandwidth, job.IsReady));
        Assert.True(job.End > 0);
        Assert.Contains(ctx.VerboseMessages, m => m.Contains("bandwidth=1048576, flags=BandwidthBytes", StringComparison.Ordinal));
        var listed = Assert.Single(Engine.GetBlockJobs(Uri, dom.Name, null, ctx));
        Assert.Equal((BlockJobType.Commit, "qemu:///system"), (listed.Type, listed.ConnectionUri));
        Assert.Single(Engine.GetBlockJobs(Uri, dom.Name, "vda", ctx));

        Engine.AbortBlockJob(Uri, dom.Name, "vda", async: false, ctx);

        Assert.Empty(Engine.GetBlockJobs(Uri, dom.Name, null, ctx));
        Assert.False(dom.HasBlockJob());
        Assert.Equal(new[] { "s2.qcow2", "s1.qcow2", "base.qcow2" }, ChainFiles(dom));
        Assert.True(dom.GuestViewEquals("vda", before));
    }

    [Fact]
    public void Cancelling_a_throttled_commit_aborts_the_job_and_keeps_the_old_chain_and_every_file()
    {
        using var dom = ChainWithData("cancel");
        var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));
        var files = Directory.GetFiles(dom.Dir).OrderBy(f => f, StringComparer.Ordinal).ToArray();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var ctx = new RecordingOperationContext(cts.Token);
        var clock = Stopwatch.StartNew();

        var e = Assert.Throws<KvmSnapshotException>(() => Engine.BlockCommit(Uri,
            new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Top = dom.File("s1.qcow2"), Base = dom.File("base.qcow2"), Bandwidth = OneMiBPerSecond }, ctx));

        Assert.Equal(ErrorIds.OperationCancelled, e.ErrorId);
        Assert.Contains("aborted", e.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(12), $"took {clock.Elapsed}: the 16 MiB commit at 1 MiB/s ran to its end instead of being aborted");
        Assert.False(dom.HasBlockJob());
        Assert.Equal(new[] { "s2.qcow2", "s1.qcow2", "base.qcow2" }, ChainFiles(dom));
        Assert.Equal(files, Directory.GetFiles(dom.Dir).OrderBy(f => f, StringComparer.Ordinal).ToArray());
        Assert.True(dom.GuestViewEquals("vda", before));
        Assert.Contains(ctx.VerboseMessages, m => m == $"virDomainBlockJobAbort(dom='{dom.Name}', disk='vda', flags=0)");
        Assert.Contains(ctx.ProgressReports, p => p.Percent is > 0 and < 100); // the bar moved while it ran
        Assert.NotEmpty(ctx.CompletedActivities);
    }

    [Fact]
    public void Active_commit_NoWait_then_pivot_when_ready()
    {
        using var dom = ChainWithData("pivot");
        var ctx = new RecordingOperationContext();
        var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));

        var job = Engine.BlockCommit(Uri, new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Base = dom.File("s1.qcow2"), NoWait = true }, ctx);
        Assert.Equal(BlockJobType.ActiveCommit, job!.Type);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!Engine.GetBlockJobs(Uri, dom.Name, "vda", ctx).Single().IsReady)
        {
            Assert.True(DateTime.UtcNow < deadline, "the active commit never became ready");
            Thread.Sleep(100);
        }

        Engine.PivotBlockJob(Uri, dom.Name, "vda", ctx);

        Assert.False(dom.HasBlockJob());
        Assert.Equal(dom.File("s1.qcow2"), dom.ActiveImage());
        Assert.Equal(new[] { "s1.qcow2", "base.qcow2" }, ChainFiles(dom));
        Assert.True(dom.GuestViewEquals("vda", before));
    }

    [Fact]
    public void Pivot_before_ready_is_BlockJobNotReady_and_changes_nothing()
    {
        using var dom = ChainWithData("notready");
        var ctx = new RecordingOperationContext();
        // 16 MiB of s1 under the active layer: at 1 MiB/s the mirror needs ~16 s before it is ready.
        Engine.BlockCommit(Uri, new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Base = dom.File("base.qcow2"), Bandwidth = OneMiBPerSecond, NoWait = true }, ctx);

        var e = Assert.Throws<KvmSnapshotException>(() => Engine.PivotBlockJob(Uri, dom.Name, "vda", ctx));

        Assert.Equal((ErrorIds.BlockJobNotReady, KvmErrorKind.ResourceBusy), (e.ErrorId, e.Category));
        Assert.True(dom.HasBlockJob());
        Engine.AbortBlockJob(Uri, dom.Name, "vda", async: false, ctx);
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());
        Assert.Equal(new[] { "s2.qcow2", "s1.qcow2", "base.qcow2" }, ChainFiles(dom));
    }

    [Fact]
    public void Active_commit_without_pivot_waits_for_ready_and_leaves_the_job_for_the_user()
    {
        using var dom = ChainWithData("ready");
        var ctx = new RecordingOperationContext();

        Assert.Null(Engine.BlockCommit(Uri, new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Base = dom.File("s1.qcow2") }, ctx));

        var job = Assert.Single(Engine.GetBlockJobs(Uri, dom.Name, "vda", ctx));
        Assert.True(job.IsReady);
        Assert.Contains(ctx.Warnings, w => w.Contains("Complete-KvmBlockJob", StringComparison.Ordinal));
        Assert.Contains(ctx.VerboseMessages, m => m.Contains("Ready", StringComparison.Ordinal)); // woken by the READY event

        Engine.AbortBlockJob(Uri, dom.Name, "vda", async: true, ctx);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (dom.HasBlockJob()) { Assert.True(DateTime.UtcNow < deadline); Thread.Sleep(100); }
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());
    }

    [Fact]
    public void A_waited_commit_returns_on_the_COMPLETED_event_not_on_a_poll()
    {
        using var dom = ChainWithData("event");
        // Polls 5 s apart: a wait that depended on polling would return seconds after the job ended.
        var engine = new LiveEngine { ProgressInterval = TimeSpan.FromSeconds(5) };
        BlockJobEvent? completed = null;
        void OnEvent(BlockJobEvent e)
        {
            if (e.Domain == dom.Name && e.Status == BlockJobEventStatus.Completed) completed = e;
        }
        LiveEngine.BlockJobEventReceived += OnEvent;
        try
        {
            engine.BlockCommit(Uri, new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Top = dom.File("s1.qcow2"), Base = dom.File("base.qcow2") }, new RecordingOperationContext());
            var returned = Stopwatch.GetTimestamp();

            Assert.NotNull(completed);
            Assert.Equal((dom.Name, "vda", BlockJobType.Commit, "qemu:///system"), (completed!.Domain, completed.Disk, completed.Type, completed.ConnectionUri));
            var latency = Stopwatch.GetElapsedTime(completed.Timestamp, returned);
            Assert.True(latency < TimeSpan.FromMilliseconds(500), $"returned {latency.TotalMilliseconds:0} ms after the event");
        }
        finally
        {
            LiveEngine.BlockJobEventReceived -= OnEvent;
        }
        Assert.Equal(new[] { "s2.qcow2", "base.qcow2" }, ChainFiles(dom));
    }

    [Fact]
    public void Pivot_or_abort_without_a_job_is_BlockJobNotFound()
    {
        using var dom = TestDomain.Create("nojob");
        var ctx = new RecordingOperationContext();

        Assert.Equal(ErrorIds.BlockJobNotFound, Assert.Throws<KvmSnapshotException>(() => Engine.PivotBlockJob(Uri, dom.Name, "vda", ctx)).ErrorId);
        Assert.Equal(ErrorIds.BlockJobNotFound, Assert.Throws<KvmSnapshotException>(() => Engine.AbortBlockJob(Uri, dom.Name, "vda", false, ctx)).ErrorId);
        Assert.Empty(Engine.GetBlockJobs(Uri, dom.Name, null, ctx));
    }

    [Fact]
    public void Commit_into_a_base_another_image_uses_is_refused_unless_Force()
    {
        using var dom = TestDomain.Create("shared", disks: dir =>
        {
            Tool.CreateQcow2(dir.File("template.qcow2"), "64M");
            Tool.WritePattern(dir.File("template.qcow2"), 0x71, "0", "1M");
            Tool.CreateQcow2(dir.File("other-vm.qcow2"), null, dir.File("template.qcow2"));
            Tool.CreateQcow2(dir.File("top.qcow2"), null, dir.File("template.qcow2"));
            return new[] { new TestDisk("vda", dir.File("top.qcow2")) };
        });
        var ctx = new RecordingOperationContext();
        dom.GuestWrite("vda", 0x72, "0", "1M");
        var template = Tool.Sha256(dom.File("template.qcow2"));
        var request = new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Base = dom.File("template.qcow2"), Pivot = true };

        var e = Assert.Throws<KvmSnapshotException>(() => Engine.BlockCommit(Uri, request, ctx));

        Assert.Equal((ErrorIds.ChainBaseShared, KvmErrorKind.InvalidOperation), (e.ErrorId, e.Category));
        Assert.Contains(dom.File("other-vm.qcow2"), e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(ctx.VerboseMessages, m => m.StartsWith("virDomainBlockCommit", StringComparison.Ordinal));
        Assert.Equal(template, Tool.Sha256(dom.File("template.qcow2")));
        Assert.True(Tool.ReadsPattern(dom.File("other-vm.qcow2"), 0x71, "0", "1M"));

        Engine.BlockCommit(Uri, request with { Force = true }, ctx);
        Assert.Equal(dom.File("template.qcow2"), dom.ActiveImage());
        Assert.Contains(ctx.Warnings, w => w.Contains("other-vm.qcow2", StringComparison.Ordinal));
        Assert.True(Tool.ReadsPattern(dom.File("other-vm.qcow2"), 0x72, "0", "1M")); // exactly what -Force accepted
    }
}
