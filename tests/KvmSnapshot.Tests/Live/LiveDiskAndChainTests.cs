using System.IO;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

[Collection(LibvirtCollection.Name)]
public sealed class LiveDiskAndChainTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private static readonly LiveEngine Engine = LiveEngine.Default;

    [Fact]
    public void ResolveUri_reports_the_uri_libvirt_uses()
    {
        Assert.Equal("qemu:///system", Engine.ResolveUri(Uri));
    }

    [Fact]
    public void GetDomainNames_lists_a_running_test_domain()
    {
        using var dom = TestDomain.Create("names");
        Assert.Contains(dom.Name, Engine.GetDomainNames(Uri));
    }

    [Fact]
    public void GetDisks_is_the_domblklist_details_view()
    {
        using var dom = TestDomain.Create("disks", disks: dir =>
        {
            Tool.CreateQcow2(dir.File("os.qcow2"), "64M");
            Tool.CreateRaw(dir.File("data.raw"), "16M");
            return new[] { new TestDisk("vda", dir.File("os.qcow2")), new TestDisk("vdb", dir.File("data.raw"), "raw") };
        });
        var ctx = new RecordingOperationContext();

        var disks = Engine.GetDisks(Uri, dom.Name, ctx);

        Assert.Equal(new[] { "vda", "vdb" }, disks.Select(d => d.Disk));
        var vda = disks[0];
        Assert.Equal((dom.Name, "file", "disk", dom.File("os.qcow2"), "qcow2", "virtio", false, "qemu:///system"),
            (vda.Domain, vda.Type, vda.Device, vda.Source, vda.Format, vda.Bus, vda.ReadOnly, vda.ConnectionUri));
        Assert.Equal("raw", disks[1].Format);
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith($"virDomainLookupByName(name='{dom.Name}')", System.StringComparison.Ordinal));
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith($"virDomainGetXMLDesc(dom='{dom.Name}'", System.StringComparison.Ordinal));
    }

    [Fact]
    public void GetChains_of_a_running_domain_come_from_backingStore_with_libvirt_indexes()
    {
        using var dom = TestDomain.Create("chain", disks: dir =>
        {
            Tool.CreateQcow2(dir.File("base.qcow2"), "64M");
            Tool.CreateQcow2(dir.File("mid.qcow2"), null, dir.File("base.qcow2"));
            Tool.CreateQcow2(dir.File("top.qcow2"), null, "mid.qcow2"); // relative backing name, as recorded
            return new[] { new TestDisk("vda", dir.File("top.qcow2")) };
        });

        var chain = Assert.Single(Engine.GetChains(Uri, dom.Name, null, new RecordingOperationContext()));

        Assert.Equal((dom.Name, "vda", "qemu:///system"), (chain.Domain, chain.Disk, chain.ConnectionUri));
        Assert.Equal(new[] { dom.File("top.qcow2"), dom.File("mid.qcow2"), dom.File("base.qcow2") }, chain.Layers.Select(l => l.Path));
        Assert.Equal(new[] { ChainLayerRole.Active, ChainLayerRole.Intermediate, ChainLayerRole.Base }, chain.Layers.Select(l => l.Role));
        // libvirt numbers the layers when the domain starts (active = 1) and counts up for each new overlay.
        Assert.Equal(new int?[] { 1, 2, 3 }, chain.Layers.Select(l => l.Index));
        Assert.All(chain.Layers, l => Assert.Equal((dom.Name, "vda", ChainLayerState.Present, "qcow2"), (l.Domain, l.Disk, l.State, l.Format)));
        Assert.Equal("mid.qcow2", chain.Layers[0].BackingFile); // as recorded in the header, not libvirt's absolute path
        Assert.Equal(64L * 1048576, chain.Layers[2].VirtualSize);
        Assert.Equal("base.qcow2 <- mid.qcow2 <- top.qcow2", chain.ToString());
    }

    [Fact]
    public void GetChains_of_a_shut_off_domain_follow_the_image_headers()
    {
        using var dom = TestDomain.Create("offchain", persistent: true, start: false, disks: dir =>
        {
            Tool.CreateQcow2(dir.File("base.qcow2"), "64M");
            Tool.CreateQcow2(dir.File("top.qcow2"), null, dir.File("base.qcow2"));
            return new[] { new TestDisk("vda", dir.File("top.qcow2")) };
        });

        var chain = Assert.Single(Engine.GetChains(Uri, dom.Name, "vda", new RecordingOperationContext()));

        Assert.Equal(new[] { dom.File("top.qcow2"), dom.File("base.qcow2") }, chain.Layers.Select(l => l.Path));
        Assert.All(chain.Layers, l => Assert.Null(l.Index));
        Assert.All(chain.Layers, l => Assert.Equal(dom.Name, l.Domain));
    }

    [Fact]
    public void GetChains_reports_a_backing_file_removed_under_a_running_domain_as_missing()
    {
        using var dom = TestDomain.Create("missing", disks: dir =>
        {
            Tool.CreateQcow2(dir.File("base.qcow2"), "64M");
            Tool.CreateQcow2(dir.File("top.qcow2"), null, dir.File("base.qcow2"));
            return new[] { new TestDisk("vda", dir.File("top.qcow2")) };
        });
        // QEMU keeps the open file; the name is gone from the directory.
        File.Move(dom.File("base.qcow2"), dom.File("moved.qcow2"));

        var chain = Assert.Single(Engine.GetChains(Uri, dom.Name, "vda", new RecordingOperationContext()));

        Assert.Equal(ChainLayerState.Missing, chain.Layers[1].State);
        Assert.False(chain.IsComplete);
    }
}
