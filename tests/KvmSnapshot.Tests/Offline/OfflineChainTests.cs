using System;
using System.IO;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Offline;

/// <summary>GetChain, ScanStore, TestChain, and commit/pull planning and safety, against real files.</summary>
public sealed class OfflineChainTests
{
    private static readonly OfflineEngine Engine = OfflineEngine.Default;

    /// <summary>base &lt;- mid &lt;- top with a distinct pattern in each layer.</summary>
    private static void ThreeLayers(TempDirectory dir, bool relative = true)
    {
        Tool.CreateQcow2(dir.File("base.qcow2"), "8M");
        Tool.WritePattern(dir.File("base.qcow2"), 0x01, "0", "3M");
        Tool.CreateQcow2(dir.File("mid.qcow2"), null, relative ? "base.qcow2" : dir.File("base.qcow2"));
        Tool.WritePattern(dir.File("mid.qcow2"), 0x02, "1M", "2M");
        Tool.CreateQcow2(dir.File("top.qcow2"), null, relative ? "mid.qcow2" : dir.File("mid.qcow2"));
        Tool.WritePattern(dir.File("top.qcow2"), 0x03, "2M", "1M");
    }

    [Fact]
    public void GetChain_and_ScanStore()
    {
        using var dir = new TempDirectory("oc");
        ThreeLayers(dir);
        Tool.CreateQcow2(dir.File("other.qcow2"), null, "base.qcow2");

        var chain = Engine.GetChain(dir.File("top.qcow2"), new RecordingOperationContext());
        Assert.Equal(new[] { "top.qcow2", "mid.qcow2", "base.qcow2" }, OfflineAssert.Names(chain));
        Assert.All(chain.Layers, l => Assert.Empty(l.ReferencedBy));

        var ctx = new RecordingOperationContext();
        var store = Engine.ScanStore(dir.Path, false, ctx);
        Assert.Equal(new[] { "other.qcow2", "top.qcow2" }, store.Select(c => c.Active.Name));
        Assert.Equal(new[] { dir.File("mid.qcow2"), dir.File("other.qcow2") }, store[1].Base.ReferencedBy);
        Assert.Contains(ctx.VerboseMessages, v => v.Contains("Read 4 image headers"));

        OfflineAssert.Fails(ErrorIds.DiskImageNotFound, () => Engine.GetChain(dir.File("none.qcow2"), new RecordingOperationContext()));
        OfflineAssert.Fails(ErrorIds.DiskImageNotFound, () => Engine.ScanStore(dir.File("nodir"), false, new RecordingOperationContext()));
    }

