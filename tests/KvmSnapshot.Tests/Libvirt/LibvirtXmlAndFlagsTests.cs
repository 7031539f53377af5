using System;
using System.Collections.Generic;
using System.Linq;
using System.Xml.Linq;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Live;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Model;
using Xunit;

namespace KvmSnapshot.Tests.Libvirt;

public sealed class LibvirtXmlAndFlagsTests
{
    // What libvirt 9.0 printed for a running domain on base <- s1 <- s1.sn2, mid active commit.
    private const string LiveXml = """
        <domain type='qemu' id='7'>
          <name>web1</name>
          <devices>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2'/>
              <source file='/vm/s1.sn2' index='3'/>
              <backingStore type='file' index='2'>
                <format type='qcow2'/>
                <source file='/vm/s1.qcow2'/>
                <backingStore type='file' index='1'>
                  <format type='qcow2'/>
                  <source file='/vm/base.qcow2'/>
                  <backingStore/>
                </backingStore>
              </backingStore>
              <mirror type='file' job='active-commit' ready='yes'>
                <format type='qcow2'/>
                <source file='/vm/s1.qcow2' index='2'/>
              </mirror>
              <target dev='vda' bus='virtio'/>
              <alias name='virtio-disk0'/>
            </disk>
            <disk type='network' device='disk'>
              <driver name='qemu' type='raw'/>
              <source protocol='rbd' name='pool/image'/>
              <target dev='vdb' bus='virtio'/>
            </disk>
            <disk type='file' device='cdrom'>
              <target dev='sda' bus='sata'/>
              <readonly/>
            </disk>
          </devices>
        </domain>
        """;

    [Fact]
    public void Live_disks_are_read_with_chain_indexes_and_mirror_state()
    {
        var disks = DomainXml.Disks(LiveXml, "web1");

        Assert.Equal(new[] { "vda", "vdb", "sda" }, disks.Select(d => d.Target));
        var vda = disks[0];
        Assert.Equal(("file", "disk", "virtio", "/vm/s1.sn2", "qcow2", 3, true), (vda.Type, vda.Device, vda.Bus, vda.Source, vda.Format, vda.Index, vda.BackingKnown));
        Assert.Equal(new[] { ("/vm/s1.qcow2", 2), ("/vm/base.qcow2", 1) }, vda.Backing.Select(b => (b.Source!, b.Index!.Value)));
        Assert.Equal(("active-commit", true), (vda.MirrorJob, vda.MirrorReady));
        Assert.Equal(("network", "pool/image"), (disks[1].Type, disks[1].Source));
        Assert.Equal(((string?)null, true, false), (disks[2].Source, disks[2].ReadOnly, disks[2].BackingKnown));
    }

    [Fact]
    public void A_live_chain_is_built_without_touching_files_for_a_remote_connection()
    {
        var vda = DomainXml.Disks(LiveXml, "web1")[0];
        var chain = LiveChains.Build("web1", "qemu+ssh://h/system", local: false, vda, new RecordingOperationContext(), null);

        Assert.Equal(new[] { "/vm/s1.sn2", "/vm/s1.qcow2", "/vm/base.qcow2" }, chain.Layers.Select(l => l.Path));
        Assert.Equal(new int?[] { 3, 2, 1 }, chain.Layers.Select(l => l.Index));
        Assert.Equal(new[] { "/vm/s1.qcow2", "/vm/base.qcow2", null }, chain.Layers.Select(l => l.BackingFile));
        Assert.All(chain.Layers, l => Assert.Equal((ChainLayerState.Present, "qemu+ssh://h/system"), (l.State, l.ConnectionUri)));
        Assert.Equal("/vm/s1.qcow2", LiveChains.Find(chain, "vda[2]", "Top").Path);
        Assert.Equal("/vm/base.qcow2", LiveChains.Find(chain, "base.qcow2", "Base").Path);
        Assert.Equal("/vm/s1.qcow2", LiveChains.Find(chain, "/vm/../vm/s1.qcow2", "Top").Path);
        Assert.Throws<KvmSnapshot.Errors.KvmSnapshotException>(() => LiveChains.Find(chain, "vdb[2]", "Top"));
    }

    [Fact]
    public void A_new_definition_points_only_the_named_disks_at_new_files_and_drops_their_old_chain()
    {
        var updated = XDocument.Parse(DomainXml.WithDiskSources(LiveXml, new Dictionary<string, (string, string)> { ["vda"] = ("/vm/base.revert-sn1.qcow2", "qcow2") }, "web1"));

        var disks = updated.Root!.Element("devices")!.Elements("disk").ToList();
        Assert.Equal("/vm/base.revert-sn1.qcow2", disks[0].Element("source")!.Attribute("file")!.Value);
        Assert.Null(disks[0].Element("source")!.Attribute("index"));
        Assert.Empty(disks[0].Elements("backingStore"));
        Assert.Equal("qcow2", disks[0].Element("driver")!.Attribute("type")!.Value);
        Assert.Equal("pool/image", disks[1].Element("source")!.Attribute("name")!.Value); // untouched
    }

