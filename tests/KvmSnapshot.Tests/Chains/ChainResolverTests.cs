using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Offline;
using Xunit;

namespace KvmSnapshot.Tests.Chains;

public sealed class ChainResolverTests
{
    private static SnapshotChain Resolve(string path) => ChainResolver.Resolve(path, new ImageCatalog(new RecordingOperationContext()));

    [Fact]
    public void Follows_relative_names_from_the_overlay_s_own_directory_not_the_working_directory()
    {
        using var dir = new TempDirectory("ch");
        Directory.CreateDirectory(dir.File("templates"));
        Directory.CreateDirectory(dir.File("guests"));
        Tool.CreateQcow2(dir.File("templates/base.qcow2"), "8M");
        Tool.CreateQcow2(dir.File("guests/g1.qcow2"), null, "../templates/base.qcow2");
        Tool.CreateQcow2(dir.File("guests/snap.qcow2"), null, "g1.qcow2");

        var chain = Resolve(dir.File("guests/snap.qcow2"));

        Assert.Equal(new[] { dir.File("guests/snap.qcow2"), dir.File("guests/g1.qcow2"), dir.File("templates/base.qcow2") }, chain.Layers.Select(l => l.Path));
        Assert.Equal(new[] { ChainLayerRole.Active, ChainLayerRole.Intermediate, ChainLayerRole.Base }, chain.Layers.Select(l => l.Role));
        Assert.True(chain.IsComplete);
        Assert.Equal("g1.qcow2", chain.Layers[0].BackingFile);
        Assert.Equal("qcow2", chain.Layers[0].BackingFormat);
        Assert.Equal(8L << 20, chain.Layers[2].VirtualSize);
        Assert.True(chain.Layers[0].ActualSize > 0);
        Assert.Equal("base.qcow2 <- g1.qcow2 <- snap.qcow2", chain.ToString());
    }

    [Fact]
    public void A_missing_backing_file_ends_the_chain_with_a_Missing_layer()
    {
        using var dir = new TempDirectory("ch");
        Tool.CreateQcow2(dir.File("base.qcow2"), "1M");
        Tool.CreateQcow2(dir.File("top.qcow2"), null, "base.qcow2");
        File.Delete(dir.File("base.qcow2"));

        var chain = Resolve(dir.File("top.qcow2"));

        Assert.Equal(2, chain.Depth);
        Assert.Equal(ChainLayerState.Missing, chain.Base.State);
        Assert.Equal(dir.File("base.qcow2"), chain.Base.Path);
        Assert.False(chain.IsComplete);
    }

    [Fact]
    public void A_loop_is_detected_also_through_a_symlink()
    {
        using var dir = new TempDirectory("ch");
        Tool.CreateQcow2(dir.File("a.qcow2"), "1M");
        Tool.CreateQcow2(dir.File("b.qcow2"), null, "a.qcow2");
        Tool.Run("qemu-img", "rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", dir.File("a.qcow2")).EnsureSuccess();
        File.CreateSymbolicLink(dir.File("link-to-a.qcow2"), dir.File("a.qcow2"));
        Tool.CreateQcow2(dir.File("c.qcow2"), "1M");
        Tool.Run("qemu-img", "rebase", "-u", "-b", "link-to-a.qcow2", "-F", "qcow2", dir.File("b.qcow2")).EnsureSuccess();

        var chain = Resolve(dir.File("a.qcow2"));

        Assert.Equal(new[] { "a.qcow2", "b.qcow2", "link-to-a.qcow2" }, OfflineAssert.Names(chain));
        Assert.Equal(ChainLayerState.Loop, chain.Base.State);
    }