    [Fact]
    public void TestChain_reports_missing_loops_unspecified_formats_corruption_leaks_and_shared_bases()
    {
        using var dir = new TempDirectory("oc");
        ThreeLayers(dir);
        Tool.CreateQcow2(dir.File("other.qcow2"), null, "base.qcow2");
        KvmSnapshot.Tests.Chains.Qcow2Bytes.DropBackingFormat(dir.File("mid.qcow2"));
        var ctx = new RecordingOperationContext();

        var healthy = Engine.TestChain(Engine.GetChain(dir.File("top.qcow2"), ctx), null, true, ctx);
        Assert.False(healthy.Passed, "an unrecorded backing format fails the chain: libvirt refuses it");
        Assert.Contains(healthy.Problems, p => p.Kind == ChainProblemKind.BackingFormatUnspecified && p.Severity == ChainProblemSeverity.Error && p.Image == dir.File("mid.qcow2"));
        var shared = Assert.Single(healthy.Problems, p => p.Kind == ChainProblemKind.SharedBase);
        Assert.Equal(dir.File("base.qcow2"), shared.Image);
        Assert.Equal(new[] { dir.File("other.qcow2") }, shared.RelatedImages);

        var store = Engine.ScanStore(dir.Path, false, ctx);
        var fromStore = Engine.TestChain(store.Single(c => c.Active.Name == "top.qcow2"), store, false, ctx);
        Assert.Equal(new[] { dir.File("other.qcow2") }, fromStore.Problems.Single(p => p.Kind == ChainProblemKind.SharedBase).RelatedImages);

        // Leaks are a warning, corruption an error.
        Tool.Run("qemu-io", "-f", "qcow2", "-c", "write 4M 64k", "-c", "discard 4M 64k", dir.File("other.qcow2")).EnsureSuccess();
        KvmSnapshot.Tests.QemuImg.Qcow2Damage.SetRefcount(dir.File("other.qcow2"), new FileInfo(dir.File("other.qcow2")).Length / 65536 - 1, 1);
        var leaky = Engine.TestChain(Engine.GetChain(dir.File("other.qcow2"), ctx), null, true, ctx);
        Assert.True(leaky.Passed);
        Assert.Contains(leaky.Problems, p => p.Kind == ChainProblemKind.ImageLeakedClusters);
        KvmSnapshot.Tests.QemuImg.Qcow2Damage.SetRefcount(dir.File("other.qcow2"), 0, 0);
        var corrupt = Engine.TestChain(Engine.GetChain(dir.File("other.qcow2"), ctx), null, true, ctx);
        Assert.False(corrupt.Passed);
        Assert.Contains(corrupt.Problems, p => p.Kind == ChainProblemKind.ImageCorrupt && p.Image == dir.File("other.qcow2"));

        File.Delete(dir.File("base.qcow2"));
        var broken = Engine.TestChain(Engine.GetChain(dir.File("top.qcow2"), ctx), null, true, ctx);
        Assert.False(broken.Passed);
        Assert.Contains(broken.Problems, p => p.Kind == ChainProblemKind.BackingFileMissing && p.Severity == ChainProblemSeverity.Error);

        Tool.CreateQcow2(dir.File("base.qcow2"), "8M");
        Tool.Run("qemu-img", "rebase", "-u", "-b", "top.qcow2", "-F", "qcow2", dir.File("base.qcow2")).EnsureSuccess();
        var loop = Engine.TestChain(Engine.GetChain(dir.File("top.qcow2"), ctx), null, false, ctx);
        Assert.Contains(loop.Problems, p => p.Kind == ChainProblemKind.BackingChainLoop);
        Assert.False(loop.Passed);
    }

    [Fact]
    public void Commit_top_into_its_backing_file_keeps_the_view_and_relative_names()
    {
        using var dir = new TempDirectory("oc");
        ThreeLayers(dir);
        Tool.CreateQcow2(dir.File("active.qcow2"), null, "top.qcow2");
        var before = OfflineAssert.Snapshot(dir.File("active.qcow2"), dir.File("before.raw"));
        var ctx = new RecordingOperationContext();

        var plan = Engine.PlanCommit(new CommitRequest { Path = dir.File("active.qcow2"), Top = "top.qcow2" }, ctx);
        Assert.StartsWith("commit top.qcow2 down into mid.qcow2, then point active.qcow2 at mid.qcow2 (it needs up to ", plan.ToString());
        Assert.Empty(plan.AffectedImages);
        var result = Engine.Commit(plan, ctx);

        Assert.Equal(new[] { "active.qcow2", "mid.qcow2", "base.qcow2" }, OfflineAssert.Names(result.Chain));
        Assert.Equal("mid.qcow2", result.Chain.Active.BackingFile); // relative stayed relative
        Assert.Equal("qcow2", result.Chain.Active.BackingFormat);
        OfflineAssert.SameContent(before, dir.File("active.qcow2"));
        Assert.True(File.Exists(dir.File("top.qcow2")), "without RemoveMergedLayers the layer stays");
        Assert.True(Tool.ReadsPattern(dir.File("mid.qcow2"), 0x03, "2M", "1M"));
        var verbose = string.Join("\n", ctx.VerboseMessages);
        Assert.Contains($"commit -p -d -f qcow2 -b {dir.File("mid.qcow2")} {dir.File("top.qcow2")}", verbose);
        // Verified by what the merged layer held (its map before, the base's map after, both read from the cluster
        // tables without a qemu-img map process; the bytes of both).
        Assert.DoesNotContain("map -U --output=json", verbose);
        Assert.Contains("Verified the 1048576 bytes of merged data against", verbose);
        Assert.Contains("mapped from the layers' cluster tables", verbose);
        Assert.Contains($"rebase -u -f qcow2 -b mid.qcow2 -F qcow2 {dir.File("active.qcow2")}", verbose);
        Assert.Contains("qemu-img commit", ctx.CompletedActivities);
    }

