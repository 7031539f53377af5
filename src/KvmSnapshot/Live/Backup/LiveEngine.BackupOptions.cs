using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Libvirt.Native;
using KvmSnapshot.Model;
using KvmSnapshot.QemuImg;

namespace KvmSnapshot.Live;

/// <summary>
/// Backup-KvmDomain's -Quiesce and -Bandwidth, the live incremental's starting checkpoint, and the incremental backup
/// of a shut-off domain.
/// </summary>
internal sealed partial class LiveEngine
{
    /// <summary>
    /// Backup-KvmDomain waits for libvirt's job-completed event (true) or polls the job every
    /// <see cref="ProgressInterval"/> only (false; kept to measure the difference).
    /// </summary>
    public bool WaitForBackupByEvent { get; init; } = true;

    private const string GuestAgentAction =
        "Install and start qemu-guest-agent in the guest, give the domain a guest agent channel " +
        "(<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>), or back up without -Quiesce (crash-consistent).";

    /// <summary>
    /// Checked before anything is made. -Quiesce on a shut-off domain: nothing runs to freeze, so it is ignored (a
    /// verbose note). On a running domain without a guest agent channel it cannot work: QuiesceFailed.
    /// -Bandwidth: libvirt 9.0's push backup job has no rate setting, and the offline incremental's qemu-img rebase
    /// none either: BackupBandwidthUnsupported (-Method Snapshot and the shut-off full copy honour it).
    /// </summary>
    private static void CheckQuiesceAndBandwidth(string domain, BackupRequest request, bool live, string domainXml, IOperationContext ctx)
    {
        if (request.Quiesce && !live)
        {
            ctx.Verbose($"{domain} is shut off: its file systems are not in use, so -Quiesce has nothing to freeze and is ignored.");
        }
        else if (request.Quiesce && !BackupXml.HasGuestAgentChannel(domainXml))
        {
            throw new KvmSnapshotException(ErrorIds.QuiesceFailed, KvmErrorKind.InvalidOperation, domain,
                $"-Quiesce needs the guest agent, and {domain} has no guest agent channel (org.qemu.guest_agent.0); nothing was backed up.")
            {
                RecommendedAction = GuestAgentAction,
            };
        }
        if (request.Bandwidth == 0) return;
        if (live && !request.ViaSnapshot)
        {
            throw new KvmSnapshotException(ErrorIds.BackupBandwidthUnsupported, KvmErrorKind.InvalidArgument, domain,
                "-Bandwidth cannot be honoured by libvirt's backup job (libvirt 9.0's push backup has no bandwidth setting); nothing was backed up.")
            {
                RecommendedAction = "Use -Method Snapshot (its copy and its commit back run at -Bandwidth; full backups only), or leave -Bandwidth out.",
            };
        }
        if (!live && request.Incremental)
        {
            throw new KvmSnapshotException(ErrorIds.BackupBandwidthUnsupported, KvmErrorKind.InvalidArgument, domain,
                $"-Bandwidth cannot be honoured by the incremental backup of a shut-off domain (qemu-img rebase compares the images without a rate limit); nothing was backed up.")
            {
                RecommendedAction = "Leave -Bandwidth out, or take a full backup (its qemu-img convert runs at -Bandwidth).",
            };
        }
    }

    /// <summary>
    /// The checkpoint a live incremental starts from: the newest one of the parent's chain that the domain still has.
    /// Offline backups make no checkpoint, so after one it is an older checkpoint: its bitmap holds every write since
    /// that older point (qcow2 persistent bitmaps also record what qemu tools write while the domain is shut off), a
    /// superset of the writes since the parent. Copying a cluster that had not changed since the parent costs bytes;
    /// missing one would lose data.
    /// </summary>
    private static string IncrementalStart(LibvirtDomain dom, BackupManifest set, BackupEntry parent)
    {
        var names = dom.CheckpointNames();
        var start = set.ChainOf(parent).Reverse()
            .Select(b => b.Checkpoint)
            .FirstOrDefault(c => c is not null && names.Contains(c, StringComparer.Ordinal));
        return start ?? throw IncrementalUnavailable(dom.Name,
            $"The last backup '{parent.Name}' and the backups before it in its chain have no checkpoint left on {dom.Name} to copy the changes since; take a full backup instead.");
    }

    /// <summary>
    /// The incremental backup of a shut-off disk: an empty qcow2 over the disk's image, then rebased (safe mode) onto
    /// the previous backup's file. qemu-img reads both whole and writes into the new file exactly the clusters where
    /// the disk differs from the previous backup; the new file ends backing onto that backup (by its name in the set).
    /// </summary>
    private static void CopyChangesOffline(BackupTarget t, IOperationContext ctx)
    {
        var qemuImg = QemuImgCommands.Default;
        qemuImg.Create(t.File, "qcow2", null, Path.GetFullPath(t.Disk.Source!), t.Disk.Format ?? "qcow2", null, null, ctx);
        qemuImg.Rebase(t.File, "qcow2", t.Backing!, "qcow2", unsafeRebase: false, ctx);
    }

    /// <summary>The domain's job-completed event registration; null (the wait then polls) when libvirt refuses it.</summary>
    private static JobCompletedSignal? WatchBackupJobEnd(LibvirtDomain dom, IOperationContext ctx)
    {
        try
        {
            return dom.WatchBackupJobEnd();
        }
        catch (KvmSnapshotException e)
        {
            ctx.Verbose($"libvirt does not send {dom.Name}'s job-completed event ({e.Message}); the backup job is polled for its end.");
            return null;
        }
    }

