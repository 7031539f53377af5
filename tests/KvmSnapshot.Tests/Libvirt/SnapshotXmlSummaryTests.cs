using System.Linq;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using Xunit;

namespace KvmSnapshot.Tests.Libvirt;

/// <summary>
/// The listing's one-pass reader (SnapshotXml.ParseSummary) must say what the full parse says about every field a
/// DomainSnapshot shows, while skipping the saved domain definition, whose own &lt;name&gt;, &lt;description&gt;
/// and &lt;disk&gt; elements must not leak into the snapshot's.
/// </summary>
public sealed class SnapshotXmlSummaryTests
{
    // An external disk-only snapshot as libvirt 9.0 prints it, with the domain definition after the disks.
    private const string ExternalDiskOnly = """
        <domainsnapshot>
          <name>sn2</name>
          <description>before the &lt;upgrade&gt; &amp; reboot</description>
          <state>disk-snapshot</state>
          <parent>
            <name>sn1</name>
          </parent>
          <creationTime>1764510000</creationTime>
          <memory snapshot='no'/>
          <disks>
            <disk name='vda' snapshot='external' type='file'>
              <driver type='qcow2'/>
              <source file='/vm/web1.sn2'/>
            </disk>
            <disk name='vdb' snapshot='external' type='block'>
              <driver type='qcow2'/>
              <source dev='/dev/vg/web1-sn2'/>
            </disk>
            <disk name='vdc' snapshot='no'/>
          </disks>
          <domain type='qemu'>
            <name>web1</name>
            <description>the domain's own description</description>
            <devices>
              <disk type='file' device='disk'>
                <source file='/vm/web1.sn1'/>
                <target dev='vda' bus='virtio'/>
              </disk>
            </devices>
          </domain>
        </domainsnapshot>
        """;

    public static TheoryData<string> Documents => new()
    {
        ExternalDiskOnly,
        // Internal, running, memory internal, no parent; the domain definition before the disks; a comment.
        """
        <domainsnapshot><name>int1</name><state>running</state><creationTime>1700000000</creationTime>
          <memory snapshot='internal'/><!-- <name>not this</name> -->
          <domain type='qemu'><name>db</name><uuid>00000000-0000-0000-0000-000000000001</uuid></domain>
          <disks><disk name='vda' snapshot='internal'/></disks>
          <active>1</active>
        </domainsnapshot>
        """,
        // External with memory to a file, a network disk, no description, an inactiveDomain and a cookie.
        """
        <domainsnapshot>
          <name>full 1</name><state>running</state><parent><name>a parent with spaces</name></parent>
          <memory snapshot='external' file='/vm/full 1.mem'/>
          <disks><disk name='sda' snapshot='external' type='network'><source protocol='nbd' name='exp1'/></disk></disks>
          <domain type='qemu'><name>x</name></domain>
          <inactiveDomain type='qemu'><name>x</name></inactiveDomain>
          <cookie><cpu mode='custom'/></cookie>
        </domainsnapshot>
        """,
        // The smallest document libvirt accepts back.
        "<domainsnapshot><name>bare</name></domainsnapshot>",
        // Elements named domain nested in the definition's <metadata> (and in the inactive one's): the text cut must
        // take the whole definition, or leave a document the reader refuses (then the full parse reads it).
        """
        <domainsnapshot><name>meta</name><state>shutoff</state><parent><name>p0</name></parent>
          <disks><disk name='vda' snapshot='internal'/></disks>
          <domain type='kvm'><name>m</name><metadata><domain xmlns='urn:x'><name>inner</name></domain></metadata></domain>
          <inactiveDomain type='kvm'><metadata><domain xmlns='urn:x'><state>no</state></domain></metadata></inactiveDomain>
          <active>0</active>
        </domainsnapshot>
        """,
        // A comment that looks like the definition's start tag, before the fields: the reader refuses the cut.
        """
        <domainsnapshot><name>c1</name><!-- <domain type='x'> --><state>paused</state>
          <creationTime>1700000100</creationTime><disks><disk name='vda' snapshot='internal'/></disks>
          <domain type='qemu'><name>d</name></domain>
        </domainsnapshot>
        """,
    };

    [Theory]
    [MemberData(nameof(Documents))]
    public void Summary_reads_every_listed_field_as_the_full_parse_does(string xml)
    {
        var full = SnapshotXml.Parse(xml, "t");
        var summary = SnapshotXml.ParseSummary(xml, "t");

        Assert.Equal(
            (full.Name, full.Description, full.State, full.Parent, full.CreationTime, full.MemoryLocation, full.MemoryFile, full.Location),
            (summary.Name, summary.Description, summary.State, summary.Parent, summary.CreationTime, summary.MemoryLocation, summary.MemoryFile, summary.Location));
        Assert.Equal(full.Disks.Select(d => (d.Disk, d.Snapshot, d.File, d.Driver)), summary.Disks.Select(d => (d.Disk, d.Snapshot, d.File, d.Driver)));
        Assert.Empty(summary.DomainDisks);
    }

    [Fact]
    public void Summary_of_the_first_document_has_the_snapshots_own_values_not_the_domains()
    {
        var summary = SnapshotXml.ParseSummary(ExternalDiskOnly, "t");

        Assert.Equal(("sn2", "before the <upgrade> & reboot", "sn1"), (summary.Name, summary.Description, summary.Parent));
        Assert.Equal(new[] { "vda:external:/vm/web1.sn2", "vdb:external:/dev/vg/web1-sn2", "vdc:no" }, summary.Disks.Select(d => d.ToString()));
    }

    [Fact]
    public void The_saved_domain_definition_is_cut_before_reading_and_the_snapshots_fields_stay()
    {
        var cut = SnapshotXml.WithoutSavedDomain(ExternalDiskOnly);

        Assert.DoesNotContain("web1</name>", cut, System.StringComparison.Ordinal);
        Assert.DoesNotContain("<domain ", cut, System.StringComparison.Ordinal);
        Assert.StartsWith(ExternalDiskOnly[..ExternalDiskOnly.IndexOf("<domain ", System.StringComparison.Ordinal)], cut, System.StringComparison.Ordinal);
        Assert.EndsWith("</domainsnapshot>", cut.TrimEnd(), System.StringComparison.Ordinal);
        Assert.Equal("<domainsnapshot><name>bare</name></domainsnapshot>", SnapshotXml.WithoutSavedDomain("<domainsnapshot><name>bare</name></domainsnapshot>"));
    }

    [Fact]
    public void Summary_of_a_document_that_is_not_xml_is_the_typed_error_of_the_full_parse()
    {
        var e = Assert.Throws<KvmSnapshotException>(() => SnapshotXml.ParseSummary("<domainsnapshot><name>x</name>", "t"));
        Assert.Equal(ErrorIds.LibvirtError, e.ErrorId);
        Assert.Contains("cannot be read", e.Message);
    }
}