    [Fact]
    public void Commit_range_with_absolute_names_and_RemoveMergedLayers_deletes_only_unused_layers()
    {
        using var dir = new TempDirectory("oc");
        ThreeLayers(dir, relative: false);
        Tool.CreateQcow2(dir.File("active.qcow2"), null, dir.File("top.qcow2"));
        Tool.CreateQcow2(dir.File("clone.qcow2"), null, "top.qcow2"); // another user of top: top must stay
        var before = OfflineAssert.Snapshot(dir.File("active.qcow2"), dir.File("before.raw"));
        var cloneBefore = OfflineAssert.Snapshot(dir.File("clone.qcow2"), dir.File("clone-before.raw"));

        var plan = Engine.PlanCommit(new CommitRequest { Path = dir.File("active.qcow2"), Top = dir.File("top.qcow2"), Base = "base.qcow2", RemoveMergedLayers = true }, new RecordingOperationContext());
        Assert.Equal(new[] { "top.qcow2", "mid.qcow2" }, plan.MergedLayers.Select(l => l.Name));
        var result = Engine.Commit(plan, new RecordingOperationContext());

        Assert.Equal(new[] { "active.qcow2", "base.qcow2" }, OfflineAssert.Names(result.Chain));
        Assert.Equal(dir.File("base.qcow2"), result.Chain.Active.BackingFile); // absolute stayed absolute
        OfflineAssert.SameContent(before, dir.File("active.qcow2"));
        OfflineAssert.SameContent(cloneBefore, dir.File("clone.qcow2"));
        Assert.True(File.Exists(dir.File("top.qcow2")));
        Assert.True(File.Exists(dir.File("mid.qcow2")), "mid is still top's backing file, and top is kept");
        Assert.Empty(result.RemovedLayers);
        Assert.Equal(2, result.KeptLayers.Count);
        Assert.Contains("clone.qcow2", result.KeptLayers[0]);

        File.Delete(dir.File("clone.qcow2"));
        Tool.CreateQcow2(dir.File("a2.qcow2"), null, "base.qcow2");
        Tool.CreateQcow2(dir.File("t2.qcow2"), null, "a2.qcow2");
        var second = Engine.Commit(Engine.PlanCommit(new CommitRequest { Path = dir.File("t2.qcow2"), Top = "a2.qcow2", RemoveMergedLayers = true, Force = true }, new RecordingOperationContext()), new RecordingOperationContext());
        Assert.True(second.RemovedLayers.SequenceEqual(new[] { dir.File("a2.qcow2") }), string.Join(Environment.NewLine, second.KeptLayers));
        Assert.False(File.Exists(dir.File("a2.qcow2")));
    }

    [Fact]
    public void Commit_of_the_active_image_keeps_it_and_its_data()
    {
        using var dir = new TempDirectory("oc");
        ThreeLayers(dir);
        var before = OfflineAssert.Snapshot(dir.File("top.qcow2"), dir.File("before.raw"));

        var plan = Engine.PlanCommit(new CommitRequest { Path = dir.File("top.qcow2") }, new RecordingOperationContext());
        Assert.Null(plan.Overlay);
        Assert.StartsWith("commit top.qcow2 down into mid.qcow2 (it needs up to ", plan.ToString());
        var result = Engine.Commit(plan, new RecordingOperationContext());

        OfflineAssert.SameContent(before, dir.File("mid.qcow2"));
        OfflineAssert.SameContent(before, dir.File("top.qcow2"));
        Assert.Equal(3, result.Chain.Depth);
    }

