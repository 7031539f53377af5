using System;
using System.Collections.Generic;
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

/// <summary>What Backup-KvmDomain was asked: the domain, the set's folder, the disks (null: all, or the set's), the kind.</summary>
internal sealed record BackupRequest(string Domain, string Destination, IReadOnlyList<string>? Disks, bool Incremental, bool Compress, bool SkipSpaceCheck = false)
{
    /// <summary>-Method Snapshot: a temporary external snapshot, a copy of the frozen images, an active commit back (full backups only).</summary>
    public bool ViaSnapshot { get; init; }

    /// <summary>-Quiesce: the guest agent freezes the guest's file systems for the instant the backup point is taken (running domains).</summary>
    public bool Quiesce { get; init; }

    /// <summary>-Bandwidth, in bytes per second (0: unlimited): the qemu-img copies (-r) and the active commit of -Method Snapshot.</summary>
    public ulong Bandwidth { get; init; }
}

/// <summary>One disk of a planned backup: the disk, the file to write, and the file it backs onto (incremental).</summary>
internal sealed record BackupTarget(DiskXml Disk, string File, string? Backing, long VirtualSize);

internal sealed class BackupPlan
{
    public required string Folder { get; init; }
    public required BackupManifest Set { get; init; }
    public required bool IsNewSet { get; init; }
    public required string Name { get; init; }
    public required KvmBackupKind Kind { get; init; }
    public required BackupEntry? Parent { get; init; }
    /// <summary>The checkpoint the backup creates (null for a shut-off domain: qemu-img copies, no bitmap).</summary>
    public required string? Checkpoint { get; init; }
    public required bool Live { get; init; }
    /// <summary>A running domain backed up the seeds' way: external snapshot, copy, active commit with pivot.</summary>
    public bool ViaSnapshot { get; init; }
    /// <summary>The guest's file systems are frozen while the backup point is taken (a running domain with a guest agent channel).</summary>
    public bool Quiesce { get; init; }
    /// <summary>
    /// The checkpoint a live incremental copies the changes since: the newest checkpoint of the parent's chain still on
    /// the domain. After offline backups (which make none) it is older than the parent: the copy then holds more than
    /// the changes since the parent, never less.
    /// </summary>
    public string? IncrementalFrom { get; init; }
    public string Method => !Live ? "Copy" : ViaSnapshot ? "Snapshot" : "BackupApi";
    public required IReadOnlyList<BackupTarget> Targets { get; init; }
    public required IReadOnlyList<string> AllDisks { get; init; }
    public required SpaceEstimate Space { get; init; }

    public string Describe(string domain)
    {
        var what = Kind == KvmBackupKind.Full ? "full backup"
            : IncrementalFrom is not null && IncrementalFrom != Parent!.Checkpoint
                ? $"incremental backup (changes since {Parent!.Name}, from the bitmap of the older checkpoint {IncrementalFrom}: offline backups make none)"
                : $"incremental backup (changes since {Parent!.Name})";
        var how = !Live ? (Kind == KvmBackupKind.Full ? "by copying its images with qemu-img (domain shut off)"
                : "by comparing its images with the set's last backup with qemu-img (domain shut off)")
            : ViaSnapshot ? "through a temporary external snapshot, copied with qemu-img and committed back (active commit with pivot)"
            : $"through libvirt's backup job, with checkpoint {Checkpoint}";
        if (Quiesce) how += ", the guest's file systems frozen while the point is taken";
        return $"Take {what} '{Name}' of {domain} disks {string.Join(", ", Targets.Select(t => t.Disk.Target))} into '{Folder}' {how}{SpaceEstimate.ActionSuffix(Space)}";
    }
}