    private static void Freeze(LibvirtDomain dom)
    {
        try
        {
            dom.FSFreeze();
        }
        catch (KvmSnapshotException e)
        {
            throw QuiesceFailed(dom.Name, e);
        }
    }

    /// <summary>Thaws the guest; a failure is a warning (the backup itself is sound), naming the way to thaw by hand.</summary>
    private static void Thaw(LibvirtDomain dom, IOperationContext ctx)
    {
        try
        {
            dom.FSThaw();
        }
        catch (KvmSnapshotException e)
        {
            ctx.Warning($"The file systems of {dom.Name} could not be thawed: {e.Message}. Thaw them with 'virsh domfsthaw {dom.Name}'.");
        }
    }

    /// <summary>libvirt's guest agent errors: not configured (VIR_ERR_ARGUMENT_UNSUPPORTED), not connected or not answering (VIR_ERR_AGENT_UNRESPONSIVE, VIR_ERR_AGENT_UNSYNCED).</summary>
    private static bool IsGuestAgentFailure(LibvirtException e)
        => e.LibvirtCode is VirErrorNumber.ArgumentUnsupported or AgentUnresponsive or AgentUnsynced
            || e.LibvirtMessage.Contains("agent", StringComparison.OrdinalIgnoreCase);

    private const int AgentUnresponsive = 86; // VIR_ERR_AGENT_UNRESPONSIVE
    private const int AgentUnsynced = 97;     // VIR_ERR_AGENT_UNSYNCED

    private static KvmSnapshotException QuiesceFailed(string domain, KvmSnapshotException inner)
        => new(ErrorIds.QuiesceFailed, KvmErrorKind.InvalidOperation, domain,
            $"The file systems of {domain} could not be frozen for -Quiesce: {(inner as LibvirtException)?.LibvirtMessage ?? inner.Message}. Nothing was backed up; the domain runs on its own image.", inner)
        {
            RecommendedAction = GuestAgentAction,
        };

    private static readonly TimeSpan TargetCloseTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Whether the wait for closed backup files also reads /proc/locks (true), or relies on the processes' open
    /// descriptors alone (false; what the wait sees where QEMU takes no locks, kept so tests can prove it).
    /// </summary>
    public bool WatchTargetLocks { get; init; } = true;

    /// <summary>
    /// Waits until QEMU closed the backup job's target files. The job's end (the job-completed event, and even
    /// virDomainGetJobInfo's "none") comes before libvirt detaches the targets from QEMU, and QEMU writes the
    /// qcow2's last metadata (L2 tables, refcounts) when it closes them: a file checksummed before that changes
    /// afterwards. A target is closed once no process of this host has it open (<see cref="FileHolders"/>, by
    /// device and inode through /proc/&lt;pid&gt;/fd: this does not depend on QEMU's file locking, which can be off)
    /// and, when <paramref name="watchLocks"/>, /proc/locks lists no lock on it either. Without the files' identities
    /// nothing is waited for. After <paramref name="timeout"/> (60 s): BackupFailed.
    /// </summary>
    internal static void WaitForTargetsClosed(string domain, IEnumerable<string> files, IOperationContext ctx,
        bool watchLocks = true, TimeSpan? timeout = null)
    {
        var identities = files.Select(f => HostFile.Describe(Path.GetFullPath(f)))
            .Where(f => f.IdentityProblem is null && f.Identity.FallbackPath is null)
            .Select(f => f.Identity)
            .ToHashSet();
        if (identities.Count == 0) return;
        var keys = watchLocks && File.Exists("/proc/locks")
            ? identities.Select(LockKey).ToHashSet(StringComparer.Ordinal)
            : new HashSet<string>(StringComparer.Ordinal);
        var limit = timeout ?? TargetCloseTimeout;
        var clock = Stopwatch.StartNew();
        // Every process is looked at once; afterwards only those that held a target (QEMU), which only close them.
        var holders = FileHolders.Find(identities);
        var seen = holders;
        var waited = false;
        while (true)
        {
            var locked = keys.Count > 0 && File.ReadLines("/proc/locks").Any(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Any(keys.Contains));
            if (!locked && holders.Count == 0)
            {
                if (waited)
                {
                    var by = seen.Count > 0 ? $" (process {string.Join(", ", seen)})" : "";
                    ctx.Verbose(FormattableString.Invariant($"QEMU{by} closed the backup files of {domain} {clock.Elapsed.TotalMilliseconds:0.0} ms after the job ended."));
                }
                return;
            }
            if (clock.Elapsed > limit)
            {
                var who = holders.Count > 0 ? $"process {string.Join(", ", holders)} still holds its files open" : "its files are still locked";
                throw new KvmSnapshotException(ErrorIds.BackupFailed, KvmErrorKind.InvalidResult, domain,
                    FormattableString.Invariant($"The backup job of {domain} ended, but {who} after {limit.TotalSeconds:0.#} s; the backup was abandoned (its files and checkpoint are removed)."));
            }
            Thread.Sleep(10);
            waited = true;
            if (holders.Count > 0) holders = FileHolders.Find(identities, holders);
        }
    }

    /// <summary>
    /// A file as /proc/locks names it: "major:minor:inode", the device numbers in hex of at least two digits
    /// ("1: OFDLCK ADVISORY READ -1 fe:00:1234 100 100"). The device is st_dev as glibc's makedev spells it.
    /// </summary>
    internal static string LockKey(FileIdentity id)
    {
        var major = ((id.Device >> 8) & 0xfffUL) | ((id.Device >> 32) & 0xfffff000UL);
        var minor = (id.Device & 0xffUL) | ((id.Device >> 12) & 0xffffff00UL);
        return string.Create(CultureInfo.InvariantCulture, $"{major:x2}:{minor:x2}:{id.Inode}");
    }
}
