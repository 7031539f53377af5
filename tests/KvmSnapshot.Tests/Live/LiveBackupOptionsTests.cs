using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using KvmSnapshot.Errors;
using KvmSnapshot.Live;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Live;

/// <summary>
/// Backup-KvmDomain's -Quiesce and -Bandwidth on a running domain, and an incremental backup of the shut-off domain
/// between two live ones. The domain has a guest agent channel but no agent runs in its guest (there is no guest OS):
/// every freeze fails, which must change nothing.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LiveBackupOptionsTests
{
    private const string Uri = LibvirtDaemonFixture.Uri;
    private static readonly LiveEngine Engine = LiveEngine.Default;
    private static readonly BackupSets Sets = BackupSets.Default;

    [Fact]
    public void Quiesce_without_an_answering_agent_changes_nothing_and_an_offline_incremental_between_live_ones_restores_every_point()
    {
        using var dom = TestDomain.Create("qb", persistent: true, start: false);
        var channel = dom.File("channel.xml");
        File.WriteAllText(channel, "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>");
        LibvirtDaemonFixture.Virsh("attach-device", dom.Name, channel, "--config").EnsureSuccess();
        LibvirtDaemonFixture.Virsh("start", dom.Name).EnsureSuccess();
        var set = dom.File("set");
        var ctx = new RecordingOperationContext();
        var image = dom.ActiveImage();
        var domainFiles = LiveBackupTests.FilesIn(dom.Dir);
        KvmSnapshotException Fails(BackupRequest r) => Assert.ThrowsAny<KvmSnapshotException>(() => Engine.Backup(Uri, r, ctx));

        // QEMU's locks on the images it has open are found under the key the wait for closed backup files uses.
        var imageKey = LiveEngine.LockKey(KvmSnapshot.Chains.HostFile.Describe(image).Identity);
        Assert.Contains(File.ReadLines("/proc/locks"), l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(imageKey));

        dom.GuestWrite("vda", 0x41, "0", "4M");
        var refA = dom.SnapshotGuestView("vda", dom.File("A.raw"));
        domainFiles = domainFiles.Append("A.raw").OrderBy(f => f, StringComparer.Ordinal).ToArray();

        // The first backup of a set, quiesced: the freeze fails after the target file was made; it and the folder go.
        var first = Fails(new BackupRequest(dom.Name, set, null, false, false) { Quiesce = true });
        Assert.Equal(ErrorIds.QuiesceFailed, first.ErrorId);
        Assert.NotNull(first.RecommendedAction);
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("virDomainFSFreeze", StringComparison.Ordinal));
        Assert.DoesNotContain(ctx.VerboseMessages, m => m.StartsWith("virDomainBackupBegin", StringComparison.Ordinal));
        Assert.False(Directory.Exists(set));
        Assert.Empty(LiveBackupTests.Checkpoints(dom));

        var full = Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, false, false), ctx);
        // The wait for the job's end hears libvirt's job-completed event of the backup.
        Assert.Contains(ctx.VerboseMessages, m => m.Contains("after libvirt's job-completed event", StringComparison.Ordinal));
        var setFiles = LiveBackupTests.FilesIn(set);
        var manifest = File.ReadAllText(Path.Combine(set, "kvmsnap-backup.json"));

        // Quiesced incremental, and a quiesced -Method Snapshot backup: typed errors, nothing changed.
        Assert.Equal(ErrorIds.QuiesceFailed, Fails(new BackupRequest(dom.Name, set, null, true, false) { Quiesce = true }).ErrorId);
        Assert.Equal(ErrorIds.QuiesceFailed, Fails(new BackupRequest(dom.Name, set, null, false, false) { Quiesce = true, ViaSnapshot = true }).ErrorId);
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("virDomainSnapshotCreateXML", StringComparison.Ordinal) && m.Contains("Quiesce", StringComparison.Ordinal));
        // -Bandwidth cannot limit libvirt's backup job.
        var bandwidth = Fails(new BackupRequest(dom.Name, set, null, true, false) { Bandwidth = 16UL << 20 });
        Assert.Equal(ErrorIds.BackupBandwidthUnsupported, bandwidth.ErrorId);
        Assert.Contains("-Method Snapshot", bandwidth.RecommendedAction, StringComparison.Ordinal);

        Assert.Equal(setFiles, LiveBackupTests.FilesIn(set));
        Assert.Equal(manifest, File.ReadAllText(Path.Combine(set, "kvmsnap-backup.json")));
        Assert.Equal(new[] { full.Checkpoint! }, LiveBackupTests.Checkpoints(dom));
        Assert.Empty(LiveBackupTests.Snapshots(dom));
        Assert.Equal(domainFiles, LiveBackupTests.FilesIn(dom.Dir).Where(f => f != "set").ToArray());
        Assert.Equal(image, dom.ActiveImage());
        Assert.Equal("running", dom.State);
        Assert.False(dom.HasBlockJob());

        // -Method Snapshot honours -Bandwidth: the copy (qemu-img convert -r) and the commit back.
        var viaSnapshot = Engine.Backup(Uri, new BackupRequest(dom.Name, dom.File("set-snap"), null, false, false) { ViaSnapshot = true, Bandwidth = 64UL << 20 }, ctx);
        Assert.Contains(ctx.VerboseMessages, m => m.Contains("convert", StringComparison.Ordinal) && m.Contains(" -r 67108864 ", StringComparison.Ordinal));
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("virDomainBlockCommit", StringComparison.Ordinal) && m.Contains("bandwidth=67108864", StringComparison.Ordinal));
        Assert.True(Tool.SameContent(refA, viaSnapshot.Files[0]));
        Assert.Equal(image, dom.ActiveImage());

        // Shut off, written by qemu-io, backed up offline (incremental against the full), started, written again.
        LibvirtDaemonFixture.Virsh("destroy", dom.Name).EnsureSuccess();
        Tool.WritePattern(image, 0x42, "1M", "1M");
        var refB = dom.File("B.raw");
        Tool.Run("qemu-img", "convert", "-O", "raw", image, refB).EnsureSuccess();
        var offline = Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, true, false), ctx);
        Assert.Equal(("002-incremental", "Copy", (string?)null), (offline.Name, offline.Method, offline.Checkpoint));
        Assert.InRange(offline.BytesCopied, 1 << 20, 2 << 20);

        LibvirtDaemonFixture.Virsh("start", dom.Name).EnsureSuccess();
        dom.GuestWrite("vda", 0x43, "8M", "1M");
        var refC = dom.SnapshotGuestView("vda", dom.File("C.raw"));
        var live = Engine.Backup(Uri, new BackupRequest(dom.Name, set, null, true, false), ctx);

        // The live incremental backs onto the offline one and copies the changes since the full's checkpoint:
        // the offline write (recorded in the bitmap by qemu-io) and the live one, never fewer.
        Assert.Equal(("003-incremental", "002-incremental"), (live.Name, live.Parent));
        Assert.Contains(ctx.VerboseMessages, m => m.StartsWith("virDomainBackupBegin", StringComparison.Ordinal)
            && m.Contains($"<incremental>{full.Checkpoint}</incremental>", StringComparison.Ordinal));
        Assert.InRange(live.BytesCopied, 1 << 20, 3 << 20);
        foreach (var (name, reference) in new[] { ("001-full", refA), ("002-incremental", refB), ("003-incremental", refC) })
        {
            Assert.True(Tool.SameContent(reference, Sets.Restore(set, name, null, dom.File($"r-{name}.qcow2"), false, ctx).Path), $"{name} differs from the disk at that moment");
        }
        Assert.All(Sets.Test(set, null, ctx), r => Assert.True(r.Healthy, string.Join("; ", r.Problems)));
        Assert.Equal(new[] { live.Checkpoint! }, LiveBackupTests.Checkpoints(dom));
        Assert.Equal(image, dom.ActiveImage());
    }

    [Fact]
    public void The_wait_for_the_backup_files_to_close_lasts_while_another_process_holds_a_lock_on_one()
    {
        using var dir = new TempDirectory("bk-lock");
        var file = dir.File("001-full.vda.qcow2");
        File.WriteAllText(file, "x");
        var free = dir.File("other.qcow2");
        File.WriteAllText(free, "y");
        var ctx = new RecordingOperationContext();
        var key = LiveEngine.LockKey(KvmSnapshot.Chains.HostFile.Describe(file).Identity);

        LiveEngine.WaitForTargetsClosed("kvmsnap-b-none", new[] { free }, ctx);
        Assert.Empty(ctx.VerboseMessages);

        // util-linux flock(1) holds a lock on the file for a moment, as QEMU holds its OFD locks on an open image.
        using var holder = Process.Start(new ProcessStartInfo("flock", new[] { "-x", file, "sleep", "0.3" }))!;
        var seen = Stopwatch.StartNew();
        while (!File.ReadLines("/proc/locks").Any(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(key)))
        {
            Assert.False(holder.HasExited || seen.Elapsed > TimeSpan.FromSeconds(10), "/proc/locks never listed the lock under " + key);
            System.Threading.Thread.Sleep(5);
        }
        LiveEngine.WaitForTargetsClosed("kvmsnap-b-none", new[] { file, free }, ctx);

        // It waited (the note is written only after a wait), and returned once the lock was gone.
        Assert.Contains(ctx.VerboseMessages, m => m.Contains("closed the backup files", StringComparison.Ordinal));
        Assert.DoesNotContain(File.ReadLines("/proc/locks"), l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(key));
        Assert.True(holder.WaitForExit(10_000));
    }

    /// <summary>A shell that opens <paramref name="file"/> for reading (no lock) and sleeps with it open.</summary>
    private static Process HoldOpen(string file, string seconds)
        => Process.Start(new ProcessStartInfo("bash", new[] { "-c", "exec 3<\"$1\"; sleep \"$2\"", "hold", file, seconds }))!;

    private static void WaitUntilHeld(Process holder, string file)
    {
        var ids = new[] { KvmSnapshot.Chains.HostFile.Describe(file).Identity }.ToHashSet();
        var seen = Stopwatch.StartNew();
        while (!KvmSnapshot.Chains.FileHolders.Find(ids).Contains(holder.Id))
        {
            Assert.False(holder.HasExited || seen.Elapsed > TimeSpan.FromSeconds(10), "the holder never showed the file among its descriptors");
            System.Threading.Thread.Sleep(5);
        }
    }

    [Fact]
    public void The_wait_for_the_backup_files_to_close_sees_a_process_that_holds_one_open_without_any_lock()
    {
        using var dir = new TempDirectory("bk-fd");
        var file = dir.File("001-full.vda.qcow2");
        File.WriteAllText(file, "x");
        var renamed = dir.File("001-full.vda.qcow2.moved");
        var ctx = new RecordingOperationContext();
        var key = LiveEngine.LockKey(KvmSnapshot.Chains.HostFile.Describe(file).Identity);

        // An open descriptor and no lock, as QEMU with file locking off holds an image: /proc/locks has nothing to see.
        using (var holder = HoldOpen(file, "0.4"))
        {
            WaitUntilHeld(holder, file);
            Assert.DoesNotContain(File.ReadLines("/proc/locks"), l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(key));
            LiveEngine.WaitForTargetsClosed("kvmsnap-b-none", new[] { file }, ctx, watchLocks: false);
            Assert.True(holder.HasExited, "the wait returned while the process still had the file open");
            Assert.Contains(ctx.VerboseMessages, m => m.Contains($"(process {holder.Id}) closed the backup files", StringComparison.Ordinal));
        }

        // Held past the limit: BackupFailed naming the process; the file is recognised by device and inode, not by name.
        using var stuck = HoldOpen(file, "30");
        try
        {
            WaitUntilHeld(stuck, file);
            File.Move(file, renamed);
            var error = Assert.Throws<KvmSnapshotException>(() =>
                LiveEngine.WaitForTargetsClosed("kvmsnap-b-none", new[] { renamed }, ctx, watchLocks: false, timeout: TimeSpan.FromMilliseconds(300)));
            Assert.Equal(ErrorIds.BackupFailed, error.ErrorId);
            Assert.Contains($"process {stuck.Id} still holds its files open after 0.3 s", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            stuck.Kill();
            stuck.WaitForExit(10_000);
        }
    }
}