/// <summary>
/// Backups of a domain's disks into a backup set (a folder with a manifest). A running domain is backed up through
/// libvirt's backup API in push mode, with a checkpoint per backup: a full backup copies every cluster, an incremental
/// one only the clusters changed since the set's last checkpoint, into a qcow2 that backs onto the previous backup's
/// file. A shut-off domain is copied with qemu-img convert (full only). Whatever ends the operation early (Ctrl+C, a
/// failed job), the domain keeps running on its own image, the checkpoint and the files this backup made are removed,
/// and the manifest, written last, does not list the backup.
/// </summary>
internal sealed partial class LiveEngine
{
    /// <summary>Backup-KvmDomain's -WhatIf and confirmation text, after every check the backup makes. Changes nothing.</summary>
    public string PlanBackup(string? connectionUri, BackupRequest request, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, request.Domain, ctx);
        return MakeBackupPlan(dom, request, ctx).Describe(dom.Name);
    }

    public KvmBackup Backup(string? connectionUri, BackupRequest request, IOperationContext ctx)
    {
        using var dom = Open(connectionUri, request.Domain, ctx);
        var plan = MakeBackupPlan(dom, request, ctx);
        if (!request.SkipSpaceCheck) plan.Space.Require(dom.Name, $"back up {dom.Name}");
        ThrowIfCancelled(ctx, dom.Name);

        var activity = $"Backing up {dom.Name}";
        var qemuImg = QemuImgCommands.Default;
        var written = new List<string>();
        var checkpointMade = false;
        var folderMade = !Directory.Exists(plan.Folder);
        var started = DateTime.UtcNow;
        var listed = false;
        try
        {
            Directory.CreateDirectory(plan.Folder);
            ctx.Progress(activity, $"Starting {plan.Name}", 0);
            if (plan.ViaSnapshot)
            {
                written.AddRange(plan.Targets.Select(t => t.File));
                BackupThroughSnapshot(dom, plan, request.Compress, request.Bandwidth, ctx);
            }
            else if (plan.Live)
            {
                foreach (var t in plan.Targets)
                {
                    written.Add(t.File);
                    qemuImg.Create(t.File, "qcow2", t.VirtualSize, t.Backing, t.Backing is null ? null : "qcow2", null, null, ctx);
                }
                var backupXml = BackupXml.Backup(plan.Targets.Select(t => new BackupTargetXml(t.Disk.Target, t.File)), plan.AllDisks,
                    plan.Kind == KvmBackupKind.Incremental ? plan.IncrementalFrom : null);
                var checkpointXml = BackupXml.Checkpoint(plan.Checkpoint!, plan.Targets.Select(t => t.Disk.Target), plan.AllDisks);
                ThrowIfCancelled(ctx, dom.Name);
                // Registered before the job starts, so its end cannot be missed (null: the wait polls only).
                using var ended = WatchBackupJobEnd(dom, ctx);
                if (plan.Quiesce) Freeze(dom);
                try
                {
                    dom.BackupBegin(backupXml, checkpointXml, DomainBackupBeginFlags.ReuseExternal);
                    checkpointMade = true;
                }
                finally
                {
                    // The point is taken when virDomainBackupBegin returns (the job copies that point): thaw at once, also when it failed.
                    if (plan.Quiesce) Thaw(dom, ctx);
                }
                WaitForBackupJob(dom, activity, ended, ctx);
                WaitForTargetsClosed(dom.Name, plan.Targets.Select(t => t.File), ctx, WatchTargetLocks);
                if (plan.Targets.Count > 0 && request.Compress)
                {
                    foreach (var t in plan.Targets) Recompress(t, ctx);
                }
            }
            else
            {
                foreach (var t in plan.Targets)
                {
                    written.Add(t.File);
                    if (t.Backing is null)
                    {
                        qemuImg.Convert(t.Disk.Source!, t.Disk.Format ?? "qcow2", t.File, "qcow2", request.Compress, null, null, ctx, request.Bandwidth);
                    }
                    else
                    {
                        CopyChangesOffline(t, ctx);
                        if (request.Compress) Recompress(t, ctx);
                    }
                }
            }
            ThrowIfCancelledAfterCopy(ctx, dom.Name);

            ctx.Progress(activity, "Recording checksums", 99);
            var files = plan.Targets.Select(t => new BackupFileEntry
            {
                Disk = t.Disk.Target,
                File = Path.GetFileName(t.File),
                VirtualSize = t.VirtualSize,
                Backing = t.Backing,
                Sha256 = BackupManifest.Sha256Of(t.File),
                Bytes = HostFile.Describe(t.File).AllocatedBytes ?? new FileInfo(t.File).Length,
            }).ToList();
            var entry = new BackupEntry
            {
                Name = plan.Name,
                Kind = plan.Kind,
                TimeUtc = started,
                Parent = plan.Parent?.Name,
                Checkpoint = plan.Checkpoint,
                Method = plan.Method,
                Files = files,
            };
            plan.Set.Backups.Add(entry);
            ThrowIfCancelledAfterCopy(ctx, dom.Name);
            // The manifest last: until this rename the backup is not part of the set.
            plan.Set.Save(plan.Folder);
            listed = true;
            RetirePreviousCheckpoints(dom, plan, ctx);
            return BackupManifest.ToModel(plan.Set, entry, plan.Folder, dom.Connection.Uri);
        }
        catch when (!listed)
        {
            // Once the manifest lists the backup it is complete: nothing of it is undone.
            if (checkpointMade) RemoveCheckpointQuietly(dom, plan.Checkpoint!, ctx);
            foreach (var file in written) DeleteQuietly(file, ctx);
            if (folderMade && plan.IsNewSet) DeleteFolderIfEmpty(plan.Folder);
            throw;
        }
        finally
        {
            ctx.ProgressCompleted(activity);
        }
    }

    /// <summary>
    /// The seeds' way: an atomic external disk-only snapshot without metadata freezes each disk's image under a
    /// temporary overlay; qemu-img copies the frozen chain into the backup file; an active commit with pivot puts the
    /// disk back on its image, and the overlay is deleted. The commit back runs whatever happened to the copy (also
    /// after Ctrl+C), and cannot itself be cancelled: the domain must end on its own image.
    /// </summary>
    private void BackupThroughSnapshot(LibvirtDomain dom, BackupPlan plan, bool compress, ulong bandwidth, IOperationContext ctx)
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var overlays = plan.Targets.Select(t => (Target: t,
            Overlay: Path.Combine(Path.GetDirectoryName(t.Disk.Source!)!, $"{Path.GetFileName(t.Disk.Source!)}.kvmsnap-backup-{tag}"))).ToList();
        var specs = overlays.Select(o => new Model.Contracts.DiskSpec { Disk = o.Target.Disk.Target, File = o.Overlay })
            .Concat(plan.AllDisks.Where(d => plan.Targets.All(t => t.Disk.Target != d)).Select(d => new Model.Contracts.DiskSpec { Disk = d, Snapshot = "no" }))
            .ToList();
        try
        {
            CreateSnapshot(dom.Connection.Uri, dom.Name, new Model.Contracts.NewDomainSnapshotRequest
            {
                Name = $"kvmsnap-backup-{tag}",
                DiskOnly = true,
                Atomic = true,
                NoMetadata = true,
                Quiesce = plan.Quiesce,
                DiskSpecs = specs,
                SkipSpaceCheck = true,
            }, ctx);
        }
        catch (LibvirtException e) when (plan.Quiesce && IsGuestAgentFailure(e))
        {
            // libvirt freezes before it creates the overlays: nothing was made.
            foreach (var (_, overlay) in overlays) DeleteQuietly(overlay, ctx);
            throw QuiesceFailed(dom.Name, e);
        }
        Exception? copyFailure = null;
        try
        {
            foreach (var (t, _) in overlays)
            {
                ThrowIfCancelledAfterCopy(ctx, dom.Name);
                QemuImgCommands.Default.Convert(t.Disk.Source!, t.Disk.Format ?? "qcow2", t.File, "qcow2", compress, null, null, ctx, bandwidth);
            }
        }
        catch (Exception e)
        {
            copyFailure = e;
        }
        var back = new UncancellableContext(ctx);
        foreach (var (t, overlay) in overlays)
        {
            BlockCommit(dom.Connection.Uri, new BlockCommitRequest { Domain = dom.Name, Disk = t.Disk.Target, Base = t.Disk.Source, Pivot = true, SkipSpaceCheck = true, Bandwidth = bandwidth }, back);
            DeleteQuietly(overlay, ctx);
        }
        if (copyFailure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(copyFailure);
    }

    /// <summary>Reports as the caller's context does, but is never cancelled (the work that puts things back).</summary>
    private sealed class UncancellableContext : IOperationContext
    {
        private readonly IOperationContext _inner;
        public UncancellableContext(IOperationContext inner) => _inner = inner;
        public CancellationToken Cancellation => CancellationToken.None;
        public void Verbose(string message) => _inner.Verbose(message);
        public void Progress(string activity, string status, int percent) => _inner.Progress(activity, status, percent);
        public void ProgressCompleted(string activity) => _inner.ProgressCompleted(activity);
        public void Warning(string message) => _inner.Warning(message);
    }

    /// <summary>
    /// What a full copy of a disk needs: qemu-img measure of its chain; for a running domain at least the bytes its
    /// active image has allocated on disk, because QEMU writes a guest's data clusters at once but may keep the qcow2
    /// metadata that maps them in memory until a flush, so a measure of the file alone can miss data the backup copies.
    /// </summary>
    private static long MeasureFull(string source, string? format, bool live, IOperationContext ctx)
    {
        var measured = QemuImgCommands.Default.Measure(source, format, null, "qcow2", null, ctx).Required;
        return live ? Math.Max(measured, DiskSpace.AllocatedBytes(source)) : measured;
    }

    /// <summary>
    /// Waits for the backup job to end: the wait wakes when libvirt's job-completed event for the domain's backup
    /// comes (<paramref name="ended"/>, registered before the job started); between events the job is read every
    /// <see cref="ProgressInterval"/> for the progress bar, and a job found gone ends the wait too (an event lost with
    /// the connection). Then the finished job's outcome is read. Cancelling aborts the job (virDomainAbortJob).
    /// </summary>
    private void WaitForBackupJob(LibvirtDomain dom, string activity, JobCompletedSignal? ended, IOperationContext ctx)
    {
        using var abort = ctx.Cancellation.Register(() => AbortQuietly(dom));
        var byEvent = WaitForBackupByEvent && ended is not null;
        var handles = ended is null ? null : new[] { ended.WaitHandle, ctx.Cancellation.WaitHandle };
        var how = "job-completed event";
        while (!(byEvent && ended!.IsSet))
        {
            var info = dom.JobInfo();
            if ((DomainJobType)info.Type == DomainJobType.None)
            {
                how = "job gone (virDomainGetJobInfo)";
                break;
            }
            if (ctx.Cancellation.IsCancellationRequested) AbortQuietly(dom);
            var total = info.DataTotal > 0 ? info.DataTotal : info.FileTotal;
            var done = info.DataTotal > 0 ? info.DataProcessed : info.FileProcessed;
            var percent = total == 0 ? 0 : (int)Math.Min(98, done * 98 / total);
            ctx.Progress(activity, $"Copied {DiskSpace.Format((long)done)} of {DiskSpace.Format((long)total)}", percent);
            if (byEvent && !ctx.Cancellation.IsCancellationRequested) WaitHandle.WaitAny(handles!, ProgressInterval);
            else Thread.Sleep(ProgressInterval);
        }
        if (ended is { Timestamp: not 0 })
        {
            ctx.Verbose(FormattableString.Invariant(
                $"The backup job of {dom.Name} ended; noticed by {how} {System.Diagnostics.Stopwatch.GetElapsedTime(ended.Timestamp).TotalMilliseconds:0.0} ms after libvirt's job-completed event."));
        }
        var outcome = dom.CompletedJobType();
        ThrowIfCancelledAfterCopy(ctx, dom.Name);
        if (outcome != DomainJobType.Completed)
        {
            throw new KvmSnapshotException(ErrorIds.BackupFailed, KvmErrorKind.InvalidResult, dom.Name,
                $"The backup job of {dom.Name} ended as {outcome.ToString().ToLowerInvariant()}; its files and checkpoint were removed and the domain runs on its own image.");
        }
    }

    private static void AbortQuietly(LibvirtDomain dom)
    {
        try { dom.AbortJob(); }
        catch (KvmSnapshotException) { }
    }

    private static void ThrowIfCancelledAfterCopy(IOperationContext ctx, string domain)
    {
        if (ctx.Cancellation.IsCancellationRequested)
        {
            throw Cancelled(domain, $"Cancelled: the backup of {domain} was aborted; its files and checkpoint were removed and the domain runs on its own image.");
        }
    }

    /// <summary>A pushed file rewritten compressed (qemu-img convert -c, same backing file), then renamed over the original.</summary>
    private static void Recompress(BackupTarget t, IOperationContext ctx)
    {
        var temp = t.File + ".compressing";
        try
        {
            QemuImgCommands.Default.Convert(t.File, "qcow2", temp, "qcow2", compress: true, t.Backing, t.Backing is null ? null : "qcow2", ctx);
            File.Move(temp, t.File, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Only the newest checkpoint of the set is kept: the next incremental copies from there (none after -Method Snapshot).</summary>
    private static void RetirePreviousCheckpoints(LibvirtDomain dom, BackupPlan plan, IOperationContext ctx)
    {
        if (!plan.Live) return;
        var keep = plan.Checkpoint;
        IReadOnlyList<string> names;
        try
        {
            names = dom.CheckpointNames();
        }
        catch (KvmSnapshotException e)
        {
            ctx.Warning($"The older checkpoints of {dom.Name} could not be listed to delete them: {e.Message}");
            return;
        }
        foreach (var old in plan.Set.Backups.Select(b => b.Checkpoint).Where(c => c is not null && c != keep && names.Contains(c)).Distinct())
        {
            try
            {
                dom.DeleteCheckpoint(old!);
            }
            catch (KvmSnapshotException e)
            {
                ctx.Warning($"The older checkpoint {old} of {dom.Name} could not be deleted: {e.Message}");
            }
        }
    }

    private static void RemoveCheckpointQuietly(LibvirtDomain dom, string name, IOperationContext ctx)
    {
        try
        {
            dom.DeleteCheckpoint(name);
        }
        catch (KvmSnapshotException e)
        {
            ctx.Warning($"The checkpoint {name} of the abandoned backup could not be deleted: {e.Message}");
        }
    }

    private static void DeleteQuietly(string file, IOperationContext ctx)
    {
        try
        {
            if (File.Exists(file)) File.Delete(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ctx.Warning($"The partial backup file '{file}' could not be deleted: {e.Message}");
        }
    }

    private static void DeleteFolderIfEmpty(string folder)
    {
        try
        {
            if (Directory.Exists(folder) && !Directory.EnumerateFileSystemEntries(folder).Any()) Directory.Delete(folder);
        }
        catch (IOException) { }
    }

    private BackupPlan MakeBackupPlan(LibvirtDomain dom, BackupRequest request, IOperationContext ctx)
    {
        if (!dom.Connection.IsLocal)
        {
            throw new KvmSnapshotException(ErrorIds.LibvirtUnsupported, KvmErrorKind.NotImplemented, dom.Name,
                "Backups are written to this host's file system; the connection must be local.");
        }
        var folder = Path.GetFullPath(request.Destination);
        if (File.Exists(folder))
        {
            throw new KvmSnapshotException(ErrorIds.BackupDestinationInvalid, KvmErrorKind.InvalidArgument, folder,
                $"The backup destination '{folder}' is a file; it must be a folder (new or holding this domain's backup set).");
        }
        var existing = Directory.Exists(folder) ? BackupManifest.TryLoad(folder) : null;
        if (existing is not null && existing.Domain != dom.Name)
        {
            throw new KvmSnapshotException(ErrorIds.BackupDestinationInvalid, KvmErrorKind.InvalidArgument, folder,
                $"'{folder}' holds the backup set of domain '{existing.Domain}', not of '{dom.Name}'. Choose another folder.");
        }
        var set = existing ?? new BackupManifest { Domain = dom.Name, SetId = Guid.NewGuid().ToString("N")[..8] };
        string? incrementalFrom = null;

        var live = dom.IsActive;
        var domainXml = dom.GetXml();
        var disks = DomainXml.Disks(domainXml, dom.Name);
        var parent = set.Backups.LastOrDefault();
        CheckQuiesceAndBandwidth(dom.Name, request, live, domainXml, ctx);
        if (request.Incremental && request.ViaSnapshot)
        {
            throw IncrementalUnavailable(dom.Name, "-Method Snapshot takes full backups only; incremental backups use libvirt's backup API (-Method BackupApi).");
        }
        if (request.Incremental)
        {
            if (parent is null)
            {
                throw IncrementalUnavailable(dom.Name, $"'{folder}' holds no backup of {dom.Name} yet; the first backup of a set is a full one.");
            }
            if (live)
            {
                incrementalFrom = IncrementalStart(dom, set, parent);
            }
        }

        var chosen = (request.Disks is { Count: > 0 } asked ? asked
            : request.Incremental ? parent!.Files.Select(f => f.Disk).ToList()
            : DefaultDisks(disks, live, dom.Name, ctx))
            .Distinct(StringComparer.Ordinal).Select(name => FindDisk(disks, dom.Name, name)).ToList();
        foreach (var d in chosen.Where(d => !d.IsLocalFile || d.Source is null))
        {
            throw new KvmSnapshotException(ErrorIds.DomainDiskNotFound, KvmErrorKind.ObjectNotFound, d.Target,
                $"Disk {d.Target} of {dom.Name} is not backed by an image file; only file-backed disks can be backed up.");
        }
        if (chosen.Count == 0)
        {
            throw new KvmSnapshotException(ErrorIds.DomainDiskNotFound, KvmErrorKind.ObjectNotFound, dom.Name, $"{dom.Name} has no file-backed disk to back up.");
        }
        if (request.Incremental)
        {
            var setDisks = parent!.Files.Select(f => f.Disk).OrderBy(d => d, StringComparer.Ordinal);
            if (!setDisks.SequenceEqual(chosen.Select(d => d.Target).OrderBy(d => d, StringComparer.Ordinal)))
            {
                throw IncrementalUnavailable(dom.Name,
                    $"The last backup '{parent.Name}' holds disks {string.Join(", ", parent.Files.Select(f => f.Disk))}; an incremental backup covers the same disks. Take a full backup for other disks.");
            }
        }

        var index = set.Backups.Select(b => int.TryParse(b.Name.Split('-')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : 0)
            .DefaultIfEmpty(0).Max() + 1;
        var kind = request.Incremental ? KvmBackupKind.Incremental : KvmBackupKind.Full;
        var name = $"{index:000}-{(request.Incremental ? "incremental" : "full")}";
        var domainImages = disks.SelectMany(d => new[] { d.Source }.Concat(d.Backing.Select(b => b.Source)))
            .Where(s => s is not null).Select(s => Path.GetFullPath(s!)).ToHashSet(StringComparer.Ordinal);

        var targets = new List<BackupTarget>();
        long required = 0;
        IReadOnlyDictionary<string, long>? changed = null;
        if (request.Incremental && live)
        {
            changed = BackupXml.ChangedBytes(dom.CheckpointXmlWithSize(incrementalFrom!) ?? "<domaincheckpoint/>");
        }
        foreach (var d in chosen)
        {
            var file = Path.Combine(folder, $"{name}.{d.Target}.qcow2");
            if (domainImages.Contains(file))
            {
                throw new KvmSnapshotException(ErrorIds.BackupDestinationInvalid, KvmErrorKind.InvalidArgument, file,
                    $"The backup file '{file}' would replace an image of {dom.Name}. Choose another folder.");
            }
            if (File.Exists(file))
            {
                throw new KvmSnapshotException(ErrorIds.FileExists, KvmErrorKind.ResourceExists, file,
                    $"'{file}' exists but the backup set does not list it (a backup that never finished?). Remove it, or choose another folder.");
            }
            var info = QemuImgCommands.Default.Info(d.Source!, d.Format, ctx);
            var backing = request.Incremental ? parent!.Files.Single(f => f.Disk == d.Target).File : null;
            targets.Add(new BackupTarget(d, file, backing, info.VirtualSize));
            required += request.Incremental && live
                ? (changed!.TryGetValue(d.Target, out var bytes) ? bytes : info.VirtualSize) + LiveSpace.OverlayBytes
                : MeasureFull(d.Source!, d.Format, live, ctx);
        }
        var space = new SpaceEstimate
        {
            Directory = folder,
            RequiredBytes = required,
            AvailableBytes = DiskSpace.Available(Directory.Exists(folder) ? folder : NearestExisting(folder)),
            Basis = request.Incremental && live ? "the bytes changed since the last checkpoint"
                : request.Incremental ? "qemu-img measure of the disks (at most the whole disks differ from the last backup)"
                : live ? "qemu-img measure of the disks, at least the allocated size of each running disk's active image" : "qemu-img measure of the disks",
        };
        return new BackupPlan
        {
            Folder = folder,
            Set = set,
            IsNewSet = existing is null,
            Name = name,
            Kind = kind,
            Parent = request.Incremental ? parent : null,
            Checkpoint = live && !request.ViaSnapshot ? $"kvmsnap-{set.SetId}-{index:000}" : null,
            Live = live,
            ViaSnapshot = live && request.ViaSnapshot,
            Quiesce = live && request.Quiesce,
            IncrementalFrom = incrementalFrom,
            Targets = targets,
            AllDisks = disks.Select(d => d.Target).ToList(),
            Space = space,
        };
    }

    /// <summary>
    /// Every writable file-backed disk; for a running domain only the qcow2 ones, the only format that holds the
    /// checkpoint bitmaps an incremental needs (the others are named in a warning; -Disk still takes them for a full backup).
    /// </summary>
    private static List<string> DefaultDisks(IReadOnlyList<DiskXml> disks, bool live, string domain, IOperationContext ctx)
    {
        var files = disks.Where(d => d.Device == "disk" && d.IsLocalFile && d.Source is not null && !d.ReadOnly).ToList();
        if (!live) return files.Select(d => d.Target).ToList();
        foreach (var skipped in files.Where(d => d.Format != "qcow2"))
        {
            ctx.Warning($"Disk {skipped.Target} of {domain} ({skipped.Format ?? "unknown format"}) is not backed up: only qcow2 disks hold the checkpoint bitmaps of a running domain's backups.");
        }
        return files.Where(d => d.Format == "qcow2").Select(d => d.Target).ToList();
    }

    private static string NearestExisting(string folder)
    {
        var dir = folder;
        while (!Directory.Exists(dir)) dir = Path.GetDirectoryName(dir) ?? "/";
        return dir;
    }

    private static KvmSnapshotException IncrementalUnavailable(string domain, string message)
        => new(ErrorIds.BackupIncrementalUnavailable, KvmErrorKind.InvalidOperation, domain, message)
        {
            RecommendedAction = "Run Backup-KvmDomain without -Incremental to start from a full backup.",
        };
}
