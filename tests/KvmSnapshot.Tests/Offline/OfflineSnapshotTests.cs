using System.IO;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Offline;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Offline;

/// <summary>Internal snapshots: listed natively, changed with qemu-img snapshot.</summary>
public sealed class OfflineSnapshotTests
{
    private static readonly OfflineEngine Engine = OfflineEngine.Default;

    [Fact]
    public void Create_list_apply_delete_round_trip_restores_the_data()
    {
        using var dir = new TempDirectory("os");
        var image = dir.File("vm disk;&.qcow2");
        Tool.CreateQcow2(image, "4M");
        Tool.WritePattern(image, 0xaa, "0", "1M");
        var ctx = new RecordingOperationContext();

        var created = Engine.CreateInternalSnapshot(image, "before 'patch' $(x) | y", ctx);
        Tool.WritePattern(image, 0xbb, "0", "1M");

        Assert.Equal("before 'patch' $(x) | y", created.Name);
        Assert.Equal(image, created.Path);
        var listed = Assert.Single(Engine.GetInternalSnapshots(image, ctx));
        Assert.Equal(created.Id, listed.Id);
        Assert.Equal(4L << 20, listed.DiskSize);
        Assert.True(listed.CreationTime > System.DateTime.UtcNow.AddMinutes(-5));

        Engine.ApplyInternalSnapshot(image, created.Name, ctx);
        Assert.True(Tool.ReadsPattern(image, 0xaa, "0", "1M"));

        Engine.DeleteInternalSnapshot(image, created.Name, ctx);
        Assert.Empty(Engine.GetInternalSnapshots(image, ctx));
        Assert.True(Tool.ReadsPattern(image, 0xaa, "0", "1M"));
        Assert.Contains(ctx.VerboseMessages, v => v.Contains("snapshot -c 'before '\\''patch'\\'' $(x) | y'"));
    }

    [Fact]
    public void Raw_images_cannot_hold_internal_snapshots()
    {
        using var dir = new TempDirectory("os");
        Tool.CreateRaw(dir.File("disk.img"), "1M");
        var e = OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.SnapshotNeedsQcow2,
            ctx => Engine.CreateInternalSnapshot(dir.File("disk.img"), "s1", ctx));
        Assert.Equal($"internal snapshots need a qcow2 image; '{dir.File("disk.img")}' is raw", e.Message);
        OfflineAssert.Fails(ErrorIds.SnapshotNeedsQcow2, () => Engine.GetInternalSnapshots(dir.File("disk.img"), new RecordingOperationContext()));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.SnapshotNeedsQcow2, ctx => Engine.ApplyInternalSnapshot(dir.File("disk.img"), "s1", ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.SnapshotNeedsQcow2, ctx => Engine.DeleteInternalSnapshot(dir.File("disk.img"), "s1", ctx));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("42")]
    [InlineData("line\nbreak")]
    [InlineData(" padded")]
    public void Names_qemu_img_would_misread_are_InvalidSnapshotName(string name)
    {
        using var dir = new TempDirectory("os");
        Tool.CreateQcow2(dir.File("d.qcow2"), "1M");
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.InvalidSnapshotName, ctx => Engine.CreateInternalSnapshot(dir.File("d.qcow2"), name, ctx));
    }

    [Fact]
    public void Duplicate_missing_and_ambiguous_names_are_refused_without_change()
    {
        using var dir = new TempDirectory("os");
        var image = dir.File("d.qcow2");
        Tool.CreateQcow2(image, "1M");
        Engine.CreateInternalSnapshot(image, "first", new RecordingOperationContext());
        // qemu-img itself allows these; the engine must not act on them blindly.
        Tool.Run("qemu-img", "snapshot", "-c", "1", image).EnsureSuccess();
        Tool.Run("qemu-img", "snapshot", "-c", "twice", image).EnsureSuccess();
        Tool.Run("qemu-img", "snapshot", "-c", "twice", image).EnsureSuccess();

        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.SnapshotExists, ctx => Engine.CreateInternalSnapshot(image, "first", ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.SnapshotNotFound, ctx => Engine.ApplyInternalSnapshot(image, "none", ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.SnapshotNotFound, ctx => Engine.DeleteInternalSnapshot(image, "none", ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.InvalidSnapshotName, ctx => Engine.DeleteInternalSnapshot(image, "1", ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.InvalidSnapshotName, ctx => Engine.ApplyInternalSnapshot(image, "twice", ctx));
        Assert.Equal(4, Engine.GetInternalSnapshots(image, new RecordingOperationContext()).Count);
    }

    [Fact]
    public void Missing_directory_and_malformed_files_are_refused()
    {
        using var dir = new TempDirectory("os");
        Directory.CreateDirectory(dir.File("d.qcow2"));
        Tool.CreateQcow2(dir.File("ok.qcow2"), "1M");
        File.WriteAllBytes(dir.File("bad.qcow2"), File.ReadAllBytes(dir.File("ok.qcow2")).Take(64).ToArray());

        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageNotFound, ctx => Engine.CreateInternalSnapshot(dir.File("none.qcow2"), "s", ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageIsDirectory, ctx => Engine.CreateInternalSnapshot(dir.File("d.qcow2"), "s", ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageMalformed, ctx => Engine.CreateInternalSnapshot(dir.File("bad.qcow2"), "s", ctx));
        OfflineAssert.Fails(ErrorIds.DiskImageMalformed, () => Engine.GetInternalSnapshots(dir.File("bad.qcow2"), new RecordingOperationContext()));
    }
}