    [Fact]
    public void Commit_refuses_when_other_images_would_see_their_disk_change_and_Force_overrides()
    {
        using var dir = new TempDirectory("oc");
        ThreeLayers(dir);
        // Deeper below the chain's parent folder than the neighbour scan goes: found only through -SearchDirectories.
        Directory.CreateDirectory(dir.File("far/away/below"));
        Tool.CreateQcow2(dir.File("far/away/below/user-of-mid.qcow2"), null, dir.File("mid.qcow2"));
        Tool.CreateQcow2(dir.File("user-of-base.qcow2"), null, "base.qcow2");

        // Committing top into mid changes what user-of-mid sees.
        Engine.PlanCommit(new CommitRequest { Path = dir.File("top.qcow2") }, new RecordingOperationContext());
        var e = OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.ChainBaseShared,
            ctx => Engine.PlanCommit(new CommitRequest { Path = dir.File("top.qcow2"), SearchDirectories = new[] { dir.File("far") } }, ctx));
        Assert.Contains(dir.File("far/away/below/user-of-mid.qcow2"), e.Message);

        // Committing down to base touches base, which user-of-base uses.
        var e2 = OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.ChainBaseShared,
            ctx => Engine.PlanCommit(new CommitRequest { Path = dir.File("top.qcow2"), Base = "base.qcow2" }, ctx));
        Assert.Contains(dir.File("user-of-base.qcow2"), e2.Message);
        Assert.DoesNotContain("user-of-mid", e2.Message);

        var ctx2 = new RecordingOperationContext();
        var forced = Engine.PlanCommit(new CommitRequest { Path = dir.File("top.qcow2"), Base = "base.qcow2", Force = true }, ctx2);
        Assert.Equal(new[] { dir.File("user-of-base.qcow2") }, forced.AffectedImages);
        Assert.Single(ctx2.Warnings);
    }

    [Fact]
    public void Commit_bad_input_changes_nothing()
    {
        using var dir = new TempDirectory("oc");
        ThreeLayers(dir);
        Tool.CreateQcow2(dir.File("stranger.qcow2"), "8M");
        Tool.CreateQcow2(dir.File("orphan.qcow2"), "1M");
        Tool.Run("qemu-img", "rebase", "-u", "-b", "gone.qcow2", "-F", "qcow2", dir.File("orphan.qcow2")).EnsureSuccess();
        Tool.CreateQcow2(dir.File("j.qcow2"), "1M");
        Tool.Run("qemu-img", "rebase", "-u", "-b", "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"" + dir.File("base.qcow2") + "\"}}", "-F", "qcow2", dir.File("j.qcow2")).EnsureSuccess();
        Tool.CreateQcow2(dir.File("l1.qcow2"), "1M");
        Tool.CreateQcow2(dir.File("l2.qcow2"), null, "l1.qcow2");
        Tool.Run("qemu-img", "rebase", "-u", "-b", "l2.qcow2", "-F", "qcow2", dir.File("l1.qcow2")).EnsureSuccess();

        void Refused(string id, CommitRequest r) => OfflineAssert.FailsAndChangesNothing(dir.Path, id, ctx => Engine.Commit(Engine.PlanCommit(r, ctx), ctx));
        Refused(ErrorIds.ChainLayerNotFound, new CommitRequest { Path = dir.File("top.qcow2"), Top = dir.File("stranger.qcow2") });
        Refused(ErrorIds.ChainLayerNotFound, new CommitRequest { Path = dir.File("top.qcow2"), Top = "nosuch.qcow2" });
        Refused(ErrorIds.ChainLayerNotFound, new CommitRequest { Path = dir.File("top.qcow2"), Top = "base.qcow2" });
        Refused(ErrorIds.ChainBaseAboveTop, new CommitRequest { Path = dir.File("top.qcow2"), Top = "mid.qcow2", Base = "top.qcow2" });
        Refused(ErrorIds.ChainBaseAboveTop, new CommitRequest { Path = dir.File("top.qcow2"), Top = "mid.qcow2", Base = "mid.qcow2" });
        Refused(ErrorIds.DiskImageNotFound, new CommitRequest { Path = dir.File("none.qcow2") });
        Refused(ErrorIds.BackingFileMissing, new CommitRequest { Path = dir.File("orphan.qcow2") });
        Refused(ErrorIds.BackingFileNotFollowed, new CommitRequest { Path = dir.File("j.qcow2") });
        Refused(ErrorIds.BackingChainLoop, new CommitRequest { Path = dir.File("l2.qcow2") });
    }

    [Fact]
    public void A_plan_made_stale_by_a_change_on_disk_is_refused()
    {
        using var dir = new TempDirectory("oc");
        ThreeLayers(dir);
        var plan = Engine.PlanCommit(new CommitRequest { Path = dir.File("top.qcow2") }, new RecordingOperationContext());
        Tool.Run("qemu-img", "rebase", "-u", "-b", "base.qcow2", "-F", "qcow2", dir.File("top.qcow2")).EnsureSuccess();
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.ChainLayerNotFound, ctx => Engine.Commit(plan, ctx));
    }

    [Fact]
    public void Pull_into_the_overlay_keeps_its_view_and_can_remove_the_pulled_layer()
    {
        using var dir = new TempDirectory("oc");
        ThreeLayers(dir);
        var before = OfflineAssert.Snapshot(dir.File("top.qcow2"), dir.File("before.raw"));
        var ctx = new RecordingOperationContext();

        var plan = Engine.PlanPull(new PullRequest { Path = dir.File("top.qcow2"), Base = "base.qcow2", RemoveMergedLayers = true }, ctx);
        Assert.StartsWith("pull mid.qcow2 into top.qcow2, then back it with base.qcow2 (it needs up to ", plan.ToString());
        var result = Engine.Pull(plan, ctx);

        Assert.Equal(new[] { "top.qcow2", "base.qcow2" }, OfflineAssert.Names(result.Chain));
        Assert.Equal("base.qcow2", result.Chain.Active.BackingFile);
        OfflineAssert.SameContent(before, dir.File("top.qcow2"));
        Assert.Equal(new[] { dir.File("mid.qcow2") }, result.RemovedLayers);
        Assert.False(File.Exists(dir.File("mid.qcow2")));
        Assert.Contains(ctx.VerboseMessages, v => v.Contains($"rebase -p -f qcow2 -b base.qcow2 -F qcow2 {dir.File("top.qcow2")}"));
        Assert.Contains("qemu-img rebase", ctx.CompletedActivities);
    }

    [Fact]
    public void Pull_without_base_flattens_and_keeps_layers_other_images_use()
    {
        using var dir = new TempDirectory("oc");
        ThreeLayers(dir);
        Tool.CreateQcow2(dir.File("other.qcow2"), null, "base.qcow2");
        var before = OfflineAssert.Snapshot(dir.File("top.qcow2"), dir.File("before.raw"));

        var result = Engine.Pull(Engine.PlanPull(new PullRequest { Path = dir.File("top.qcow2"), RemoveMergedLayers = true }, new RecordingOperationContext()), new RecordingOperationContext());

        Assert.Equal(1, result.Chain.Depth);
        Assert.Null(result.Chain.Active.BackingFile);
        OfflineAssert.SameContent(before, dir.File("top.qcow2"));
        Assert.Equal(new[] { dir.File("mid.qcow2") }, result.RemovedLayers);
        Assert.True(File.Exists(dir.File("base.qcow2")));
        Assert.Contains(result.KeptLayers, k => k.Contains("other.qcow2"));
    }

    [Fact]
    public void Pull_bad_input_changes_nothing()
    {
        using var dir = new TempDirectory("oc");
        ThreeLayers(dir);
        Tool.CreateQcow2(dir.File("stranger.qcow2"), "8M");
        void Refused(string id, PullRequest r) => OfflineAssert.FailsAndChangesNothing(dir.Path, id, ctx => Engine.Pull(Engine.PlanPull(r, ctx), ctx));
        Refused(ErrorIds.ChainLayerNotFound, new PullRequest { Path = dir.File("top.qcow2"), Base = dir.File("stranger.qcow2") });
        Refused(ErrorIds.ChainBaseAboveTop, new PullRequest { Path = dir.File("top.qcow2"), Base = "top.qcow2" });
        Refused(ErrorIds.ChainLayerNotFound, new PullRequest { Path = dir.File("base.qcow2") });
        Refused(ErrorIds.DiskImageNotFound, new PullRequest { Path = dir.File("none.qcow2") });
    }

    [Fact]
    public void Commit_and_pull_work_on_file_names_with_spaces_quotes_shell_metacharacters_colons_and_non_ascii()
    {
        using var dir = new TempDirectory("oc");
        var baseName = "base: \"tmpl\" ä.qcow2";
        var midName = "-mid $(touch pwned); 'x' | y.qcow2";
        var topName = "top & co`id`.qcow2";
        Tool.CreateQcow2(dir.File(baseName), "8M");
        Tool.WritePattern(dir.File(baseName), 0x01, "0", "2M");
        Tool.CreateQcow2(dir.File(midName), null, "./" + baseName);
        Tool.WritePattern(dir.File(midName), 0x02, "1M", "2M");
        Tool.CreateQcow2(dir.File(topName), null, midName);
        Tool.WritePattern(dir.File(topName), 0x03, "2M", "2M");
        Tool.CreateQcow2(dir.File("active.qcow2"), null, topName);
        var before = OfflineAssert.Snapshot(dir.File("active.qcow2"), dir.File("before.raw"));
        var ctx = new RecordingOperationContext();

        var committed = Engine.Commit(Engine.PlanCommit(new CommitRequest { Path = dir.File("active.qcow2"), Top = topName, RemoveMergedLayers = true }, ctx), ctx);
        Assert.Equal(new[] { "active.qcow2", midName, baseName }, OfflineAssert.Names(committed.Chain));
        Assert.Equal(midName, committed.Chain.Active.BackingFile);
        OfflineAssert.SameContent(before, dir.File("active.qcow2"));
        Assert.True(Engine.TestChain(committed.Chain, null, true, ctx).Passed);

        var pulled = Engine.Pull(Engine.PlanPull(new PullRequest { Path = dir.File("active.qcow2"), Base = baseName, RemoveMergedLayers = true }, ctx), ctx);
        Assert.Equal(new[] { "active.qcow2", baseName }, OfflineAssert.Names(pulled.Chain));
        // A relative name with ':' before any '/' would read as a protocol: it is written with "./" in front.
        Assert.Equal("./" + baseName, pulled.Chain.Active.BackingFile);
        OfflineAssert.SameContent(before, dir.File("active.qcow2"));
        Assert.False(File.Exists(dir.File(midName)));
        Assert.False(File.Exists(dir.File("pwned")));
        Assert.False(File.Exists(Path.Combine(Directory.GetCurrentDirectory(), "pwned")));
    }

    [Fact]
    public void Images_a_running_process_holds_are_refused_as_DiskImageInUse_without_change()
    {
        using var dir = new TempDirectory("oc");
        ThreeLayers(dir);
        // qemu-io keeps the write lock on top.qcow2 while it sleeps, as a running VM would.
        var holder = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("qemu-io")
        {
            ArgumentList = { "-f", "qcow2", "-c", "sleep 20000", dir.File("top.qcow2") },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        try
        {
            System.Threading.Thread.Sleep(500);
            Assert.False(holder.HasExited);
            OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageInUse,
                ctx => Engine.Commit(Engine.PlanCommit(new CommitRequest { Path = dir.File("top.qcow2") }, ctx), ctx));
            OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageInUse,
                ctx => Engine.Pull(Engine.PlanPull(new PullRequest { Path = dir.File("top.qcow2") }, ctx), ctx));
            OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageInUse,
                ctx => Engine.CreateInternalSnapshot(dir.File("top.qcow2"), "while running", ctx));
            // Reading works on an image in use (-U).
            Assert.Equal(3, Engine.GetChain(dir.File("top.qcow2"), new RecordingOperationContext()).Depth);
            Assert.Equal("qcow2", Engine.GetImage(dir.File("top.qcow2"), new RecordingOperationContext()).Format);
        }
        finally
        {
            holder.Kill();
            holder.WaitForExit();
        }
    }
}
