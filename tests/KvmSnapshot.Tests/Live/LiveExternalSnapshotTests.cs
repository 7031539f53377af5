using System;
using System.IO;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Live;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

/// <summary>External disk-only snapshots: revert by hand where libvirt 9.0 refuses, and deletion.</summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveExternalSnapshotTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private static readonly LiveEngine Engine = LiveEngine.Default;

    /// <summary>base (A1 at 0) &lt;- s1 (B2 at 1M) &lt;- s2 (C3 at 2M, active); snapshots sn1 (froze base) and sn2 (froze s1).</summary>
    private static TestDomain TwoSnapshots(string tag, RecordingOperationContext ctx, bool persistent = true)
    {
        var dom = TestDomain.Create(tag, persistent: persistent);
        try
        {
            dom.GuestWrite("vda", 0xA1, "0", "1M");
            Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "sn1", DiskOnly = true, Atomic = true, DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = dom.File("s1.qcow2") } } }, ctx);
            dom.GuestWrite("vda", 0xB2, TestDomain.Mib(1), "1M");
            Engine.CreateSnapshot(Uri, dom.Name, new NewDomainSnapshotRequest { Name = "sn2", DiskOnly = true, Atomic = true, DiskSpecs = new[] { new DiskSpec { Disk = "vda", File = dom.File("s2.qcow2") } } }, ctx);
            dom.GuestWrite("vda", 0xC3, TestDomain.Mib(2), "1M");
            return dom;
        }
        catch
        {
            dom.Dispose();
            throw;
        }
    }

    [Fact]
    public void Revert_to_external_disk_only_snapshot_makes_a_new_overlay_and_keeps_the_abandoned_branch()
    {
        Assert.True(Engine.GetLibvirtVersion(Uri) < LiveEngine.ExternalRevertSinceVersion, "this machine's libvirtd reverts external snapshots itself; the by-hand path is not what runs");
        var ctx = new RecordingOperationContext();
        using var dom = TwoSnapshots("extrev", ctx);
        dom.Suspend();
        var branchBefore = Tool.HashTree(dom.Dir).Where(kv => kv.Key.EndsWith(".qcow2", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
        dom.Resume();

        // Running and no -Force: refused, nothing touched.
        var refused = Assert.Throws<KvmSnapshotException>(() => Engine.RevertSnapshot(Uri, dom.Name, "sn1", new RevertOptions(), ctx));
        Assert.Equal((ErrorIds.DomainStateInvalid, KvmErrorKind.InvalidOperation), (refused.ErrorId, refused.Category));
        Assert.Contains("-Force", refused.Message, StringComparison.Ordinal);
        Assert.Equal("running", dom.State);
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());
        Assert.False(File.Exists(dom.File("base.revert-sn1.qcow2")));

        // -Force -Running: destroyed, new overlay on base (the image active when sn1 was taken), started again.
        Engine.RevertSnapshot(Uri, dom.Name, "sn1", new RevertOptions { Force = true, Running = true }, ctx);
        var overlay = dom.File("base.revert-sn1.qcow2");
        Assert.Equal("running", dom.State);
        Assert.Equal(overlay, dom.ActiveImage());
        var chain = Assert.Single(Engine.GetChains(Uri, dom.Name, "vda", ctx));
        Assert.Equal(new[] { overlay, dom.File("base.qcow2") }, chain.Layers.Select(l => l.Path));
        Assert.True(dom.GuestReads("vda", 0xA1, "0", "1M"));
        Assert.True(dom.GuestReads("vda", 0x00, TestDomain.Mib(1), "2M")); // B2 and C3 came after sn1
        Assert.Equal("sn1", Assert.Single(Engine.GetSnapshots(Uri, dom.Name, null, true, ctx)).Name);
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("virDomainDefineXML(", StringComparison.Ordinal));
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith($"virDomainDestroy(dom='{dom.Name}')", StringComparison.Ordinal));
        // The by-hand path was chosen from the daemon's version (virConnectGetLibVersion), not the client library's.
        Assert.Contains($"virConnectGetLibVersion(conn='{Uri}') = {Engine.GetLibvirtVersion(Uri)} (asked once per connection)", ctx.VerboseMessages);

        // The abandoned branch is intact: every file still there, unchanged, and its chain still reads A1 B2 C3.
        foreach (var (file, hash) in branchBefore) Assert.Equal(hash, Tool.Sha256(file));
        Assert.True(Tool.ReadsPattern(dom.File("s2.qcow2"), 0xC3, TestDomain.Mib(2), "1M"));
        Assert.True(Tool.ReadsPattern(dom.File("s2.qcow2"), 0xB2, TestDomain.Mib(1), "1M"));

        // Paused, onto sn2: the state sn2 froze is s1 (A1 + B2).
        Engine.RevertSnapshot(Uri, dom.Name, "sn2", new RevertOptions { Force = true, Paused = true }, ctx);
        Assert.Equal("paused", dom.State);
        Assert.Equal(dom.File("s1.revert-sn2.qcow2"), dom.ActiveImage());
        Assert.True(dom.GuestReads("vda", 0xA1, "0", "1M"));
        Assert.True(dom.GuestReads("vda", 0xB2, TestDomain.Mib(1), "1M"));
        Assert.True(dom.GuestReads("vda", 0x00, TestDomain.Mib(2), "1M"));
        Assert.True(File.Exists(overlay)); // the first revert's overlay is kept too

        // libvirt would delete sn1 by merging s1 into base and removing s1, which the abandoned s2 and the first
        // revert's overlay still need: refused before libvirt is asked.
        var hashes = new[] { "s1.qcow2", "base.qcow2" }.ToDictionary(f => f, f => Tool.Sha256(dom.File(f)));
        var shared = Assert.Throws<KvmSnapshotException>(() => Engine.DeleteSnapshot(Uri, dom.Name, "sn1", new DeleteSnapshotOptions(), ctx));
        Assert.Equal(ErrorIds.ChainBaseShared, shared.ErrorId);
        Assert.Contains(dom.File("s2.qcow2"), shared.Message, StringComparison.Ordinal);
        Assert.Contains(overlay, shared.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(ctx.VerboseMessages, m => m.StartsWith("virDomainSnapshotDelete", StringComparison.Ordinal));
        Assert.Equal(new[] { "sn1", "sn2" }, Engine.GetSnapshots(Uri, dom.Name, null, false, ctx).Select(s => s.Name));
        foreach (var (file, hash) in hashes) Assert.Equal(hash, Tool.Sha256(dom.File(file)));

        // Shut off, no -Running/-Paused: stays off, and the definition points at the newest overlay.
        LibvirtDaemonFixture.Virsh("destroy", dom.Name).EnsureSuccess();
        Engine.RevertSnapshot(Uri, dom.Name, "sn1", new RevertOptions(), ctx);
        Assert.Equal("shut off", dom.State);
        Assert.Equal(dom.File("base.revert-sn1-2.qcow2"), dom.ActiveImage());
    }

    [Fact]
    public void Revert_to_external_snapshot_of_a_transient_domain_is_refused_clearly()
    {
        var ctx = new RecordingOperationContext();
        using var dom = TwoSnapshots("extrevt", ctx, persistent: false);

        var e = Assert.Throws<KvmSnapshotException>(() => Engine.RevertSnapshot(Uri, dom.Name, "sn1", new RevertOptions { Force = true, Running = true }, ctx));

        Assert.Equal(ErrorIds.SnapshotOperationUnsupported, e.ErrorId);
        Assert.Contains("transient", e.Message, StringComparison.Ordinal);
        Assert.Equal("running", dom.State);
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());
    }

    [Fact]
    public void Deleting_external_snapshots_with_children_is_refused_clearly_and_metadata_only_works()
    {
        var ctx = new RecordingOperationContext();
        using var dom = TwoSnapshots("extdel", ctx);
        var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));

        var e = Assert.Throws<KvmSnapshotException>(() => Engine.DeleteSnapshot(Uri, dom.Name, "sn1", new DeleteSnapshotOptions { Children = true }, ctx));
        Assert.Equal((ErrorIds.SnapshotOperationUnsupported, KvmErrorKind.NotImplemented), (e.ErrorId, e.Category));
        Assert.Contains("libvirt 9.0 cannot delete the external snapshot 'sn1'", e.Message, StringComparison.Ordinal);
        Assert.Contains("-MetadataOnly", e.Message, StringComparison.Ordinal);
        Assert.Equal(new[] { "sn1", "sn2" }, Engine.GetSnapshots(Uri, dom.Name, null, false, ctx).Select(s => s.Name));
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());

        Engine.DeleteSnapshot(Uri, dom.Name, "sn1", new DeleteSnapshotOptions { Children = true, MetadataOnly = true }, ctx);
        Assert.Empty(Engine.GetSnapshots(Uri, dom.Name, null, false, ctx));
        Assert.Equal(dom.File("s2.qcow2"), dom.ActiveImage());
        Assert.True(File.Exists(dom.File("s1.qcow2")));
        Assert.True(dom.GuestViewEquals("vda", before));
    }

    [Fact]
    public void Deleting_the_newest_external_snapshot_lets_libvirt_merge_it_and_keeps_the_guest_data()
    {
        var ctx = new RecordingOperationContext();
        using var dom = TwoSnapshots("extdel1", ctx);
        var before = dom.SnapshotGuestView("vda", dom.File("before.raw"));

        // libvirt 9.0 deletes a single external snapshot itself by committing its overlay down (a block job).
        Engine.DeleteSnapshot(Uri, dom.Name, "sn2", new DeleteSnapshotOptions(), ctx);

        Assert.Equal(new[] { "sn1" }, Engine.GetSnapshots(Uri, dom.Name, null, false, ctx).Select(s => s.Name));
        Assert.Equal(dom.File("s1.qcow2"), dom.ActiveImage());
        Assert.True(dom.GuestViewEquals("vda", before));
    }
}
