using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Offline;

/// <summary>
/// Backing names that are relative, absolute, symlinked or in another directory: the module must follow them to
/// the very files qemu opens (qemu-img info --backing-chain is the judge), and a commit or pull that rewrites a
/// relative name must write one that qemu resolves to the intended base.
/// </summary>
public sealed class BackingNameResolutionTests
{
    private static readonly OfflineEngine Engine = OfflineEngine.Default;

    /// <summary>
    /// Layouts under a root R, each naming the image to open. "real/deep/er" is a real directory; "l" is a symlink
    /// to it (one level up instead of three), "lf.qcow2" a symlink to a file in it.
    /// </summary>
    public static IEnumerable<object[]> Layouts() => new[]
    {
        // "../../base.qcow2" recorded in real/deep/er/top: through the symlinked dir qemu still reaches real/base.
        new object[] { "dotdot_walked_from_the_symlinked_directorys_real_place", "l/top.qcow2", "real/deep/er/top.qcow2=../../base.qcow2", "real/base.qcow2=" },
        // The same image opened by its real path.
        new object[] { "dotdot_from_the_real_directory", "real/deep/er/top.qcow2", "real/deep/er/top.qcow2=../../base.qcow2", "real/base.qcow2=" },
        // A relative name in an overlay opened through a file symlink: relative to the symlink's directory (qemu does
        // not resolve the overlay's own symlink), so R/base.qcow2, not real/base.qcow2.
        new object[] { "relative_to_the_file_symlinks_own_directory", "lf.qcow2", "real/deep/er/top.qcow2=base.qcow2", "real/deep/er/base.qcow2=", "base.qcow2=" },
        // Same, where only the real directory has a base: qemu finds none; the module must report it missing.
        new object[] { "file_symlink_whose_relative_backing_exists_only_beside_the_target", "lf.qcow2", "real/deep/er/top.qcow2=mid.qcow2", "real/deep/er/mid.qcow2=" },
        // An absolute name through the symlinked directory, then ".." from there.
        new object[] { "absolute_name_through_a_symlinked_directory_then_dotdot", "real/deep/er/top.qcow2", "real/deep/er/top.qcow2=@R/l/mid.qcow2", "real/deep/er/mid.qcow2=../../base.qcow2", "real/base.qcow2=" },
        // A name into another directory, and a backing file that is itself a symlink.
        new object[] { "relative_name_into_another_directory_and_a_symlinked_backing_file", "real/top.qcow2", "real/top.qcow2=deep/er/mid.qcow2", "real/deep/er/mid.qcow2=../../bl.qcow2", "real/base.qcow2=" },
    };

    private static string Build(TempDirectory dir, string[] images)
    {
        var root = dir.Path;
        Directory.CreateDirectory(Path.Combine(root, "real/deep/er"));
        File.CreateSymbolicLink(Path.Combine(root, "l"), "real/deep/er");
        File.CreateSymbolicLink(Path.Combine(root, "lf.qcow2"), "real/deep/er/top.qcow2");
        File.CreateSymbolicLink(Path.Combine(root, "real/bl.qcow2"), "base.qcow2");
        byte pattern = 1;
        // Bases first: the list names top-down, qemu-img create wants the backing to exist only for its size.
        foreach (var spec in images.Reverse())
        {
            var (file, backing) = (spec.Split('=')[0], spec.Split('=')[1].Replace("@R", root, StringComparison.Ordinal));
            var full = Path.Combine(root, file);
            if (backing.Length == 0) Tool.CreateQcow2(full, "8M");
            else Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", "qcow2", full, "8M").EnsureSuccess();
            Tool.WritePattern(full, pattern, $"{pattern - 1}M", "1M");
            pattern++;
        }
        return root;
    }

