using System.IO;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Offline;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Offline;

/// <summary>GetImage, CreateImage, ConvertImage against real qemu-img.</summary>
public sealed class OfflineImageTests
{
    private static readonly OfflineEngine Engine = OfflineEngine.Default;

    [Fact]
    public void GetImage_types_qemu_img_info()
    {
        using var dir = new TempDirectory("oi");
        Tool.CreateQcow2(dir.File("base.qcow2"), "16M");
        Tool.CreateQcow2(dir.File("over lay.qcow2"), null, "base.qcow2");
        Tool.Run("qemu-img", "snapshot", "-c", "before update", dir.File("over lay.qcow2")).EnsureSuccess();
        var ctx = new RecordingOperationContext();

        var image = Engine.GetImage(dir.File("over lay.qcow2"), ctx);

        Assert.Equal(dir.File("over lay.qcow2"), image.Path);
        Assert.Equal("qcow2", image.Format);
        Assert.Equal(16L << 20, image.VirtualSize);
        Assert.Equal(65536, image.ClusterSize);
        Assert.Equal("base.qcow2", image.BackingFile);
        Assert.Equal(dir.File("base.qcow2"), image.BackingFileFullPath);
        Assert.Equal("qcow2", image.BackingFormat);
        Assert.Equal("1.1", image.Compat);
        Assert.False(image.Corrupt);
        var snapshot = Assert.Single(image.Snapshots);
        Assert.Equal("before update", snapshot.Name);
        Assert.Equal("1", snapshot.Id);
        Assert.Contains(ctx.VerboseMessages, v => v.Contains("info -U --output=json -f qcow2"));
    }

    [Fact]
    public void GetImage_of_raw_names_the_format_itself_and_json_backing_has_no_full_path()
    {
        using var dir = new TempDirectory("oi");
        Tool.CreateRaw(dir.File("disk.img"), "3M");
        Assert.Equal("raw", Engine.GetImage(dir.File("disk.img"), new RecordingOperationContext()).Format);

        Tool.CreateQcow2(dir.File("j.qcow2"), "1M");
        Tool.Run("qemu-img", "rebase", "-u", "-b", "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"/etc/hostname\"}}", "-F", "raw", dir.File("j.qcow2")).EnsureSuccess();
        var j = Engine.GetImage(dir.File("j.qcow2"), new RecordingOperationContext());
        Assert.StartsWith("json:", j.BackingFile);
        Assert.Null(j.BackingFileFullPath);
    }

    [Fact]
    public void GetImage_bad_input()
    {
        using var dir = new TempDirectory("oi");
        Directory.CreateDirectory(dir.File("d.qcow2"));
        OfflineAssert.Fails(ErrorIds.DiskImageNotFound, () => Engine.GetImage(dir.File("none.qcow2"), new RecordingOperationContext()));
        OfflineAssert.Fails(ErrorIds.DiskImageIsDirectory, () => Engine.GetImage(dir.File("d.qcow2"), new RecordingOperationContext()));
        Tool.CreateQcow2(dir.File("ok.qcow2"), "1M");
        File.WriteAllBytes(dir.File("short.qcow2"), File.ReadAllBytes(dir.File("ok.qcow2")).Take(40).ToArray());
        OfflineAssert.Fails(ErrorIds.DiskImageMalformed, () => Engine.GetImage(dir.File("short.qcow2"), new RecordingOperationContext()));
    }

    [Fact]
    public void CreateImage_makes_a_plain_qcow2_and_a_raw_image()
    {
        using var dir = new TempDirectory("oi");
        var ctx = new RecordingOperationContext();
        var q = Engine.CreateImage(new NewImageRequest { Path = dir.File("new.qcow2"), Size = 8 << 20, ClusterSize = 4096 }, ctx);
        Assert.Equal("qcow2", q.Format);
        Assert.Equal(8L << 20, q.VirtualSize);
        Assert.Equal(4096, q.ClusterSize);
        Assert.Contains(ctx.VerboseMessages, v => v.Contains("create -q -f qcow2 -o cluster_size=4096"));

        var r = Engine.CreateImage(new NewImageRequest { Path = dir.File("new.raw"), Format = "raw", Size = 1 << 20, Preallocation = "full" }, ctx);
        Assert.Equal("raw", r.Format);
        Assert.Equal(1L << 20, new FileInfo(dir.File("new.raw")).Length);
    }

