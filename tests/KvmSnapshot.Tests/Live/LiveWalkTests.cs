using System;
using System.IO;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

/// <summary>
/// The seeds' live walk: a running domain, four external disk-only snapshots with distinct guest data written
/// between them, then every way of shortening the chain. After each step the disk points at the expected file,
/// the engine's chain says so, and the guest-visible bytes are identical to before the step.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveWalkTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private static readonly LiveEngine Engine = LiveEngine.Default;

    /// <summary>
    /// base (A0 at 0, B0 at 1M, 10 at 8M) &lt;- s1 (C1 at 2M, 11 at 8M) &lt;- s2 (C2 at 3M, 12 at 8M) &lt;- s3 (C3, 13)
    /// &lt;- s4 (C4 at 5M, 14 at 8M, active). The 8M range is rewritten in every layer: a commit or pull that merged
    /// in the wrong order would show an older byte there.
    /// </summary>
    private static TestDomain FourSnapshots(string tag, RecordingOperationContext ctx)
    {
        var dom = TestDomain.Create(tag, disks: dir =>
        {
            Tool.CreateQcow2(dir.File("base.qcow2"), "64M");
            Tool.WritePattern(dir.File("base.qcow2"), 0xA0, "0", "1M");
            return new[] { new TestDisk("vda", dir.File("base.qcow2")) };
        });
        try
        {
            dom.GuestWrite("vda", 0xB0, TestDomain.Mib(1), "1M");
            dom.GuestWrite("vda", 0x10, TestDomain.Mib(8), "1M");
            for (var i = 1; i <= 4; i++)
            {
                var snapshot = Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest
                {
                    Name = $"sn{i}",
                    DiskOnly = true,
                    Atomic = true,
                    DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = dom.File($"s{i}.qcow2") } },
                }, ctx);
                Assert.Equal((SnapshotLocation.External, "disk-snapshot"), (snapshot.Location, snapshot.State));
                Assert.Equal(dom.File($"s{i}.qcow2"), dom.ActiveImage());
                dom.GuestWrite("vda", (byte)(0xC0 + i), TestDomain.Mib(1 + i), "1M");
                dom.GuestWrite("vda", (byte)(0x10 + i), TestDomain.Mib(8), "1M");
            }
            return dom;
        }
        catch
        {
            dom.Dispose();
            throw;
        }
    }

    private static void AssertExpectedData(TestDomain dom)
    {
        Assert.True(dom.GuestReads("vda", 0xA0, "0", "1M"));
        Assert.True(dom.GuestReads("vda", 0xB0, TestDomain.Mib(1), "1M"));
        for (var i = 1; i <= 4; i++) Assert.True(dom.GuestReads("vda", (byte)(0xC0 + i), TestDomain.Mib(1 + i), "1M"), $"C{i}");
        Assert.True(dom.GuestReads("vda", 0x14, TestDomain.Mib(8), "1M"));
    }

    private static void AssertChain(TestDomain dom, params string[] files)
    {
        var expected = files.Select(dom.File).ToArray();
        Assert.Equal(expected[0], dom.ActiveImage());
        var chain = Assert.Single(Engine.GetChains(Uri, dom.Name, "vda", new RecordingOperationContext()));
        Assert.Equal(expected, chain.Layers.Select(l => l.Path));
        Assert.True(chain.IsComplete);
        Assert.False(dom.HasBlockJob());
    }

    [Fact]
    public void Seeds_live_walk_commit_active_commit_pull_and_stale_metadata()
    {
        var ctx = new RecordingOperationContext();

        // 1. One domain: commit sn2..sn3 into sn1 in one job, then the active layer into its base with pivot.
        using (var dom = FourSnapshots("walk1", ctx))
        {
            AssertChain(dom, "s4.qcow2", "s3.qcow2", "s2.qcow2", "s1.qcow2", "base.qcow2");
            AssertExpectedData(dom);
            var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));

            Assert.Null(Engine.BlockCommit(Uri, new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Top = dom.File("s3.qcow2"), Base = dom.File("s1.qcow2") }, ctx));
            AssertChain(dom, "s4.qcow2", "s1.qcow2", "base.qcow2");
            Assert.True(dom.GuestViewEquals("vda", before));
            Assert.Contains(ctx.VerboseMessages, m => m.StartsWith($"virDomainBlockCommit(dom='{dom.Name}', disk='vda', base='{dom.File("s1.qcow2")}', top='{dom.File("s3.qcow2")}', bandwidth=0, flags=0)", StringComparison.Ordinal));
            Assert.Contains(ctx.VerboseMessages, m => m.Contains("Completed", StringComparison.Ordinal)); // woken by the event

            // s2.qcow2, merged above, still names s1 as its backing file: committing into s1 changes what it shows.
            // Refused (nothing started) until Force says the leftover may change.
            var activeCommit = new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Base = dom.File("s1.qcow2"), Pivot = true };
            var shared = Assert.Throws<KvmSnapshotException>(() => Engine.BlockCommit(Uri, activeCommit, ctx));
            Assert.Equal(ErrorIds.ChainBaseShared, shared.ErrorId);
            Assert.Contains(dom.File("s2.qcow2"), shared.Message, StringComparison.Ordinal);
            AssertChain(dom, "s4.qcow2", "s1.qcow2", "base.qcow2");
            Assert.Null(Engine.BlockCommit(Uri, activeCommit with { Force = true }, ctx));
            Assert.Contains(ctx.Warnings, w => w.Contains("Proceeding because of -Force", StringComparison.Ordinal));
            AssertChain(dom, "s1.qcow2", "base.qcow2");
            Assert.True(dom.GuestViewEquals("vda", before));
            AssertExpectedData(dom);
            Assert.Contains(ctx.VerboseMessages, m => m.StartsWith($"virDomainBlockCommit(dom='{dom.Name}', disk='vda', base='{dom.File("s1.qcow2")}', top=NULL, bandwidth=0, flags=Active)", StringComparison.Ordinal));
            Assert.Contains(ctx.VerboseMessages, m => m == $"virDomainBlockJobAbort(dom='{dom.Name}', disk='vda', flags=Pivot)");

            // sn2..sn4 describe overlays that are no longer in the chain: drop only libvirt's records of them.
            foreach (var stale in new[] { "sn4", "sn3", "sn2" })
            {
                Engine.DeleteSnapshot(Uri, dom.Name, stale, new DeleteSnapshotOptions { MetadataOnly = true }, ctx);
            }
            Assert.Equal(new[] { "sn1" }, Engine.GetSnapshots(Uri, dom.Name, null, false, ctx).Select(s => s.Name));
            Assert.All(new[] { "s2.qcow2", "s3.qcow2", "s4.qcow2" }, f => Assert.True(File.Exists(dom.File(f)), f));
            AssertChain(dom, "s1.qcow2", "base.qcow2");
            Assert.True(dom.GuestViewEquals("vda", before));
        }

        // 2. A fresh chain: the same range committed as two jobs ends in the same chain and the same bytes.
        using (var dom = FourSnapshots("walk2", ctx))
        {
            var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));
            Engine.BlockCommit(Uri, new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Top = dom.File("s2.qcow2"), Shallow = true }, ctx);
            AssertChain(dom, "s4.qcow2", "s3.qcow2", "s1.qcow2", "base.qcow2");
            Assert.True(dom.GuestViewEquals("vda", before));
            Assert.Contains(ctx.VerboseMessages, m => m.StartsWith($"virDomainBlockCommit(dom='{dom.Name}', disk='vda', base=NULL, top='{dom.File("s2.qcow2")}', bandwidth=0, flags=Shallow)", StringComparison.Ordinal));

            // The first job's leftover s2.qcow2 still uses s1: the second job needs Force (see above).
            var second = new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Top = dom.File("s3.qcow2"), Base = dom.File("s1.qcow2") };
            Assert.Equal(ErrorIds.ChainBaseShared, Assert.Throws<KvmSnapshotException>(() => Engine.BlockCommit(Uri, second, ctx)).ErrorId);
            Engine.BlockCommit(Uri, second with { Force = true }, ctx);
            AssertChain(dom, "s4.qcow2", "s1.qcow2", "base.qcow2");
            Assert.True(dom.GuestViewEquals("vda", before));
            AssertExpectedData(dom);
        }

        // 3. A fresh chain: pull sn1..sn3 into the active layer, then the rest (full pull).
        using (var dom = FourSnapshots("walk3", ctx))
        {
            var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));
            Assert.Null(Engine.BlockPull(Uri, new BlockPullRequest { Domain = dom.Name, Disk = "vda", Base = dom.File("base.qcow2") }, ctx));
            AssertChain(dom, "s4.qcow2", "base.qcow2");
            Assert.True(dom.GuestViewEquals("vda", before));
            Assert.Contains(ctx.VerboseMessages, m => m.StartsWith($"virDomainBlockRebase(dom='{dom.Name}', disk='vda', base='{dom.File("base.qcow2")}'", StringComparison.Ordinal));

            Engine.BlockPull(Uri, new BlockPullRequest { Domain = dom.Name, Disk = "vda" }, ctx);
            AssertChain(dom, "s4.qcow2");
            Assert.True(dom.GuestViewEquals("vda", before));
            AssertExpectedData(dom);
            Assert.Contains(ctx.VerboseMessages, m => m.StartsWith($"virDomainBlockPull(dom='{dom.Name}', disk='vda', bandwidth=0, flags=0)", StringComparison.Ordinal));
        }

        // Every progress bar that was started was also completed.
        Assert.All(ctx.ProgressReports.Select(p => p.Activity).Distinct(), a => Assert.Contains(a, ctx.CompletedActivities));
    }
}
