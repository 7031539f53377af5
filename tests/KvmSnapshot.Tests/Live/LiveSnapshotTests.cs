using System;
using System.IO;
using System.Linq;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Live;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

[Collection(LibvirtCollection.Name)]
public sealed class LiveSnapshotTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private static readonly LiveEngine Engine = LiveEngine.Default;

    private static string InternalSnapshotTable(string image) => Tool.Run("qemu-img", "snapshot", "-U", "-l", image).EnsureSuccess().StdOut;

    [Fact]
    public void Internal_snapshots_of_a_running_domain_create_list_current_revert_delete()
    {
        using var dom = TestDomain.Create("intrun");
        var ctx = new RecordingOperationContext();
        dom.GuestWrite("vda", 0x31, "0", "1M");

        var i1 = Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "i1" }, ctx);
        Assert.Equal(("i1", "running", SnapshotLocation.Internal, "internal", true, true), (i1.Name, i1.State, i1.Location, i1.MemoryLocation, i1.IsCurrent, i1.HasMetadata));
        Assert.Contains("i1", InternalSnapshotTable(dom.File("base.qcow2")));
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith($"virDomainSnapshotCreateXML(dom='{dom.Name}', xml='<domainsnapshot><name>i1</name></domainsnapshot>', flags=0)", StringComparison.Ordinal));

        dom.GuestWrite("vda", 0x32, "0", "1M");
        var i2 = Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "i2", Description = "after 0x32" }, ctx);
        Assert.Equal(("i1", "after 0x32"), (i2.Parent, i2.Description));

        var all = Engine.GetSnapshots(Uri, dom.Name, null, false, ctx);
        Assert.Equal(new[] { "i1", "i2" }, all.Select(s => s.Name));
        Assert.Equal(new[] { "i2" }, all[0].Children);
        Assert.Equal(new[] { false, true }, all.Select(s => s.IsCurrent));
        Assert.Contains("<name>i2</name>", all[1].GetXml(), StringComparison.Ordinal);
        Assert.Equal("i2", Assert.Single(Engine.GetSnapshots(Uri, dom.Name, null, true, ctx)).Name);
        Assert.Equal(new[] { "i2" }, Assert.Single(Engine.GetSnapshots(Uri, dom.Name, "i1", false, ctx)).Children);

        Engine.RevertSnapshot(Uri, dom.Name, "i1", new RevertOptions(), ctx);
        Assert.Equal("running", dom.State);
        Assert.True(dom.GuestReads("vda", 0x31, "0", "1M"));
        Assert.Equal("i1", Assert.Single(Engine.GetSnapshots(Uri, dom.Name, null, true, ctx)).Name);

        Engine.RevertSnapshot(Uri, dom.Name, "i2", new RevertOptions { Paused = true }, ctx);
        Assert.Equal("paused", dom.State);
        Assert.True(dom.GuestReads("vda", 0x32, "0", "1M"));

        Engine.DeleteSnapshot(Uri, dom.Name, "i2", new DeleteSnapshotOptions(), ctx);
        Assert.Equal(new[] { "i1" }, Engine.GetSnapshots(Uri, dom.Name, null, false, ctx).Select(s => s.Name));
        Assert.DoesNotContain("i2", InternalSnapshotTable(dom.File("base.qcow2")));
        Engine.DeleteSnapshot(Uri, dom.Name, "i1", new DeleteSnapshotOptions(), ctx);
        Assert.Empty(Engine.GetSnapshots(Uri, dom.Name, null, false, ctx));
        Assert.Empty(Engine.GetSnapshots(Uri, dom.Name, null, true, ctx));
        Assert.DoesNotContain("i1", InternalSnapshotTable(dom.File("base.qcow2")));
    }

    [Fact]
    public void Internal_snapshots_of_a_shut_off_domain_revert_running_paused_force_and_delete_children()
    {
        using var dom = TestDomain.Create("intoff", persistent: true, start: false);
        var image = dom.File("base.qcow2");
        var ctx = new RecordingOperationContext();
        Tool.WritePattern(image, 0x41, "0", "1M");

        var off1 = Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "off1" }, ctx);
        Assert.Equal(("shutoff", SnapshotLocation.Internal), (off1.State, off1.Location));
        Tool.WritePattern(image, 0x42, "0", "1M");

        Engine.RevertSnapshot(Uri, dom.Name, "off1", new RevertOptions(), ctx);
        Assert.Equal("shut off", dom.State);
        Assert.True(Tool.ReadsPattern(image, 0x41, "0", "1M"));

        Engine.RevertSnapshot(Uri, dom.Name, "off1", new RevertOptions { Running = true }, ctx);
        Assert.Equal("running", dom.State);

        // A managed save image next to a snapshot without memory: libvirt calls the revert risky.
        LibvirtDaemonFixture.Virsh("managedsave", dom.Name).EnsureSuccess();
        var risky = Assert.Throws<LibvirtException>(() => Engine.RevertSnapshot(Uri, dom.Name, "off1", new RevertOptions { Paused = true }, ctx));
        Assert.Equal(ErrorIds.SnapshotRevertNeedsForce, risky.ErrorId);
        Assert.Equal(KvmErrorKind.InvalidOperation, risky.Category);
        Assert.Contains("revert requires force", risky.Message, StringComparison.Ordinal); // libvirt's own words
        Assert.Contains("-Force", risky.Message, StringComparison.Ordinal);
        Assert.Equal("shut off", dom.State);

        Engine.RevertSnapshot(Uri, dom.Name, "off1", new RevertOptions { Paused = true, Force = true }, ctx);
        Assert.Equal("paused", dom.State);
        Assert.Contains("virDomainRevertToSnapshot(snapshot='off1', flags=Paused|Force)", ctx.VerboseMessages);

        LibvirtDaemonFixture.Virsh("destroy", dom.Name).EnsureSuccess();
        Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "off2" }, ctx);
        Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "off3" }, ctx);
        Assert.Equal(new[] { "off1", "off2", "off3" }, Engine.GetSnapshots(Uri, dom.Name, null, false, ctx).Select(s => s.Name));

        Engine.DeleteSnapshot(Uri, dom.Name, "off1", new DeleteSnapshotOptions { ChildrenOnly = true }, ctx);
        Assert.Equal(new[] { "off1" }, Engine.GetSnapshots(Uri, dom.Name, null, false, ctx).Select(s => s.Name));
        Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "off4" }, ctx);
        Engine.DeleteSnapshot(Uri, dom.Name, "off1", new DeleteSnapshotOptions { Children = true }, ctx);
        Assert.Empty(Engine.GetSnapshots(Uri, dom.Name, null, false, ctx));
        Assert.DoesNotContain("off", InternalSnapshotTable(image));
    }

    [Fact]
    public void Internal_snapshot_of_a_raw_disk_is_a_typed_error_that_names_the_disk_and_advises_disk_only()
    {
        using var dom = TestDomain.Create("raw", disks: dir =>
        {
            Tool.CreateRaw(dir.File("disk.raw"), "16M");
            return new[] { new TestDisk("vda", dir.File("disk.raw"), "raw") };
        });
        var before = Tool.HashTree(dom.Dir);

        var e = Assert.Throws<KvmSnapshotException>(() => Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "r1" }, new RecordingOperationContext()));

        Assert.Equal(ErrorIds.SnapshotNeedsQcow2, e.ErrorId);
        Assert.Contains("disk vda is not qcow2", e.Message, StringComparison.Ordinal);
        Assert.Equal($"New-KvmSnapshot -Domain '{dom.Name}' -Name 'r1' -DiskOnly -ConnectionUri '{Uri}'", e.RecommendedAction);
        Assert.Equal(dom.Name, e.Target);
        Assert.Equal(before, Tool.HashTree(dom.Dir));
        Assert.Empty(Engine.GetSnapshots(Uri, dom.Name, null, false, new RecordingOperationContext()));
    }

    [Fact]
    public void External_snapshot_without_metadata_reuse_external_and_quiesce_flags_reach_libvirt()
    {
        using var dom = TestDomain.Create("nometa");
        var ctx = new RecordingOperationContext();
        var overlay = dom.File("pre.qcow2");
        Tool.CreateQcow2(overlay, null, dom.File("base.qcow2"));

        var s = Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest
        {
            Name = "ghost",
            DiskOnly = true,
            NoMetadata = true,
            ReuseExternal = true,
            DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = overlay, Driver = "qcow2" } },
        }, ctx);

        Assert.Equal(("ghost", false, SnapshotLocation.External, "disk-snapshot"), (s.Name, s.HasMetadata, s.Location, s.State));
        Assert.Equal(overlay, dom.ActiveImage());
        Assert.Empty(Engine.GetSnapshots(Uri, dom.Name, null, false, ctx));
        Assert.Contains(ctx.VerboseMessages, m => m.Contains("flags=NoMetadata|DiskOnly|ReuseExternal", StringComparison.Ordinal));

        // No guest agent in a firmware-only guest: libvirt refuses to quiesce, and says why.
        var q = Assert.Throws<LibvirtException>(() => Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest
        {
            Name = "quiet", DiskOnly = true, Quiesce = true,
            DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = dom.File("q.qcow2") } },
        }, ctx));
        Assert.Contains("agent", q.Message, StringComparison.OrdinalIgnoreCase);
        Assert.False(File.Exists(dom.File("q.qcow2")));
    }

    [Fact]
    public void Snapshot_xml_is_built_safely_from_user_text()
    {
        using var dom = TestDomain.Create("xmlsafe");
        const string description = "<b>&\"quoted\" 'text'</b>";

        var s = Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "weird&<name>", Description = description }, new RecordingOperationContext());

        Assert.Equal(("weird&<name>", description), (s.Name, s.Description));
    }

    [Fact]
    public void External_snapshot_with_memory_state_is_created_and_its_revert_refused_clearly()
    {
        using var dom = TestDomain.Create("memsnap", persistent: true);
        var ctx = new RecordingOperationContext();

        var s = Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest
        {
            Name = "withmem",
            MemoryFile = dom.File("withmem.mem"),
            DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = dom.File("withmem.qcow2") } },
            Atomic = true,
        }, ctx);
        Assert.Equal(("external", dom.File("withmem.mem"), SnapshotLocation.External, "running"), (s.MemoryLocation, s.MemoryFile, s.Location, s.State));
        Assert.True(File.Exists(dom.File("withmem.mem")));
        Assert.Equal(dom.File("withmem.qcow2"), dom.ActiveImage());

        var e = Assert.Throws<KvmSnapshotException>(() => Engine.RevertSnapshot(Uri, dom.Name, "withmem", new RevertOptions { Force = true }, ctx));
        Assert.Equal(ErrorIds.SnapshotOperationUnsupported, e.ErrorId);
        Assert.Contains("memory state", e.Message, StringComparison.Ordinal);
        Assert.Equal("running", dom.State);
        Assert.Equal(dom.File("withmem.qcow2"), dom.ActiveImage());
    }
}