    [Fact]
    public void Snapshot_requests_are_written_by_an_xml_writer_never_spliced()
    {
        var xml = SnapshotXml.Build(new NewDomainSnapshotRequest
        {
            Name = "a</name><evil/>",
            Description = "x & y",
            DiskOnly = true,
            DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = "/vm/o'ne\".qcow2", Driver = "qcow2" }, new DiskSpec { Disk = "vdb", Snapshot = "no" } },
        });

        var root = XDocument.Parse(xml).Root!;
        Assert.Equal("a</name><evil/>", root.Element("name")!.Value);
        Assert.Empty(root.Descendants("evil"));
        Assert.Equal("x & y", root.Element("description")!.Value);
        Assert.Equal("no", root.Element("memory")!.Attribute("snapshot")!.Value);
        var disks = root.Element("disks")!.Elements("disk").ToList();
        Assert.Equal(("vda", "external", "/vm/o'ne\".qcow2", "qcow2"), (disks[0].Attribute("name")!.Value, disks[0].Attribute("snapshot")!.Value,
            disks[0].Element("source")!.Attribute("file")!.Value, disks[0].Element("driver")!.Attribute("type")!.Value));
        Assert.Equal(("vdb", "no", false), (disks[1].Attribute("name")!.Value, disks[1].Attribute("snapshot")!.Value, disks[1].HasElements));
        Assert.DoesNotContain('\n', xml);
    }

    [Fact]
    public void Snapshot_xml_is_read_with_its_frozen_domain_disks()
    {
        const string xml = """
            <domainsnapshot>
              <name>sn2</name>
              <state>disk-snapshot</state>
              <parent><name>sn1</name></parent>
              <creationTime>1700000000</creationTime>
              <memory snapshot='no'/>
              <disks>
                <disk name='vda' snapshot='external' type='file'><driver type='qcow2'/><source file='/vm/s2.qcow2'/></disk>
                <disk name='vdb' snapshot='no'/>
              </disks>
              <domain type='qemu'><name>web1</name><devices>
                <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/vm/s1.qcow2'/><target dev='vda' bus='virtio'/></disk>
              </devices></domain>
            </domainsnapshot>
            """;

        var info = SnapshotXml.Parse(xml, "sn2");

        Assert.Equal(("sn2", "disk-snapshot", "sn1", "no"), (info.Name, info.State, info.Parent, info.MemoryLocation));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000).LocalDateTime, info.CreationTime);
        Assert.Equal(new[] { "vda:external:/vm/s2.qcow2", "vdb:no" }, info.Disks.Select(d => d.ToString()));
        Assert.Equal("/vm/s1.qcow2", Assert.Single(info.DomainDisks).Source); // the image holding sn2's state
        Assert.Equal(SnapshotLocation.External, info.Location);
        Assert.True(info.HasExternalDisks);
    }

    [Theory]
    [InlineData("<memory snapshot='internal'/><disks><disk name='vda' snapshot='internal'/></disks>", SnapshotLocation.Internal)]
    [InlineData("<memory snapshot='external' file='/m'/><disks><disk name='vda' snapshot='external'/></disks>", SnapshotLocation.External)]
    [InlineData("<memory snapshot='no'/><disks><disk name='vda' snapshot='internal'/><disk name='vdb' snapshot='external'/></disks>", SnapshotLocation.Mixed)]
    [InlineData("<memory snapshot='no'/><disks><disk name='vda' snapshot='no'/></disks>", SnapshotLocation.Mixed)]
    public void Location_follows_disks_and_memory(string body, SnapshotLocation expected)
    {
        Assert.Equal(expected, SnapshotXml.Parse($"<domainsnapshot><name>s</name>{body}</domainsnapshot>", "s").Location);
    }

    [Fact]
    public void Flag_values_are_libvirts()
    {
        Assert.Equal(16u, (uint)DomainSnapshotCreateFlags.DiskOnly);
        Assert.Equal(128u, (uint)DomainSnapshotCreateFlags.Atomic);
        Assert.Equal(4u, (uint)DomainSnapshotDeleteFlags.ChildrenOnly);
        Assert.Equal(4u, (uint)DomainSnapshotRevertFlags.Force);
        Assert.Equal(4u, (uint)DomainBlockCommitFlags.Active);
        Assert.Equal(16u, (uint)DomainBlockCommitFlags.BandwidthBytes);
        Assert.Equal(64u, (uint)DomainBlockRebaseFlags.BandwidthBytes);
        Assert.Equal(64u, (uint)DomainBlockPullFlags.BandwidthBytes);
        Assert.Equal(2u, (uint)DomainBlockJobAbortFlags.Pivot);
        Assert.Equal(4u, (uint)DomainSaveRestoreFlags.Paused);
        Assert.Equal(16, (int)DomainEventId.BlockJob2);
        // unsigned long is 64-bit on Linux x64: the job info struct is int + pad + 3 × 8 bytes.
        Assert.Equal(32, System.Runtime.InteropServices.Marshal.SizeOf<BlockJobInfo>());
    }

    [Fact]
    public void Verbose_lines_show_the_call_with_its_arguments()
    {
        Assert.Equal("virDomainBlockCommit(dom='web1', disk='vda', base=NULL, top='/vm/s1.qcow2', bandwidth=1048576, flags=Shallow|Relative|BandwidthBytes)",
            LibvirtCall.Format("virDomainBlockCommit", ("dom", "web1"), ("disk", "vda"), ("base", null), ("top", "/vm/s1.qcow2"), ("bandwidth", 1048576UL),
                ("flags", DomainBlockCommitFlags.Shallow | DomainBlockCommitFlags.Relative | DomainBlockCommitFlags.BandwidthBytes)));
        Assert.Equal("f(flags=0)", LibvirtCall.Format("f", ("flags", DomainBlockCommitFlags.None)));
    }
}
