using System;
using System.IO;
using System.Linq;
using System.Threading;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

/// <summary>
/// Backup-KvmDomain's engine on real domains: full and incremental push backups through libvirt's backup API, each
/// point restored and compared byte for byte with the guest's disk as it was then; cancellation; bad input.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveBackupTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private static readonly LiveEngine Engine = LiveEngine.Default;
    private static readonly BackupSets Sets = BackupSets.Default;

    internal static string[] Checkpoints(TestDomain dom)
        => LibvirtDaemonFixture.Virsh("checkpoint-list", dom.Name, "--name").EnsureSuccess().StdOut
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    internal static string[] Snapshots(TestDomain dom)
        => LibvirtDaemonFixture.Virsh("snapshot-list", dom.Name, "--name").EnsureSuccess().StdOut
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    internal static string[] FilesIn(string folder)
        => Directory.GetFileSystemEntries(folder).Select(Path.GetFileName).OrderBy(f => f, StringComparer.Ordinal).ToArray()!;

    private static void RemoveCheckpoints(TestDomain dom)
    {
        foreach (var c in Checkpoints(dom)) LibvirtDaemonFixture.Virsh("checkpoint-delete", dom.Name, c);
    }

    /// <summary>Cancels its token when a verbose report contains <paramref name="trigger"/> (the call is then made, and the job must be undone).</summary>
    private sealed class CancelOn : IOperationContext
    {
        private readonly CancellationTokenSource _cts = new();
        private readonly string _trigger;
        public CancelOn(string trigger) => _trigger = trigger;
        public CancellationToken Cancellation => _cts.Token;
        public void Verbose(string message)
        {
            if (message.Contains(_trigger, StringComparison.Ordinal)) _cts.Cancel();
        }
        public void Progress(string activity, string status, int percent) { }
        public void ProgressCompleted(string activity) { }
        public void Warning(string message) { }
    }

    [Fact]
    public void Full_then_two_incrementals_restore_each_point_byte_exact_and_leave_the_domain_on_its_image()
    {
        using var dom = TestDomain.Create("bk-walk");
        var set = dom.File("set");
        var ctx = new RecordingOperationContext();
        var original = dom.ActiveImage();

        dom.GuestWrite("vda", 0x41, "0", "8M");
        var refA = dom.SnapshotGuestView("vda", dom.File("A.raw"));
        var full = Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), ctx);

        dom.GuestWrite("vda", 0x42, "1M", "1M");
        dom.GuestWrite("vda", 0x42, "16M", "2M");
        var refB = dom.SnapshotGuestView("vda", dom.File("B.raw"));
        var inc1 = Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, true, false), ctx);

        dom.GuestWrite("vda", 0x43, "2M", "1M");
        dom.GuestWrite("vda", 0x43, "32M", "1M");
        var refC = dom.SnapshotGuestView("vda", dom.File("C.raw"));
        var inc2 = Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, true, false), ctx);

        Assert.Equal(("001-full", KvmBackupKind.Full, null, "BackupApi"), (full.Name, full.Kind, full.Parent, full.Method));
        Assert.Equal(("002-incremental", KvmBackupKind.Incremental, "001-full"), (inc1.Name, inc1.Kind, inc1.Parent));
        Assert.Equal(("003-incremental", KvmBackupKind.Incremental, "002-incremental"), (inc2.Name, inc2.Kind, inc2.Parent));
        Assert.Equal(new[] { "vda" }, full.Disks);
        Assert.True(full.BytesCopied >= 8 << 20, $"full copied {full.BytesCopied}");
        // Incrementals copy what changed (3 MiB, then 2 MiB), not the disk.
        Assert.InRange(inc1.BytesCopied, 3 << 20, 5 << 20);
        Assert.InRange(inc2.BytesCopied, 2 << 20, 4 << 20);
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("virDomainBackupBegin", StringComparison.Ordinal) && m.Contains("<incremental>", StringComparison.Ordinal));
        Assert.Contains(ctx.ProgressReports, p => p.Activity == $"Backing up {dom.Name}");
        Assert.Contains($"Backing up {dom.Name}", ctx.CompletedActivities);

        // Each point restored into a standalone image equals the guest's disk at that moment.
        foreach (var (name, reference) in new[] { ("001-full", refA), ("002-incremental", refB), ("003-incremental", refC) })
        {
            var restored = Sets.Restore(set, name, null, dom.File($"restored-{name}.qcow2"), false, ctx);
            Assert.True(Tool.SameContent(reference, restored.Path), $"{name} differs from the guest's disk at that moment");
            Assert.DoesNotContain("backing file", Tool.Run("qemu-img", "info", "-U", restored.Path).EnsureSuccess().StdOut, StringComparison.Ordinal);
        }
        Assert.False(Tool.SameContent(refA, refC));

        // The set lists the three, in order; every file verifies.
        Assert.Equal(new[] { "001-full", "002-incremental", "003-incremental" }, Sets.Get(set, null).Select(b => b.Name));
        Assert.All(Sets.Test(set, null, ctx), r => Assert.True(r.Healthy, string.Join("; ", r.Problems)));

        // The domain runs on its original image; no snapshot; only the newest checkpoint (the next incremental's start).
        Assert.Equal(original, dom.ActiveImage());
        Assert.Equal("running", dom.State);
        Assert.Empty(Snapshots(dom));
        Assert.Equal(new[] { inc2.Checkpoint! }, Checkpoints(dom));
        Assert.Equal(new[] { "001-full.vda.qcow2", "002-incremental.vda.qcow2", "003-incremental.vda.qcow2", "kvmsnap-backup.json" }, FilesIn(set));

        // Retention: the newest incremental needs its whole chain, so nothing goes until a new full backup starts a new one.
        Assert.Empty(Sets.Remove(set, 1, ctx));
        // These two wait for QEMU to close the backup files by its open descriptors alone, as where QEMU takes no
        // file locks: the checksum recorded is the closed file's, and the backup restores byte-exact.
        var lockBlind = new LiveEngine { WatchTargetLocks = false };
        lockBlind.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), ctx);
        dom.GuestWrite("vda", 0x44, "3M", "1M");
        var refD = dom.SnapshotGuestView("vda", dom.File("D.raw"));
        var inc3 = lockBlind.Backup(Uri, new BackupRequest(dom.Name, set, null, true, false), ctx);
        var recorded = BackupManifest.Load(set).Backups.Single(b => b.Name == inc3.Name).Files.Single();
        Assert.Equal(recorded.Sha256, BackupManifest.Sha256Of(Path.Combine(set, recorded.File)));
        Assert.Equal(new[] { "001-full", "002-incremental", "003-incremental" }, Sets.PlanRemove(set, 2).Select(b => b.Name));
        Assert.Equal(new[] { "001-full", "002-incremental", "003-incremental" }, Sets.Remove(set, 1, ctx).Select(b => b.Name));
        Assert.Equal(new[] { "004-full.vda.qcow2", "005-incremental.vda.qcow2", "kvmsnap-backup.json" }, FilesIn(set));
        Assert.True(Tool.SameContent(refD, Sets.Restore(set, null, null, dom.File("restored-D.qcow2"), false, ctx).Path));
        Assert.All(Sets.Test(set, null, ctx), r => Assert.True(r.Healthy, string.Join("; ", r.Problems)));
        RemoveCheckpoints(dom);
    }

    [Fact]
    public void Method_Snapshot_takes_full_backups_through_a_temporary_overlay_and_commits_it_back()
    {
        using var dom = TestDomain.Create("bk-snap");
        var set = dom.File("set");
        var ctx = new RecordingOperationContext();
        var original = dom.ActiveImage();
        var before = FilesIn(dom.Dir);

        dom.GuestWrite("vda", 0x61, "0", "4M");
        var refA = dom.SnapshotGuestView("vda", dom.File("A.raw"));
        // A set that starts with a backup-API full backup: its checkpoint must not stop the snapshot, and is retired.
        Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), ctx);
        var a = Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false) { ViaSnapshot = true }, ctx);
        dom.GuestWrite("vda", 0x62, "2M", "4M");
        var refB = dom.SnapshotGuestView("vda", dom.File("B.raw"));
        var b = Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false) { ViaSnapshot = true }, ctx);

        Assert.Equal(("Snapshot", (string?)null, KvmBackupKind.Full), (a.Method, a.Checkpoint, a.Kind));
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("virDomainSnapshotCreateXML", StringComparison.Ordinal));
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("virDomainBlockCommit", StringComparison.Ordinal));
        Assert.True(Tool.SameContent(refA, Sets.Restore(set, a.Name, null, dom.File("rA.qcow2"), false, ctx).Path));
        Assert.True(Tool.SameContent(refB, Sets.Restore(set, b.Name, null, dom.File("rB.qcow2"), false, ctx).Path));
        Assert.True(dom.GuestViewEquals("vda", refB));
        Assert.Equal(original, dom.ActiveImage());
        Assert.Empty(Snapshots(dom));
        Assert.Empty(Checkpoints(dom));
        Assert.Equal(before.Concat(new[] { "A.raw", "B.raw", "rA.qcow2", "rB.qcow2", "set" }).OrderBy(f => f, StringComparer.Ordinal), FilesIn(dom.Dir));
        var error = Assert.Throws<KvmSnapshotException>(() => Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, true, false) { ViaSnapshot = true }, ctx));
        Assert.Equal(ErrorIds.BackupIncrementalUnavailable, error.ErrorId);
    }

    [Fact]
    public void Restore_into_a_shut_off_domain_points_its_disk_at_the_restored_image_and_refuses_a_running_one()
    {
        using var dom = TestDomain.Create("bk-into", persistent: true, start: false);
        var set = dom.File("set");
        var ctx = new RecordingOperationContext();
        var old = dom.Disks[0].Path;
        Tool.WritePattern(old, 0x31, "0", "1M");
        var reference = dom.File("ref.qcow2");
        Tool.Run("qemu-img", "convert", "-O", "qcow2", old, reference).EnsureSuccess();
        Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), ctx);
        Tool.WritePattern(old, 0x32, "0", "1M");   // the disk changes after the backup

        var restored = Engine.RestoreBackup(Uri, set, null, null, dom.Name, force: false, skipSpaceCheck: false, ctx);

        Assert.Equal(dom.File($"{dom.Name}-vda-001-full.qcow2"), restored.Path);
        Assert.Equal(restored.Path, dom.ActiveImage());
        Assert.True(Tool.SameContent(reference, restored.Path));
        Assert.True(File.Exists(old), "the old image is kept without -Force");

        // The same point again: its file name is taken (it is the disk now), so nothing changes.
        Assert.Equal(ErrorIds.FileExists, Assert.ThrowsAny<KvmSnapshotException>(() => Engine.RestoreBackup(Uri, set, "001-full", "vda", dom.Name, true, false, ctx)).ErrorId);
        Assert.Equal(restored.Path, dom.ActiveImage());

        // -Force: the image the disk had goes, as nothing else uses it.
        Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), ctx);
        var second = Engine.RestoreBackup(Uri, set, "002-full", null, dom.Name, force: true, skipSpaceCheck: false, ctx);
        Assert.Equal(second.Path, dom.ActiveImage());
        Assert.False(File.Exists(restored.Path));
        Assert.True(Tool.SameContent(reference, second.Path));

        // A running domain's disk is never replaced.
        LibvirtDaemonFixture.Virsh("start", dom.Name).EnsureSuccess();
        var running = Assert.ThrowsAny<KvmSnapshotException>(() => Engine.RestoreBackup(Uri, set, "001-full", null, dom.Name, true, false, ctx));
        Assert.Equal(ErrorIds.DomainStateInvalid, running.ErrorId);
        Assert.Equal(second.Path, dom.ActiveImage());
    }

    [Fact]
    public void A_destination_in_the_domains_own_folder_whose_backup_name_is_its_image_is_refused()
    {
        using var dom = TestDomain.Create("bk-clash", persistent: true, start: false, disks: d =>
        {
            var image = d.File("001-full.vda.qcow2");
            Tool.CreateQcow2(image, "16M");
            return new[] { new TestDisk("vda", image) };
        });
        var hash = Tool.Sha256(dom.Disks[0].Path);

        var error = Assert.ThrowsAny<KvmSnapshotException>(() => Engine.Backup(Uri, new BackupRequest(dom.Name, dom.Dir, null, false, false), new RecordingOperationContext()));

        Assert.Equal(ErrorIds.BackupDestinationInvalid, error.ErrorId);
        Assert.Equal(hash, Tool.Sha256(dom.Disks[0].Path));
        Assert.False(File.Exists(Path.Combine(dom.Dir, "kvmsnap-backup.json")));
    }

    [Fact]
    public void Retention_never_deletes_a_file_another_image_backs_onto()
    {
        using var dom = TestDomain.Create("bk-keep", persistent: true, start: false);
        var set = dom.File("set");
        var ctx = new RecordingOperationContext();
        Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), ctx);
        Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), ctx);
        // Someone made an overlay on the first backup (to look inside it): that file must stay.
        Tool.CreateQcow2(dom.File("peek.qcow2"), null, Path.Combine(set, "001-full.vda.qcow2"));
        var before = File.ReadAllText(Path.Combine(set, "kvmsnap-backup.json"));

        var error = Assert.ThrowsAny<KvmSnapshotException>(() => Sets.Remove(set, 1, ctx));

        Assert.Equal(ErrorIds.DiskImageInUse, error.ErrorId);
        Assert.Equal(before, File.ReadAllText(Path.Combine(set, "kvmsnap-backup.json")));
        Assert.True(File.Exists(Path.Combine(set, "001-full.vda.qcow2")));
        File.Delete(dom.File("peek.qcow2"));
        Assert.Equal("001-full", Assert.Single(Sets.Remove(set, 1, ctx)).Name);
        Assert.Equal(new[] { "002-full" }, Sets.Get(set, null).Select(b => b.Name));
    }

    [Fact]
    public void Cancelling_a_full_and_an_incremental_backup_removes_their_checkpoint_and_files_and_the_next_backup_succeeds()
    {
        using var dom = TestDomain.Create("bk-cancel");
        var set = dom.File("set");
        var original = dom.ActiveImage();
        dom.GuestWrite("vda", 0x51, "0", "32M");

        var cancelled = Assert.Throws<KvmSnapshotException>(() =>
            Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), new CancelOn("virDomainBackupBegin")));
        Assert.Equal(ErrorIds.OperationCancelled, cancelled.ErrorId);
        Assert.Empty(Checkpoints(dom));
        Assert.False(Directory.Exists(set), "a cancelled first backup leaves no folder behind");
        Assert.Equal(original, dom.ActiveImage());

        var ctx = new RecordingOperationContext();
        var full = Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), ctx);
        dom.GuestWrite("vda", 0x52, "4M", "4M");
        var before = FilesIn(set);
        var manifest = File.ReadAllText(Path.Combine(set, "kvmsnap-backup.json"));

        cancelled = Assert.Throws<KvmSnapshotException>(() =>
            Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, true, false), new CancelOn("virDomainBackupBegin")));
        Assert.Equal(ErrorIds.OperationCancelled, cancelled.ErrorId);
        Assert.Equal(before, FilesIn(set));
        Assert.Equal(manifest, File.ReadAllText(Path.Combine(set, "kvmsnap-backup.json")));
        Assert.Equal(new[] { full.Checkpoint! }, Checkpoints(dom));
        Assert.Single(Sets.Get(set, null));
        Assert.Equal(original, dom.ActiveImage());
        Assert.False(dom.HasBlockJob());

        var reference = dom.SnapshotGuestView("vda", dom.File("ref.raw"));
        var inc = Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, true, false), ctx);
        Assert.Equal("002-incremental", inc.Name);
        Assert.True(Tool.SameContent(reference, Sets.Restore(set, null, null, dom.File("r.qcow2"), false, ctx).Path));
        RemoveCheckpoints(dom);
    }

    [Fact]
    public void A_shut_off_domain_is_copied_with_qemu_img_at_the_bandwidth_asked_and_its_incrementals_hold_only_the_changes()
    {
        using var dom = TestDomain.Create("bk-off", persistent: true, start: false);
        var disk = dom.Disks[0].Path;
        Tool.WritePattern(disk, 0x61, "0", "24M");
        var set = dom.File("set");
        var ctx = new RecordingOperationContext();

        // -Bandwidth 16 MiB/s: 24 MiB of data cannot be copied in less than about 1.5 s (only a lower bound is checked).
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var full = Engine.Backup(Uri, new BackupRequest(dom.Name, set, new[] { "vda" }, false, false) { Bandwidth = 16UL << 20 }, ctx);
        clock.Stop();

        Assert.Equal(("Copy", (string?)null, KvmBackupKind.Full), (full.Method, full.Checkpoint, full.Kind));
        Assert.Contains(ctx.VerboseMessages, m => m.Contains("convert", StringComparison.Ordinal) && m.Contains(" -r 16777216 ", StringComparison.Ordinal));
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.2), $"24 MiB at 16 MiB/s took {clock.Elapsed}");
        Assert.True(Tool.SameContent(disk, full.Files[0]));

        // The offline incremental: only what differs from the last backup, backing onto it (recompressed with -Compress); -Quiesce has nothing to freeze.
        Tool.WritePattern(disk, 0x62, "4M", "1M");
        Tool.WritePattern(disk, 0x00, "20M", "64k");
        var reference = dom.File("B.raw");
        Tool.Run("qemu-img", "convert", "-O", "raw", disk, reference).EnsureSuccess();
        var bandwidth = Assert.Throws<KvmSnapshotException>(() => Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, true, false) { Bandwidth = 1 << 20 }, ctx));
        Assert.Equal(ErrorIds.BackupBandwidthUnsupported, bandwidth.ErrorId);
        var inc = Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, true, Compress: true) { Quiesce = true }, ctx);

        Assert.Equal(("002-incremental", KvmBackupKind.Incremental, "001-full", "Copy"), (inc.Name, inc.Kind, inc.Parent, inc.Method));
        Assert.Contains(ctx.VerboseMessages, m => m.Contains("-Quiesce has nothing to freeze", StringComparison.Ordinal));
        Assert.InRange(inc.BytesCopied, 1, 2 << 20);
        Assert.Contains(ctx.VerboseMessages, m => m.Contains("convert", StringComparison.Ordinal) && m.Contains(" -c ", StringComparison.Ordinal) && m.Contains("-B 001-full.vda.qcow2", StringComparison.Ordinal));
        Assert.Contains("backing file: 001-full.vda.qcow2", Tool.Run("qemu-img", "info", inc.Files[0]).EnsureSuccess().StdOut, StringComparison.Ordinal);
        Assert.True(Tool.SameContent(reference, Sets.Restore(set, null, null, dom.File("rB.qcow2"), false, ctx).Path));
        Assert.True(Tool.SameContent(disk, Sets.Restore(set, "002-incremental", null, dom.File("rB2.qcow2"), false, ctx).Path));
        Assert.All(Sets.Test(set, null, ctx), r => Assert.True(r.Healthy, string.Join("; ", r.Problems)));
        Assert.Equal(new[] { "001-full", "002-incremental" }, Sets.Get(set, null).Select(b => b.Name));
    }

    [Fact]
    public void Bad_input_is_refused_with_typed_errors_and_changes_nothing()
    {
        using var dom = TestDomain.Create("bk-bad");
        var ctx = new RecordingOperationContext();
        var set = dom.File("set");
        KvmSnapshotException Fails(Action a) => Assert.ThrowsAny<KvmSnapshotException>(a);

        Assert.Equal(ErrorIds.DomainNotFound, Fails(() => Engine.Backup(Uri, new BackupRequest("kvmsnap-b-no-such-domain", set, null, false, false), ctx)).ErrorId);
        Assert.Equal(ErrorIds.DomainDiskNotFound, Fails(() => Engine.Backup(Uri, new BackupRequest(dom.Name, set, new[] { "vdz" }, false, false), ctx)).ErrorId);
        File.WriteAllText(dom.File("a-file"), "x");
        Assert.Equal(ErrorIds.BackupDestinationInvalid, Fails(() => Engine.Backup(Uri, new BackupRequest(dom.Name, dom.File("a-file"), null, false, false), ctx)).ErrorId);
        Assert.Equal(ErrorIds.BackupIncrementalUnavailable, Fails(() => Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, true, false), ctx)).ErrorId);
        Assert.False(Directory.Exists(set));
        Assert.Empty(Checkpoints(dom));
        Assert.Equal(ErrorIds.BackupSetNotFound, Fails(() => Sets.Get(dom.Dir, null)).ErrorId);

        // A set with a broken chain: the middle incremental's file is gone.
        Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), ctx);
        dom.GuestWrite("vda", 0x71, "0", "1M");
        Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, true, false), ctx);
        dom.GuestWrite("vda", 0x72, "1M", "1M");
        Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, true, false), ctx);
        var checkpoints = Checkpoints(dom);

        // Another domain's folder, a clash with a file the set does not list.
        var other = dom.File("other");
        Directory.CreateDirectory(other);
        File.WriteAllText(Path.Combine(other, "kvmsnap-backup.json"), "{\"Version\":1,\"Domain\":\"someone-else\",\"SetId\":\"00000000\",\"Backups\":[]}");
        Assert.Equal(ErrorIds.BackupDestinationInvalid, Fails(() => Engine.Backup(Uri, new BackupRequest(dom.Name, other, null, false, false), ctx)).ErrorId);
        File.WriteAllText(Path.Combine(set, "004-full.vda.qcow2"), "not mine");
        Assert.Equal(ErrorIds.FileExists, Fails(() => Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), ctx)).ErrorId);
        File.Delete(Path.Combine(set, "004-full.vda.qcow2"));

        File.Delete(Path.Combine(set, "002-incremental.vda.qcow2"));
        Assert.Equal(ErrorIds.BackupSetBroken, Fails(() => Sets.Restore(set, "003-incremental", null, dom.File("r3.qcow2"), false, ctx)).ErrorId);
        Assert.Equal(ErrorIds.BackupNotFound, Fails(() => Sets.Restore(set, "009-full", null, dom.File("r9.qcow2"), false, ctx)).ErrorId);
        Assert.Equal(ErrorIds.DomainDiskNotFound, Fails(() => Sets.Restore(set, "001-full", "vdz", dom.File("r1.qcow2"), false, ctx)).ErrorId);
        Assert.Equal(ErrorIds.FileExists, Fails(() => Sets.Restore(set, "001-full", null, dom.File("a-file"), false, ctx)).ErrorId);
        Assert.False(File.Exists(dom.File("r3.qcow2")));
        var checks = Sets.Test(set, null, ctx);
        Assert.Equal(new[] { true, false, false }, checks.Select(c => c.Healthy));
        Assert.Contains(checks[1].Problems, p => p.Contains("missing", StringComparison.Ordinal));
        Assert.False(checks[2].ChainComplete);
        // A file changed after the backup fails its checksum.
        using (var f = new FileStream(Path.Combine(set, "001-full.vda.qcow2"), FileMode.Open, FileAccess.Write)) { f.Seek(0, SeekOrigin.End); f.WriteByte(1); }
        Assert.False(Sets.Test(set, "001-full", ctx).Single().ChecksumMatches);
        Assert.Equal(checkpoints, Checkpoints(dom));
        RemoveCheckpoints(dom);
    }

    [Fact]
    public void A_backup_job_that_runs_out_of_space_is_BackupFailed_and_leaves_nothing()
    {
        using var fs = new SmallFileSystem(4);
        using var dom = TestDomain.Create("bk-full");
        dom.GuestWrite("vda", 0x66, "0", "16M");
        var set = Path.Combine(fs.Path, "set");

        var space = Assert.Throws<KvmSnapshotException>(() => Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), new RecordingOperationContext()));
        Assert.Equal(ErrorIds.DiskFull, space.ErrorId);
        var failed = Assert.Throws<KvmSnapshotException>(() =>
            Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false, SkipSpaceCheck: true), new RecordingOperationContext()));

        Assert.Equal(ErrorIds.BackupFailed, failed.ErrorId);
        Assert.False(Directory.Exists(set));
        Assert.Empty(Checkpoints(dom));
        Assert.Equal("running", dom.State);
    }
}
