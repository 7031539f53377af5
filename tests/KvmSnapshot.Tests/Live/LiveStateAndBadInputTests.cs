using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Live;
using KvmSnapshot.Model.Contracts;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

[Collection(LibvirtCollection.Name)]
public sealed class LiveStateAndBadInputTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private const string DeadUri = "qemu+tcp://127.0.0.1:1/system";
    private static readonly LiveEngine Engine = LiveEngine.Default;

    [Fact]
    public void Save_stops_the_domain_and_restore_brings_it_back_by_name_running_or_paused()
    {
        using var dom = TestDomain.Create("save");
        var ctx = new RecordingOperationContext();
        dom.GuestWrite("vda", 0x5A, "0", "1M");
        var state = dom.File("state.save");

        Engine.SaveState(Uri, dom.Name, state, running: false, paused: true, ctx);

        Assert.False(dom.Exists); // a transient domain is gone once saved
        Assert.True(new FileInfo(state).Length > 0);
        Assert.Contains($"virDomainSaveFlags(dom='{dom.Name}', to='{state}', dxml=NULL, flags=Paused)", ctx.VerboseMessages);
        Assert.Contains($"Saving {dom.Name}", ctx.CompletedActivities);

        Assert.Equal(dom.Name, Engine.RestoreState(Uri, state, running: false, paused: true, ctx));
        Assert.Equal("paused", dom.State);
        Assert.True(dom.GuestReads("vda", 0x5A, "0", "1M"));
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith($"virDomainSaveImageGetXMLDesc(file='{state}'", StringComparison.Ordinal));

        // A new file: the first one exists, and a save never replaces a file without force.
        var again = dom.File("state2.save");
        Engine.SaveState(Uri, dom.Name, again, running: true, paused: false, ctx);
        Assert.Equal(dom.Name, Engine.RestoreState(Uri, again, running: false, paused: false, ctx));
        Assert.Equal("running", dom.State); // the save asked for running
    }

    [Fact]
    public void Restore_from_a_missing_file_is_DomainStateFileNotFound()
    {
        using var dir = new TempDirectory("live");
        var e = Assert.Throws<KvmSnapshotException>(() => Engine.RestoreState(Uri, dir.File("none.save"), false, false, new RecordingOperationContext()));
        Assert.Equal((ErrorIds.DomainStateFileNotFound, KvmErrorKind.ObjectNotFound, dir.File("none.save")), (e.ErrorId, e.Category, e.Target));
    }

    [Fact]
    public void Saving_a_shut_off_domain_is_DomainStateInvalid_with_libvirts_message()
    {
        using var dom = TestDomain.Create("saveoff", persistent: true, start: false);
        var e = Assert.Throws<LibvirtException>(() => Engine.SaveState(Uri, dom.Name, dom.File("x.save"), false, false, new RecordingOperationContext()));
        Assert.Equal((ErrorIds.DomainStateInvalid, KvmErrorKind.InvalidOperation), (e.ErrorId, e.Category));
        Assert.Contains("domain is not running", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(dom.File("x.save")));
    }

    [Fact]
    public void Unknown_domain_is_DomainNotFound_for_every_operation()
    {
        var ctx = new RecordingOperationContext();
        const string name = "kvmsnap-no-such-domain";
        void Check(Action call)
        {
            var e = Assert.Throws<LibvirtException>(call);
            Assert.Equal((ErrorIds.DomainNotFound, KvmErrorKind.ObjectNotFound, (object)name), (e.ErrorId, e.Category, e.Target));
            Assert.Contains($"no domain with matching name '{name}'", e.Message, StringComparison.Ordinal);
        }

        Check(() => Engine.GetDisks(Uri, name, ctx));
        Check(() => Engine.GetChains(Uri, name, null, ctx));
        Check(() => Engine.GetSnapshots(Uri, name, null, false, ctx));
        Check(() => Engine.CreateSnapshot(Uri, name, new NewDomainSnapshotRequest { Name = "x" }, ctx));
        Check(() => Engine.RevertSnapshot(Uri, name, "x", new RevertOptions(), ctx));
        Check(() => Engine.DeleteSnapshot(Uri, name, "x", new DeleteSnapshotOptions(), ctx));
        Check(() => Engine.BlockCommit(Uri, new BlockCommitRequest { Domain = name, Disk = "vda" }, ctx));
        Check(() => Engine.BlockPull(Uri, new BlockPullRequest { Domain = name, Disk = "vda" }, ctx));
        Check(() => Engine.GetBlockJobs(Uri, name, null, ctx));
        Check(() => Engine.AbortBlockJob(Uri, name, "vda", false, ctx));
        Check(() => Engine.PivotBlockJob(Uri, name, "vda", ctx));
        Check(() => Engine.SaveState(Uri, name, "/tmp/none.save", false, false, ctx));
    }

    [Fact]
    public void Unknown_snapshot_disk_top_or_base_change_nothing()
    {
        using var dom = TestDomain.Create("badin", disks: dir =>
        {
            Tool.CreateQcow2(dir.File("base.qcow2"), "64M");
            Tool.CreateQcow2(dir.File("mid.qcow2"), null, dir.File("base.qcow2"));
            Tool.CreateQcow2(dir.File("top.qcow2"), null, dir.File("mid.qcow2"));
            return new[] { new TestDisk("vda", dir.File("top.qcow2")) };
        });
        var ctx = new RecordingOperationContext();
        Tool.CreateQcow2(dom.File("stranger.qcow2"), "64M");
        dom.Suspend(); // nothing writes while the tree is hashed
        var before = Tool.HashTree(dom.Dir);
        string Error(Action call) => Assert.ThrowsAny<KvmSnapshotException>(call).ErrorId;
        BlockCommitRequest Commit(string? top, string? @base) => new() { Domain = dom.Name, Disk = "vda", Top = top, Base = @base };

        Assert.Equal(ErrorIds.SnapshotNotFound, Error(() => Engine.GetSnapshots(Uri, dom.Name, "nope", false, ctx)));
        Assert.Equal(ErrorIds.SnapshotNotFound, Error(() => Engine.RevertSnapshot(Uri, dom.Name, "nope", new RevertOptions { Force = true }, ctx)));
        Assert.Equal(ErrorIds.SnapshotNotFound, Error(() => Engine.DeleteSnapshot(Uri, dom.Name, "nope", new DeleteSnapshotOptions(), ctx)));

        Assert.Equal(ErrorIds.DomainDiskNotFound, Error(() => Engine.GetChains(Uri, dom.Name, "vdz", ctx)));
        Assert.Equal(ErrorIds.DomainDiskNotFound, Error(() => Engine.GetBlockJobs(Uri, dom.Name, "vdz", ctx)));
        Assert.Equal(ErrorIds.DomainDiskNotFound, Error(() => Engine.BlockCommit(Uri, Commit(null, null) with { Disk = "vdz" }, ctx)));
        Assert.Equal(ErrorIds.DomainDiskNotFound, Error(() => Engine.BlockPull(Uri, new BlockPullRequest { Domain = dom.Name, Disk = "vdz" }, ctx)));
        Assert.Equal(ErrorIds.DomainDiskNotFound, Error(() => Engine.PivotBlockJob(Uri, dom.Name, "vdz", ctx)));

        var notInChain = Assert.Throws<KvmSnapshotException>(() => Engine.BlockCommit(Uri, Commit(dom.File("stranger.qcow2"), null), ctx));
        Assert.Equal((ErrorIds.ChainLayerNotFound, KvmErrorKind.ObjectNotFound), (notInChain.ErrorId, notInChain.Category));
        Assert.Contains("base.qcow2 <- mid.qcow2 <- top.qcow2", notInChain.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorIds.ChainLayerNotFound, Error(() => Engine.BlockCommit(Uri, Commit(null, dom.File("stranger.qcow2")), ctx)));
        Assert.Equal(ErrorIds.ChainLayerNotFound, Error(() => Engine.BlockPull(Uri, new BlockPullRequest { Domain = dom.Name, Disk = "vda", Base = dom.File("stranger.qcow2") }, ctx)));

        var above = Assert.Throws<KvmSnapshotException>(() => Engine.BlockCommit(Uri, Commit(dom.File("base.qcow2"), dom.File("mid.qcow2")), ctx));
        Assert.Equal((ErrorIds.ChainBaseAboveTop, KvmErrorKind.InvalidArgument), (above.ErrorId, above.Category));
        Assert.Equal(ErrorIds.ChainBaseAboveTop, Error(() => Engine.BlockCommit(Uri, Commit(dom.File("mid.qcow2"), dom.File("mid.qcow2")), ctx)));
        Assert.Equal(ErrorIds.ChainBaseAboveTop, Error(() => Engine.BlockCommit(Uri, Commit(dom.File("base.qcow2"), null), ctx)));
        Assert.Equal(ErrorIds.ChainBaseAboveTop, Error(() => Engine.BlockPull(Uri, new BlockPullRequest { Domain = dom.Name, Disk = "vda", Base = dom.File("top.qcow2") }, ctx)));
        // libvirt's own index notation names the same layers (numbered from the active layer when the domain
        // started): vda[3] is the base, vda[2] the middle layer.
        Assert.Equal(ErrorIds.ChainBaseAboveTop, Error(() => Engine.BlockCommit(Uri, Commit("vda[3]", "vda[2]"), ctx)));
        Assert.Equal(ErrorIds.ChainLayerNotFound, Error(() => Engine.BlockCommit(Uri, Commit("vda[9]", null), ctx)));

        // None of these started anything or touched a file.
        Assert.DoesNotContain(ctx.VerboseMessages, m => m.StartsWith("virDomainBlock", StringComparison.Ordinal) || m.StartsWith("virDomainSnapshotDelete", StringComparison.Ordinal) || m.StartsWith("virDomainRevert", StringComparison.Ordinal));
        Assert.Equal(before, Tool.HashTree(dom.Dir));
        Assert.Equal(dom.File("top.qcow2"), dom.ActiveImage());
        Assert.False(dom.HasBlockJob());
    }

    [Fact]
    public void A_uri_that_does_not_answer_is_ConnectionFailed_with_libvirts_reason()
    {
        var ctx = new RecordingOperationContext();
        var e = Assert.Throws<LibvirtException>(() => Engine.GetDisks(DeadUri, "any", ctx));
        Assert.Equal((ErrorIds.ConnectionFailed, KvmErrorKind.ConnectionError, (object)DeadUri), (e.ErrorId, e.Category, e.Target));
        Assert.Contains("127.0.0.1", e.Message, StringComparison.Ordinal);
        Assert.Contains(DeadUri, e.Message, StringComparison.Ordinal);
        Assert.Contains($"virConnectOpen(name='{DeadUri}')", ctx.VerboseMessages);
        Assert.Equal(ErrorIds.ConnectionFailed, Assert.Throws<LibvirtException>(() => Engine.GetDomainNames(DeadUri)).ErrorId);
        Assert.Equal(ErrorIds.ConnectionFailed, Assert.Throws<LibvirtException>(() => Engine.ResolveUri(DeadUri)).ErrorId);
    }
}
