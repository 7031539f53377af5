using System.IO;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Offline;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Offline;

/// <summary>
/// Issue 8 goal 2: an offline commit or pull verifies only the data the merged layers held (their qemu-img map, taken
/// before the data step), yet still catches data damaged between the data step and the verification: a typed
/// DiskImageContentMismatch, nothing re-pointed, the guest view as before. What the map check cannot read
/// (compressed clusters) falls back to qemu-img compare of the whole images.
/// </summary>
public sealed class MergedDataVerificationTests
{
    /// <summary>base (0x11 at 0-2M) &lt;- layer (0x5a at 1M-9M, zeros over 0-512k) &lt;- top (0x77 at 12M-13M).</summary>
    private static (string Top, string Layer, string Base, string Before) Chain(TempDirectory dir, bool compressLayer = false)
    {
        var baseImage = dir.File("base.qcow2");
        Tool.CreateQcow2(baseImage, "32M");
        Tool.WritePattern(baseImage, 0x11, "0", "2M");
        var layer = dir.File("layer.qcow2");
        Tool.CreateQcow2(layer, null, "base.qcow2");
        Tool.WritePattern(layer, 0x5a, "1M", "8M");
        Tool.Run("qemu-io", "-f", "qcow2", "-c", "write -z 0 512k", layer).EnsureSuccess();
        if (compressLayer)
        {
            Tool.Run("qemu-img", "convert", "-c", "-f", "qcow2", "-O", "qcow2", "-B", "base.qcow2", "-F", "qcow2", layer, dir.File("layer.c.qcow2")).EnsureSuccess();
            File.Move(dir.File("layer.c.qcow2"), layer, overwrite: true);
        }
        var top = dir.File("top.qcow2");
        Tool.CreateQcow2(top, null, "layer.qcow2");
        Tool.WritePattern(top, 0x77, "12M", "1M");
        return (top, layer, baseImage, OfflineAssert.Snapshot(top, dir.File("before.raw")));
    }

    private static string BackingOf(string image)
        => System.Text.Json.JsonDocument.Parse(Tool.Run("qemu-img", "info", "-U", "--output=json", image).EnsureSuccess().StdOut).RootElement.GetProperty("backing-filename").GetString()!;