    [Fact]
    public void CreateImage_overlay_always_records_the_backing_format_probing_it_natively()
    {
        using var dir = new TempDirectory("oi");
        Tool.CreateRaw(dir.File("template.raw"), "4M");
        Tool.WritePattern(dir.File("template.raw"), 0x42, "0", "1M", "raw");
        Tool.CreateQcow2(dir.File("template.qcow2"), "6M");
        var ctx = new RecordingOperationContext();

        var onRaw = Engine.CreateImage(new NewImageRequest { Path = dir.File("g1.qcow2"), BackingFile = dir.File("template.raw") }, ctx);
        var onQcow2 = Engine.CreateImage(new NewImageRequest { Path = dir.File("g2.qcow2"), BackingFile = dir.File("template.qcow2"), RelativeBackingFile = true }, ctx);

        Assert.Equal("raw", onRaw.BackingFormat);
        Assert.Equal(dir.File("template.raw"), onRaw.BackingFile);
        Assert.Equal(4L << 20, onRaw.VirtualSize);
        Assert.True(Tool.ReadsPattern(dir.File("g1.qcow2"), 0x42, "0", "1M"));
        Assert.Equal("qcow2", onQcow2.BackingFormat);
        Assert.Equal("template.qcow2", onQcow2.BackingFile);
        Assert.Equal(6L << 20, onQcow2.VirtualSize);
        Assert.Contains(ctx.VerboseMessages, v => v.Contains("-b template.qcow2 -F qcow2"));
    }