    /// <summary>The files qemu-img opens for the chain of <paramref name="image"/>, as identities; null when qemu cannot open it.</summary>
    private static List<FileIdentity>? QemuChain(string image)
    {
        var result = Tool.Run("qemu-img", "info", "-U", "--output=json", "--backing-chain", image);
        if (result.ExitCode != 0) return null;
        using var doc = JsonDocument.Parse(result.StdOut);
        return doc.RootElement.EnumerateArray().Select(e => HostFile.Describe(e.GetProperty("filename").GetString()!).Identity).ToList();
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Backing_names_resolve_to_the_files_qemu_img_opens(string fault, string open, params string[] images)
    {
        using var dir = new TempDirectory("bn");
        var root = Build(dir, images);
        var image = Path.Combine(root, open);
        var qemu = QemuChain(image);
        var chain = Engine.GetChain(image, new RecordingOperationContext());
        if (qemu is null)
        {
            Assert.False(chain.IsComplete, $"{fault}: qemu-img cannot open the chain, the module says {chain}");
            Assert.Equal(ChainLayerState.Missing, chain.Base.State);
            return;
        }
        Assert.True(chain.IsComplete, $"{fault}: qemu-img opens the chain, the module says {chain}");
        Assert.Equal(qemu, chain.Layers.Select(l => HostFile.Describe(l.Path).Identity).ToList());
        // Get-KvmDiskImage's own backing path agrees too.
        Assert.Equal(qemu[1], HostFile.Describe(Engine.GetImage(image, new RecordingOperationContext()).BackingFileFullPath!).Identity);
    }

    /// <summary>The defect: a commit through a symlinked directory wrote "../base.qcow2" measured from the symlink's
    /// spelling, which the kernel walks from the real directory: the overlay lost its backing file and the
    /// commit reported success.</summary>
    [Fact]
    public void Commit_through_a_symlinked_directory_rewrites_a_relative_backing_name_qemu_resolves_to_the_base()
    {
        using var dir = new TempDirectory("bn");
        var root = Build(dir, new[] { "real/deep/er/top.qcow2=mid.qcow2", "real/deep/er/mid.qcow2=@R/real/base.qcow2", "real/base.qcow2=" });
        var image = Path.Combine(root, "l/top.qcow2");
        var before = OfflineAssert.Snapshot(image, dir.File("before.raw"));
        var ctx = new RecordingOperationContext();

        var result = Engine.Commit(Engine.PlanCommit(new CommitRequest { Path = image, Top = "mid.qcow2", Force = true }, ctx), ctx);

        Assert.True(result.Chain.IsComplete, result.Chain.ToString());
        Assert.Equal(new[] { HostFile.Describe(image).Identity, HostFile.Describe(Path.Combine(root, "real/base.qcow2")).Identity }, QemuChain(image));
        Assert.Equal(QemuChain(image), result.Chain.Layers.Select(l => HostFile.Describe(l.Path).Identity).ToList());
        OfflineAssert.SameContent(before, image);
    }

    [Fact]
    public void Pull_through_a_symlinked_directory_rewrites_a_relative_backing_name_qemu_resolves_to_the_base()
    {
        using var dir = new TempDirectory("bn");
        var root = Build(dir, new[] { "real/deep/er/top.qcow2=mid.qcow2", "real/deep/er/mid.qcow2=@R/real/base.qcow2", "real/base.qcow2=" });
        var image = Path.Combine(root, "l/top.qcow2");
        var before = OfflineAssert.Snapshot(image, dir.File("before.raw"));
        var ctx = new RecordingOperationContext();

        var result = Engine.Pull(Engine.PlanPull(new PullRequest { Path = image, Base = Path.Combine(root, "real/base.qcow2") }, ctx), ctx);

        Assert.True(result.Chain.IsComplete, result.Chain.ToString());
        Assert.Equal(new[] { HostFile.Describe(image).Identity, HostFile.Describe(Path.Combine(root, "real/base.qcow2")).Identity }, QemuChain(image));
        OfflineAssert.SameContent(before, image);
    }
    /// <summary>
    /// The defect: the store scan found the chain's own overlay again under its real path and counted it as
    /// another image using the layer, so a plain commit through the symlinked directory was refused (ChainBaseShared).
    /// </summary>
    [Fact]
    public void Commit_through_a_symlinked_directory_does_not_count_the_chains_own_files_as_other_users()
    {
        using var dir = new TempDirectory("bn");
        var root = Build(dir, new[] { "real/deep/er/top.qcow2=mid.qcow2", "real/deep/er/mid.qcow2=@R/real/base.qcow2", "real/base.qcow2=" });
        var image = Path.Combine(root, "l/top.qcow2");
        var before = OfflineAssert.Snapshot(image, dir.File("before.raw"));
        var ctx = new RecordingOperationContext();

        var plan = Engine.PlanCommit(new CommitRequest { Path = image, Top = "mid.qcow2" }, ctx);
        Assert.Empty(plan.AffectedImages);
        Assert.Empty(ctx.Warnings);
        var result = Engine.Commit(plan, ctx);
        Assert.Equal(QemuChain(image), result.Chain.Layers.Select(l => HostFile.Describe(l.Path).Identity).ToList());
        OfflineAssert.SameContent(before, image);
        // A real other user is still seen: an image beside the chain's real files that uses the base.
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "../../base.qcow2", "-F", "qcow2", Path.Combine(root, "real/deep/er/other.qcow2")).EnsureSuccess();
        var e = Assert.Throws<KvmSnapshotException>(() => Engine.PlanCommit(new CommitRequest { Path = image }, new RecordingOperationContext()));
        Assert.Equal(ErrorIds.ChainBaseShared, e.ErrorId);
        Assert.Contains("other.qcow2", e.Message, StringComparison.Ordinal);
    }
    /// <summary>
    /// The catalog remembers which directory a ".." walks to, for one operation only: a directory symlink re-pointed
    /// between two calls is walked anew by the second, although the overlay (one file, hard-linked in both places, so
    /// the session's header cache keeps its facts) did not change. qemu-img is the judge both times.
    /// </summary>
    [Fact]
    public void A_directory_symlink_re_pointed_between_two_calls_is_walked_anew_by_the_second()
    {
        using var dir = new TempDirectory("bn");
        var root = Build(dir, new[] { "real/deep/er/top.qcow2=../../base.qcow2", "real/base.qcow2=" });
        Directory.CreateDirectory(Path.Combine(root, "other/deep/er"));
        Tool.CreateQcow2(Path.Combine(root, "other/base.qcow2"), "8M");
        Tool.Run("ln", Path.Combine(root, "real/deep/er/top.qcow2"), Path.Combine(root, "other/deep/er/top.qcow2")).EnsureSuccess();
        var image = Path.Combine(root, "l/top.qcow2");
        var cache = new HeaderCache(racyWindow: TimeSpan.Zero);
        var engine = new OfflineEngine(KvmSnapshot.QemuImg.QemuImgCommands.Default, headerCache: cache);

        IReadOnlyList<FileIdentity> Module() => engine.GetChain(image, new RecordingOperationContext()).Layers.Select(l => HostFile.Describe(l.Path).Identity).ToList();
        IReadOnlyList<FileIdentity> Scanned() => engine.ScanStore(Path.Combine(root, "l"), recurse: false, new RecordingOperationContext())
            .Single().Layers.Select(l => HostFile.Describe(l.Path).Identity).ToList();
        var realBase = HostFile.Describe(Path.Combine(root, "real/base.qcow2")).Identity;
        var otherBase = HostFile.Describe(Path.Combine(root, "other/base.qcow2")).Identity;

        Assert.Equal(realBase, QemuChain(image)![1]);
        Assert.Equal(QemuChain(image), Module());
        Assert.Equal(QemuChain(image), Scanned());

        File.Delete(Path.Combine(root, "l"));
        File.CreateSymbolicLink(Path.Combine(root, "l"), "other/deep/er");
        var hits = cache.Hits;

        Assert.Equal(otherBase, QemuChain(image)![1]);
        Assert.Equal(QemuChain(image), Module());
        Assert.Equal(QemuChain(image), Scanned());
        Assert.True(cache.Hits > hits, "the overlay's header facts came from the session's cache");
    }
}