    [Fact]
    public void Commit_verifies_by_the_merged_layers_map_and_the_result_reads_as_before()
    {
        using var dir = new TempDirectory("mdv");
        var (top, layer, baseImage, before) = Chain(dir);
        var ctx = new RecordingOperationContext();
        var engine = new OfflineEngine();

        engine.Commit(engine.PlanCommit(new CommitRequest { Path = top, Top = layer }, ctx), ctx);

        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("Verified the 8388608 bytes of merged data against", System.StringComparison.Ordinal)
            && m.Contains("mapped from the layers' cluster tables,", System.StringComparison.Ordinal));
        Assert.DoesNotContain(ctx.VerboseMessages, m => m.Contains("qemu-img compare", System.StringComparison.Ordinal) && m.StartsWith("Comparing", System.StringComparison.Ordinal));
        // Both maps (before and after the data step) came from the cluster tables: no qemu-img map process ran.
        Assert.DoesNotContain(ctx.VerboseMessages, m => m.Contains("qemu-img map", System.StringComparison.Ordinal));
        Assert.Equal("base.qcow2", BackingOf(top));
        OfflineAssert.SameContent(before, top);
        Assert.True(Tool.ReadsPattern(baseImage, 0x00, "0", "512k"), "the layer's zeroed range must read as zeros in the base");
    }

    [Fact]
    public void Commit_catches_data_damaged_after_the_data_step_and_repoints_nothing()
    {
        using var dir = new TempDirectory("mdv");
        var (top, layer, _, before) = Chain(dir);
        var ctx = new RecordingOperationContext();
        var engine = new OfflineEngine { AfterDataStep = receiver => Tool.WritePattern(receiver, 0xee, "5M", "4k") };

        var error = Assert.Throws<KvmSnapshotException>(() => engine.Commit(engine.PlanCommit(new CommitRequest { Path = top, Top = layer }, ctx), ctx));

        Assert.Equal(ErrorIds.DiskImageContentMismatch, error.ErrorId);
        Assert.Contains(ctx.VerboseMessages, m => m.Contains("differs", System.StringComparison.Ordinal) && m.Contains("guest offset 5242880", System.StringComparison.Ordinal));
        Assert.Equal("layer.qcow2", BackingOf(top));
        OfflineAssert.SameContent(before, top);
    }

    [Fact]
    public void Commit_whose_merged_layer_is_removed_after_the_data_step_is_ChainLayerNotFound_naming_it_and_repoints_nothing()
    {
        // What the Concurrency suite's two_sessions_commit_and_remove_the_merged_layer_at_once once met: the other
        // session's -RemoveMergedLayers deleted the layer between this commit's data step and its verification, which
        // reads the merged data from it (MergedDataCheck.Compare opens it).
        using var dir = new TempDirectory("mdv");
        var (top, layer, _, before) = Chain(dir);
        var ctx = new RecordingOperationContext();
        var engine = new OfflineEngine { AfterDataStep = _ => { File.Copy(layer, layer + ".kept"); File.Delete(layer); } };

        var error = Assert.Throws<KvmSnapshotException>(() => engine.Commit(engine.PlanCommit(new CommitRequest { Path = top, Top = layer }, ctx), ctx));

        Assert.Equal(ErrorIds.ChainLayerNotFound, error.ErrorId);
        Assert.Equal(KvmErrorKind.InvalidOperation, error.Category);
        Assert.Contains($"'{layer}', a layer whose data was merged", error.Message, System.StringComparison.Ordinal);
        File.Move(layer + ".kept", layer);
        Assert.Equal("layer.qcow2", BackingOf(top));
        OfflineAssert.SameContent(before, top);
    }

    [Fact]
    public void Commit_catches_a_zeroed_range_that_was_overwritten_after_the_data_step()
    {
        using var dir = new TempDirectory("mdv");
        var (top, layer, _, before) = Chain(dir);
        var ctx = new RecordingOperationContext();
        var engine = new OfflineEngine { AfterDataStep = receiver => Tool.WritePattern(receiver, 0x11, "0", "64k") };

        var error = Assert.Throws<KvmSnapshotException>(() => engine.Commit(engine.PlanCommit(new CommitRequest { Path = top, Top = layer }, ctx), ctx));

        Assert.Equal(ErrorIds.DiskImageContentMismatch, error.ErrorId);
        Assert.Equal("layer.qcow2", BackingOf(top));
        OfflineAssert.SameContent(before, top);
    }

    [Fact]
    public void Commit_whose_merged_layer_is_written_after_it_was_read_fails_the_check_and_repoints_nothing()
    {
        // The merged data is fingerprinted while qemu-img commit runs; a write to the merged layer after that (here
        // between the data step and the verification) could make the base miss it, so the check must not pass.
        using var dir = new TempDirectory("mdv");
        var (top, layer, baseImage, _) = Chain(dir);
        var ctx = new RecordingOperationContext();
        var engine = new OfflineEngine { AfterDataStep = _ => Tool.WritePattern(layer, 0x33, "2M", "4k") };

        var error = Assert.Throws<KvmSnapshotException>(() => engine.Commit(engine.PlanCommit(new CommitRequest { Path = top, Top = layer }, ctx), ctx));

        Assert.Equal(ErrorIds.DiskImageContentMismatch, error.ErrorId);
        if (ChunkFingerprint.IsSupported)
        {
            Assert.Contains(ctx.VerboseMessages, m => m.Contains($"'{layer}', a merged layer, was written while the data step ran", System.StringComparison.Ordinal));
        }
        Assert.Equal("layer.qcow2", BackingOf(top));
        Assert.True(Tool.ReadsPattern(top, 0x33, "2M", "4k"), "the overlay still reads the layer's newest data");
        Assert.True(Tool.ReadsPattern(baseImage, 0x5a, "2M", "4k"), "the base holds what the commit read");
    }

    [Fact]
    public void Pull_verifies_by_the_map_and_catches_data_damaged_after_the_data_step()
    {
        using var dir = new TempDirectory("mdv");
        var (top, _, baseImage, before) = Chain(dir);
        var ctx = new RecordingOperationContext();
        var engine = new OfflineEngine();

        engine.Pull(engine.PlanPull(new PullRequest { Path = top, Base = baseImage }, ctx), ctx);
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("Verified the", System.StringComparison.Ordinal));
        OfflineAssert.SameContent(before, top);

        using var dir2 = new TempDirectory("mdv");
        var (top2, _, base2, before2) = Chain(dir2);
        var damaging = new OfflineEngine { AfterDataStep = receiver => Tool.WritePattern(receiver, 0xee, "3M", "4k") };
        var error = Assert.Throws<KvmSnapshotException>(() => damaging.Pull(damaging.PlanPull(new PullRequest { Path = top2, Base = base2 }, ctx), ctx));
        Assert.Equal(ErrorIds.DiskImageContentMismatch, error.ErrorId);
        Assert.True(File.Exists(dir2.File("layer.qcow2")), "no layer is removed after a failed verification");
        Assert.False(Tool.SameContent(before2, top2), "the damage is real: the check had something to find");
    }

    [Fact]
    public void Pull_whose_target_is_pointed_at_another_file_after_the_data_step_is_caught_though_that_file_holds_the_same_data()
    {
        // The native map follows the chain the pull made (target, then Base); a target whose header names another
        // file by the time of the check does not give that view, even when the other file reads alike today.
        using var dir = new TempDirectory("mdv");
        var (top, _, baseImage, before) = Chain(dir);
        File.Copy(baseImage, dir.File("other.qcow2"));
        var ctx = new RecordingOperationContext();
        var engine = new OfflineEngine
        {
            AfterDataStep = receiver => Tool.Run("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "other.qcow2", "-F", "qcow2", receiver).EnsureSuccess(),
        };

        var error = Assert.Throws<KvmSnapshotException>(() => engine.Pull(engine.PlanPull(new PullRequest { Path = top, Base = baseImage }, ctx), ctx));

        Assert.Equal(ErrorIds.DiskImageContentMismatch, error.ErrorId);
        Assert.Contains(ctx.VerboseMessages, m => m.Contains("cannot be verified", System.StringComparison.Ordinal) && m.Contains("'other.qcow2' as its backing file", System.StringComparison.Ordinal));
        Assert.True(File.Exists(dir.File("layer.qcow2")), "no layer is removed after a failed verification");
        OfflineAssert.SameContent(before, top);
    }

    [Fact]
    public void Compressed_layers_fall_back_to_comparing_the_whole_images_and_still_catch_damage()
    {
        using var dir = new TempDirectory("mdv");
        var (top, layer, _, before) = Chain(dir, compressLayer: true);
        var ctx = new RecordingOperationContext();
        var engine = new OfflineEngine();
        engine.Commit(engine.PlanCommit(new CommitRequest { Path = top, Top = layer }, ctx), ctx);
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("Comparing the whole images with qemu-img compare", System.StringComparison.Ordinal));
        OfflineAssert.SameContent(before, top);

        using var dir2 = new TempDirectory("mdv");
        var (top2, layer2, _, before2) = Chain(dir2, compressLayer: true);
        var damaging = new OfflineEngine { AfterDataStep = receiver => Tool.WritePattern(receiver, 0xee, "5M", "4k") };
        var error = Assert.Throws<KvmSnapshotException>(() => damaging.Commit(damaging.PlanCommit(new CommitRequest { Path = top2, Top = layer2 }, ctx), ctx));
        Assert.Equal(ErrorIds.DiskImageContentMismatch, error.ErrorId);
        Assert.Equal("layer.qcow2", BackingOf(top2));
        OfflineAssert.SameContent(before2, top2);
    }
}