    [Fact]
    public void CreateImage_bad_input_changes_nothing()
    {
        using var dir = new TempDirectory("oi");
        Tool.CreateQcow2(dir.File("exists.qcow2"), "1M");
        Tool.CreateRaw(dir.File("base.raw"), "1M");
        Tool.CreateQcow2(dir.File("a.qcow2"), "1M");
        Tool.CreateQcow2(dir.File("b.qcow2"), null, "a.qcow2");
        Tool.Run("qemu-img", "rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", dir.File("a.qcow2")).EnsureSuccess();
        Directory.CreateDirectory(dir.File("adir"));

        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageExists,
            ctx => Engine.CreateImage(new NewImageRequest { Path = dir.File("exists.qcow2"), Size = 1 << 20 }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageIsDirectory,
            ctx => Engine.CreateImage(new NewImageRequest { Path = dir.File("adir"), Size = 1 << 20 }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageNotFound,
            ctx => Engine.CreateImage(new NewImageRequest { Path = dir.File("no/such/dir.qcow2"), Size = 1 << 20 }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.BackingFileMissing,
            ctx => Engine.CreateImage(new NewImageRequest { Path = dir.File("n1.qcow2"), BackingFile = dir.File("gone.qcow2") }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.BackingChainLoop,
            ctx => Engine.CreateImage(new NewImageRequest { Path = dir.File("n2.qcow2"), BackingFile = dir.File("a.qcow2") }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.BackingFileNotFollowed,
            ctx => Engine.CreateImage(new NewImageRequest { Path = dir.File("n3.qcow2"), BackingFile = "nbd://localhost/x" }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageNotQcow2,
            ctx => Engine.CreateImage(new NewImageRequest { Path = dir.File("n4.raw"), Format = "raw", BackingFile = dir.File("base.raw") }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageNotQcow2,
            ctx => Engine.CreateImage(new NewImageRequest { Path = dir.File("n5.qcow2"), BackingFile = dir.File("base.raw"), BackingFormat = "qcow2" }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageSizeInvalid,
            ctx => Engine.CreateImage(new NewImageRequest { Path = dir.File("n6.qcow2"), Size = 0 }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageSizeInvalid,
            ctx => Engine.CreateImage(new NewImageRequest { Path = dir.File("n7.qcow2") }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageSizeInvalid,
            ctx => Engine.CreateImage(new NewImageRequest { Path = dir.File("n8.qcow2"), Size = 1 << 20, ClusterSize = 3000 }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageUnsupportedFeature,
            ctx => Engine.CreateImage(new NewImageRequest { Path = dir.File("n9.qcow2"), Format = "vmdk", Size = 1 << 20 }, ctx));
    }

    [Fact]
    public void CreateImage_removes_what_a_failed_qemu_img_left_behind()
    {
        using var dir = new TempDirectory("oi");
        // 1 EiB is far past what qcow2 allows: qemu-img fails after validation passed.
        var e = OfflineAssert.Fails(ErrorIds.QemuImgFailed,
            () => Engine.CreateImage(new NewImageRequest { Path = dir.File("huge.qcow2"), Size = long.MaxValue }, new RecordingOperationContext()));
        Assert.Contains("qemu-img", e.Message);
        Assert.False(File.Exists(dir.File("huge.qcow2")));
    }

    [Fact]
    public void ConvertImage_raw_to_qcow2_compressed_and_a_chain_flattened_to_raw_read_the_same()
    {
        using var dir = new TempDirectory("oi");
        Tool.CreateRaw(dir.File("disk.raw"), "8M");
        Tool.WritePattern(dir.File("disk.raw"), 0x11, "1M", "2M", "raw");
        Tool.CreateQcow2(dir.File("top.qcow2"), null, dir.File("disk.raw"), "raw");
        Tool.WritePattern(dir.File("top.qcow2"), 0x22, "2M", "1M");
        var ctx = new RecordingOperationContext();

        var q = Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("disk.raw"), Destination = dir.File("disk.qcow2"), Compress = true }, ctx);
        // A probed qcow2 over a raw file is what a guest's planted header looks like: the user vouches with SourceFormat.
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.FormatConfusion,
            c => Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("top.qcow2"), Destination = dir.File("flat.raw"), Format = "raw" }, c));
        var flat = Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("top.qcow2"), Destination = dir.File("flat.raw"), Format = "raw", SourceFormat = "qcow2" }, ctx);

        Assert.Equal("qcow2", q.Format);
        Assert.Null(q.BackingFile);
        OfflineAssert.SameContent(dir.File("disk.raw"), dir.File("disk.qcow2"));
        Assert.Equal("raw", flat.Format);
        OfflineAssert.SameContent(dir.File("top.qcow2"), dir.File("flat.raw"));
        Assert.True(Tool.ReadsPattern(dir.File("flat.raw"), 0x22, "2M", "1M", "raw"));
        Assert.Contains(ctx.VerboseMessages, v => v.Contains("convert -p -f raw -O qcow2 -c"));
        Assert.Contains(ctx.VerboseMessages, v => v.Contains("compare -U -p -f qcow2 -F raw"));
    }

    [Fact]
    public void ConvertImage_with_a_backing_file_keeps_the_destination_thin()
    {
        using var dir = new TempDirectory("oi");
        Tool.CreateQcow2(dir.File("base.qcow2"), "8M");
        Tool.WritePattern(dir.File("base.qcow2"), 0x01, "0", "4M");
        Tool.CreateQcow2(dir.File("top.qcow2"), null, "base.qcow2");
        Tool.WritePattern(dir.File("top.qcow2"), 0x02, "0", "64k");

        var copy = Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("top.qcow2"), Destination = dir.File("copy.qcow2"), BackingFile = dir.File("base.qcow2") }, new RecordingOperationContext());

        Assert.Equal(dir.File("base.qcow2"), copy.BackingFileFullPath);
        Assert.Equal("qcow2", copy.BackingFormat);
        OfflineAssert.SameContent(dir.File("top.qcow2"), dir.File("copy.qcow2"));
    }

    [Fact]
    public void ConvertImage_bad_input_changes_nothing()
    {
        using var dir = new TempDirectory("oi");
        Tool.CreateRaw(dir.File("disk.raw"), "1M");
        Tool.CreateQcow2(dir.File("exists.qcow2"), "1M");
        Tool.CreateQcow2(dir.File("orphan.qcow2"), "1M");
        Tool.Run("qemu-img", "rebase", "-u", "-b", "gone.qcow2", "-F", "qcow2", dir.File("orphan.qcow2")).EnsureSuccess();
        Tool.CreateQcow2(dir.File("remote.qcow2"), "1M");
        Tool.Run("qemu-img", "rebase", "-u", "-b", "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"/etc/hostname\"}}", "-F", "raw", dir.File("remote.qcow2")).EnsureSuccess();

        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageExists,
            ctx => Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("disk.raw"), Destination = dir.File("exists.qcow2") }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageExists,
            ctx => Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("disk.raw"), Destination = dir.File("disk.raw") }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageNotFound,
            ctx => Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("none.raw"), Destination = dir.File("x.qcow2") }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.DiskImageUnsupportedFeature,
            ctx => Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("disk.raw"), Destination = dir.File("x.raw"), Format = "raw", Compress = true }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.BackingFileMissing,
            ctx => Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("orphan.qcow2"), Destination = dir.File("x.qcow2") }, ctx));
        OfflineAssert.FailsAndChangesNothing(dir.Path, ErrorIds.BackingFileNotFollowed,
            ctx => Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("remote.qcow2"), Destination = dir.File("x.qcow2") }, ctx));
    }
}