    [Theory]
    [InlineData("nbd://server:10809/export")]
    [InlineData("rbd:pool/image")]
    [InlineData("json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"/etc/passwd\"}}")]
    [InlineData("a:b.qcow2")]
    public void Protocol_and_json_names_are_reported_never_followed(string name)
    {
        using var dir = new TempDirectory("ch");
        Tool.CreateQcow2(dir.File("top.qcow2"), "1M");
        Tool.Run("qemu-img", "rebase", "-u", "-b", name, "-F", "qcow2", dir.File("top.qcow2")).EnsureSuccess();

        var chain = Resolve(dir.File("top.qcow2"));

        Assert.Equal(2, chain.Depth);
        Assert.Equal(ChainLayerState.NotFollowed, chain.Base.State);
        Assert.Equal(name, chain.Base.Path);
        Assert.Equal(name, chain.Active.BackingFile);
    }

    [Fact]
    public void A_backing_file_without_recorded_format_is_probed_and_flagged_by_a_null_BackingFormat()
    {
        using var dir = new TempDirectory("ch");
        Tool.CreateRaw(dir.File("base.img"), "2M");
        Tool.CreateQcow2(dir.File("top.qcow2"), null, "base.img", "raw");
        Qcow2Bytes.DropBackingFormat(dir.File("top.qcow2"));

        var chain = Resolve(dir.File("top.qcow2"));

        Assert.Null(chain.Active.BackingFormat);
        Assert.Equal("raw", chain.Base.Format);
        Assert.Equal(2L << 20, chain.Base.VirtualSize);
    }

    [Fact]
    public void A_raw_backing_file_is_a_base_even_when_its_content_looks_like_qcow2()
    {
        using var dir = new TempDirectory("ch");
        // A guest may write a qcow2 header into its raw disk; the recorded format decides, never the content.
        Tool.CreateQcow2(dir.File("elsewhere.qcow2"), "1M");
        Tool.CreateQcow2(dir.File("disguised.img"), "1M", "elsewhere.qcow2");
        Tool.CreateQcow2(dir.File("top.qcow2"), null, "disguised.img", "raw");

        var chain = Resolve(dir.File("top.qcow2"));

        Assert.Equal(2, chain.Depth);
        Assert.Equal("raw", chain.Base.Format);
        Assert.Null(chain.Base.BackingFile);
    }

    [Fact]
    public void A_truncated_backing_file_is_an_Unreadable_layer_and_a_truncated_top_throws()
    {
        using var dir = new TempDirectory("ch");
        Tool.CreateQcow2(dir.File("base.qcow2"), "1M");
        Tool.CreateQcow2(dir.File("top.qcow2"), null, "base.qcow2");
        var bytes = File.ReadAllBytes(dir.File("base.qcow2"));
        File.WriteAllBytes(dir.File("base.qcow2"), bytes.Take(50).ToArray());

        var chain = Resolve(dir.File("top.qcow2"));
        Assert.Equal(ChainLayerState.Unreadable, chain.Base.State);

        var e = Assert.Throws<KvmSnapshotException>(() => Resolve(dir.File("base.qcow2")));
        Assert.Equal(ErrorIds.DiskImageMalformed, e.ErrorId);
    }

    [Fact]
    public void Backing_names_follow_qemu_s_protocol_rule()
    {
        Assert.True(BackingName.IsNotFollowed("nbd:localhost:10809"));
        Assert.True(BackingName.IsNotFollowed("json:{}"));
        Assert.True(BackingName.IsNotFollowed("x:y/z"));
        Assert.False(BackingName.IsNotFollowed("/abs/a:b.qcow2"));
        Assert.False(BackingName.IsNotFollowed("dir/a:b.qcow2"));
        Assert.False(BackingName.IsNotFollowed("file:/var/lib/base.qcow2"));
        Assert.Equal("/var/lib/base.qcow2", BackingName.Resolve("/x/top.qcow2", "file:/var/lib/base.qcow2"));
        Assert.Equal("/x/sub/b.qcow2", BackingName.Resolve("/x/top.qcow2", "sub/b.qcow2"));
        Assert.Equal("./a:b.qcow2", BackingName.MakeRelative("/x/top.qcow2", "/x/a:b.qcow2"));
        Assert.Equal("../t/base.qcow2", BackingName.MakeRelative("/x/g/top.qcow2", "/x/t/base.qcow2"));
    }
}
