using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Offline;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

/// <summary>
/// Two users of one disk at once: a second block job on a disk that has one, and offline (-Path) commits, pulls
/// and internal snapshots on the images a running domain uses. The loser gets a typed error; nothing changes.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveConcurrencyTests
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
    public void Second_block_job_on_a_busy_disk_is_refused_as_BlockJobActive_and_changes_nothing()
    {
        using var dom = ChainWithData("twojobs");
        var ctx = new RecordingOperationContext();
        var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));
        // Planned while the disk was free: the start must still see the job another session started meanwhile.
        var stalePlan = Engine.PlanBlockPull(Uri, new BlockPullRequest { Domain = dom.Name, Disk = "vda" }, ctx);
        // The first job: 16 MiB at 1 MiB/s keeps it running for the whole test.
        Engine.BlockCommit(Uri, new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Top = dom.File("s1.qcow2"), Base = dom.File("base.qcow2"), Bandwidth = OneMiBPerSecond, NoWait = true }, ctx);
        try
        {
            void Refused(Action second)
            {
                var e = Assert.ThrowsAny<KvmSnapshotException>(second);
                Assert.Equal((ErrorIds.BlockJobActive, KvmErrorKind.ResourceBusy, (object)$"{dom.Name}/vda"), (e.ErrorId, e.Category, e.Target));
                Assert.Contains("Commit job already runs", e.Message, StringComparison.Ordinal);
            }

            Refused(() => Engine.BlockCommit(Uri, new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Top = dom.File("s1.qcow2"), Base = dom.File("base.qcow2") }, ctx));
            Refused(() => Engine.BlockCommit(Uri, new BlockCommitRequest { Domain = dom.Name, Disk = "vda", Base = dom.File("s1.qcow2"), Pivot = true }, ctx));
            Refused(() => Engine.BlockPull(Uri, new BlockPullRequest { Domain = dom.Name, Disk = "vda" }, ctx));
            Refused(() => Engine.BlockPull(Uri, new BlockPullRequest { Domain = dom.Name, Disk = "vda", Base = dom.File("base.qcow2"), NoWait = true }, ctx));
            Refused(() => Engine.BlockPull(Uri, stalePlan, ctx));

            // As users see it: the cmdlet's ErrorRecord, and -WhatIf says the same before anything.
            using (var ps = new KvmSnapshot.Tests.Hosting.PowerShellSession())
            {
                foreach (var script in new[] { "Invoke-KvmBlockPull -Domain $args[0] -Disk vda -Confirm:$false -ConnectionUri $args[1]", "Invoke-KvmBlockCommit -Domain $args[0] -Disk vda -Pivot -WhatIf -ConnectionUri $args[1]" })
                {
                    var error = ps.Run(script, dom.Name, Uri).SingleError();
                    Assert.StartsWith("BlockJobActive,KvmSnapshot.Cmdlets.", error.FullyQualifiedErrorId, StringComparison.Ordinal);
                    Assert.Equal(ErrorCategory.ResourceBusy, error.CategoryInfo.Category);
                }
            }

            // The first job is the one still running, untouched.
            var job = Assert.Single(Engine.GetBlockJobs(Uri, dom.Name, "vda", ctx));
            Assert.Equal(BlockJobType.Commit, job.Type);
            Assert.Equal(1, ctx.VerboseMessages.Count(m => m.StartsWith("virDomainBlockCommit", StringComparison.Ordinal)));
            Assert.DoesNotContain(ctx.VerboseMessages, m => m.StartsWith("virDomainBlockPull", StringComparison.Ordinal) || m.StartsWith("virDomainBlockRebase", StringComparison.Ordinal));
        }
        finally
        {
            Engine.AbortBlockJob(Uri, dom.Name, "vda", async: false, ctx);
        }
        Assert.Equal(new[] { "s2.qcow2", "s1.qcow2", "base.qcow2" }, ChainFiles(dom));
        Assert.True(dom.GuestViewEquals("vda", before));
    }

    [Fact]
    public void Offline_commit_pull_and_snapshot_on_a_running_domains_images_are_refused_as_DiskImageInUse_and_change_nothing()
    {
        using var dom = ChainWithData("offbusy");
        var offline = OfflineEngine.Default;
        var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));
        var raw = Path.GetFileName(before);
        dom.Suspend(); // nothing writes while the tree is hashed; QEMU keeps its image locks while paused
        var hashes = Tool.HashTree(dom.Dir);
        string Backing(string f) => Tool.Run("qemu-img", "info", "-U", "--output=json", dom.File(f)).StdOut.Split('\n').FirstOrDefault(l => l.Contains("\"backing-filename\"", StringComparison.Ordinal)) ?? "";
        var backings = new[] { "s2.qcow2", "s1.qcow2", "base.qcow2" }.Select(Backing).ToArray();

        void InUse(Action<RecordingOperationContext> call)
        {
            var ctx = new RecordingOperationContext();
            var e = Assert.ThrowsAny<KvmSnapshotException>(() => call(ctx));
            Assert.True(e.ErrorId == ErrorIds.DiskImageInUse, $"expected DiskImageInUse, got {e.ErrorId}: {e.Message}");
            Assert.Equal(KvmErrorKind.ResourceBusy, e.Category);
            // Refused by qemu's lock at the data step (commit, or the safe rebase of a pull), before any header is
            // re-pointed: no unsafe rebase ran, and nothing ran after the refused call.
            Assert.DoesNotContain(ctx.VerboseMessages, m => m.Contains(" rebase -u ", StringComparison.Ordinal));
            Assert.DoesNotContain(ctx.VerboseMessages.SkipWhile(m => !m.Contains(" commit ", StringComparison.Ordinal) && !m.Contains(" rebase ", StringComparison.Ordinal) && !m.Contains(" snapshot ", StringComparison.Ordinal)).Skip(1),
                m => m.Contains("/qemu-img ", StringComparison.Ordinal));
        }

        // -Force skips the module's own "a domain uses this" guard, so qemu's lock is what stops each of these.
        InUse(ctx => offline.Commit(offline.PlanCommit(new CommitRequest { Path = dom.File("s2.qcow2"), Top = dom.File("s1.qcow2"), Force = true }, ctx), ctx));
        InUse(ctx => offline.Commit(offline.PlanCommit(new CommitRequest { Path = dom.File("s2.qcow2"), Force = true }, ctx), ctx));
        InUse(ctx => offline.Pull(offline.PlanPull(new PullRequest { Path = dom.File("s2.qcow2"), Force = true }, ctx), ctx));
        InUse(ctx => offline.Pull(offline.PlanPull(new PullRequest { Path = dom.File("s2.qcow2"), Base = dom.File("base.qcow2"), Force = true }, ctx), ctx));
        InUse(ctx => offline.CreateInternalSnapshot(dom.File("s2.qcow2"), "offline", ctx));

        Assert.Equal(hashes, Tool.HashTree(dom.Dir));
        Assert.Equal(backings, new[] { "s2.qcow2", "s1.qcow2", "base.qcow2" }.Select(Backing).ToArray());
        Assert.Equal(new[] { "s2.qcow2", "s1.qcow2", "base.qcow2" }, ChainFiles(dom));
        Assert.True(dom.GuestViewEquals("vda", before), raw);
        Assert.False(dom.HasBlockJob());
    }
}
