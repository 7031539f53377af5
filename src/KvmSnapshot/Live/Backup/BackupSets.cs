using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;
using KvmSnapshot.QemuImg;

namespace KvmSnapshot.Live;

/// <summary>
/// What can be done with a backup set without the domain or libvirt: list it (Get-KvmBackup), rebuild a standalone
/// image at any of its points (Restore-KvmBackup), verify it (Test-KvmBackup). Everything comes from the manifest and
/// the files beside it.
/// </summary>
internal sealed class BackupSets
{
    private readonly QemuImgCommands _qemuImg;

    public BackupSets(QemuImgCommands qemuImg) => _qemuImg = qemuImg;

    public static BackupSets Default { get; } = new(QemuImgCommands.Default);

    /// <summary>The set's backups, oldest first (only those the manifest lists: a backup that did not finish is not there).</summary>
    public IReadOnlyList<KvmBackup> Get(string folder, string? name)
    {
        folder = Path.GetFullPath(folder);
        var set = BackupManifest.Load(folder);
        var entries = name is null ? set.Backups : new List<BackupEntry> { set.Find(folder, name) };
        return entries.Select(b => BackupManifest.ToModel(set, b, folder, null)).ToList();
    }

    /// <summary>Restore-KvmBackup's -WhatIf text, after every check the restore makes. Changes nothing.</summary>
    public string PlanRestore(string folder, string? backup, string? disk, string destination, IOperationContext ctx)
    {
        var (entry, file, chain, space) = CheckRestore(Path.GetFullPath(folder), backup, disk, Path.GetFullPath(destination), ctx);
        return $"Rebuild disk {file.Disk} at backup '{entry.Name}' ({string.Join(" <- ", chain.Select(c => c.Name))}) into the standalone image '{Path.GetFullPath(destination)}'{SpaceEstimate.ActionSuffix(space)}";
    }

    /// <summary>qemu-img convert of the chosen backup's file through its backing chain into one standalone qcow2.</summary>
    public RestoredBackupImage Restore(string folder, string? backup, string? disk, string destination, bool skipSpaceCheck, IOperationContext ctx)
    {
        folder = Path.GetFullPath(folder);
        destination = Path.GetFullPath(destination);
        var (entry, file, _, space) = CheckRestore(folder, backup, disk, destination, ctx);
        if (!skipSpaceCheck) space.Require(destination, $"restore backup '{entry.Name}'");
        if (ctx.Cancellation.IsCancellationRequested)
        {
            throw new KvmSnapshotException(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, destination, "Cancelled before anything was changed.");
        }
        var partial = destination + ".kvmsnap-partial";
        try
        {
            _qemuImg.Convert(Path.Combine(folder, file.File), "qcow2", partial, "qcow2", compress: false, null, null, ctx);
            File.Move(partial, destination, overwrite: false);
        }
        finally
        {
            if (File.Exists(partial)) File.Delete(partial);
        }
        return new RestoredBackupImage
        {
            Path = destination,
            BackupSet = folder,
            Backup = entry.Name,
            Disk = file.Disk,
            Size = new FileInfo(destination).Length,
        };
    }

    private (BackupEntry Entry, BackupFileEntry File, IReadOnlyList<BackupEntry> Chain, SpaceEstimate Space) CheckRestore(
        string folder, string? backup, string? disk, string destination, IOperationContext ctx)
    {
        var set = BackupManifest.Load(folder);
        if (set.Backups.Count == 0)
        {
            throw new KvmSnapshotException(ErrorIds.BackupNotFound, KvmErrorKind.ObjectNotFound, folder, $"The backup set in '{folder}' holds no backup yet.");
        }
        var entry = backup is null ? set.Backups[^1] : set.Find(folder, backup);
        var file = FileOf(entry, disk);
        if (File.Exists(destination) || Directory.Exists(destination))
        {
            throw new KvmSnapshotException(ErrorIds.FileExists, KvmErrorKind.ResourceExists, destination,
                $"'{destination}' exists; Restore-KvmBackup writes a new image and never overwrites one.");
        }
        var chain = set.ChainOf(entry);
        foreach (var problem in chain.SelectMany(b => ChainProblems(folder, set, b, FileOf(b, file.Disk), ctx)))
        {
            throw new KvmSnapshotException(ErrorIds.BackupSetBroken, KvmErrorKind.InvalidData, folder,
                $"Backup '{entry.Name}' of disk {file.Disk} cannot be restored: {problem}")
            {
                RecommendedAction = "Run Test-KvmBackup on the set; restore an earlier backup whose chain is complete.",
            };
        }
        var top = Path.Combine(folder, file.File);
        var required = _qemuImg.Measure(top, "qcow2", null, "qcow2", null, ctx).Required;
        return (entry, file, chain, DiskSpace.For(destination, required, "qemu-img measure of the backup chain"));
    }

    private static BackupFileEntry FileOf(BackupEntry entry, string? disk)
    {
        if (disk is null)
        {
            if (entry.Files.Count == 1) return entry.Files[0];
            throw new KvmSnapshotException(ErrorIds.DomainDiskNotFound, KvmErrorKind.ObjectNotFound, entry.Name,
                $"Backup '{entry.Name}' holds disks {string.Join(", ", entry.Files.Select(f => f.Disk))}; name one with -Disk.");
        }
        return entry.Files.FirstOrDefault(f => f.Disk == disk)
            ?? throw new KvmSnapshotException(ErrorIds.DomainDiskNotFound, KvmErrorKind.ObjectNotFound, disk,
                $"Backup '{entry.Name}' holds no disk '{disk}'. Its disks are: {string.Join(", ", entry.Files.Select(f => f.Disk))}.");
    }

    /// <summary>Missing files and backing files other than the parent backup's (what makes a point unrestorable).</summary>
    private IEnumerable<string> ChainProblems(string folder, BackupManifest set, BackupEntry entry, BackupFileEntry file, IOperationContext ctx)
    {
        var path = Path.Combine(folder, file.File);
        if (!File.Exists(path))
        {
            yield return $"its file '{file.File}' (backup '{entry.Name}') is missing.";
            yield break;
        }
        var info = _qemuImg.Info(path, "qcow2", ctx);
        var expected = file.Backing;
        if (!string.Equals(info.BackingFilename, expected, StringComparison.Ordinal))
        {
            yield return $"'{file.File}' backs onto '{info.BackingFilename ?? "nothing"}', not onto '{expected ?? "nothing"}' as the set records.";
        }
        else if (expected is not null && !File.Exists(Path.Combine(folder, expected)))
        {
            yield return $"'{file.File}' backs onto '{expected}', which is missing.";
        }
        if (entry.Parent is not null && !set.Backups.Any(b => b.Name == entry.Parent))
        {
            yield return $"backup '{entry.Name}' needs '{entry.Parent}', which the set no longer lists.";
        }
    }

    /// <summary>
    /// The backups retention removes when the newest <paramref name="keep"/> must stay restorable: every backup none
    /// of those needs (a kept incremental needs its parents back to its full backup, so those stay too).
    /// </summary>
    public IReadOnlyList<KvmBackup> PlanRemove(string folder, int keep)
    {
        folder = Path.GetFullPath(folder);
        var set = BackupManifest.Load(folder);
        return Removable(set, keep).Select(b => BackupManifest.ToModel(set, b, folder, null)).ToList();
    }

    private static List<BackupEntry> Removable(BackupManifest set, int keep)
    {
        keep = Math.Max(1, keep);
        var needed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var kept in set.Backups.Skip(Math.Max(0, set.Backups.Count - keep)))
        {
            foreach (var b in set.ChainOf(kept)) needed.Add(b.Name);
        }
        return set.Backups.Where(b => !needed.Contains(b.Name)).ToList();
    }

    /// <summary>
    /// Removes the backups <see cref="PlanRemove"/> names: the manifest first (atomically: the set never lists a
    /// file that is gone), then their files, each only when no other image and nothing libvirt knows backs onto it
    /// (DiskImageInUse otherwise, and nothing is removed).
    /// </summary>
    public IReadOnlyList<KvmBackup> Remove(string folder, int keep, IOperationContext ctx)
    {
        folder = Path.GetFullPath(folder);
        var set = BackupManifest.Load(folder);
        var removable = Removable(set, keep);
        if (removable.Count == 0) return Array.Empty<KvmBackup>();
        var files = removable.SelectMany(b => b.Files).Select(f => Path.Combine(folder, f.File)).Where(File.Exists).ToList();
        var store = LocalImageStore.Instance;
        var usage = store.Usage(files, new[] { folder }, HostImageReferences.CollectLocal(ctx.Verbose), store.NewCatalog(ctx, _qemuImg), ctx);
        var going = files.ToHashSet(StringComparer.Ordinal);
        foreach (var file in files)
        {
            var users = usage.DescribeUsers(file, going);
            if (users.Count > 0)
            {
                throw new KvmSnapshotException(ErrorIds.DiskImageInUse, KvmErrorKind.ResourceBusy, file,
                    $"'{file}' is still used: {string.Join("; ", users)}. No backup was removed.");
            }
        }
        if (ctx.Cancellation.IsCancellationRequested)
        {
            throw new KvmSnapshotException(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, folder, "Cancelled before anything was changed.");
        }
        var removed = removable.Select(b => BackupManifest.ToModel(set, b, folder, null)).ToList();
        set.Backups.RemoveAll(removable.Contains);
        set.Save(folder);
        foreach (var file in files)
        {
            ctx.Verbose($"Deleting {file}");
            try
            {
                store.Delete(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                ctx.Warning($"'{file}' is no longer part of the set but could not be deleted: {e.Message}");
            }
        }
        return removed;
    }

    /// <summary>Each file of each backup (or of one): the recorded SHA-256, qemu-img check, and the chain to the full backup.</summary>
    public IReadOnlyList<KvmBackupCheck> Test(string folder, string? backup, IOperationContext ctx)
    {
        folder = Path.GetFullPath(folder);
        var set = BackupManifest.Load(folder);
        var entries = backup is null ? set.Backups : new List<BackupEntry> { set.Find(folder, backup) };
        var results = new List<KvmBackupCheck>();
        var activity = $"Verifying the backup set in {folder}";
        var total = entries.Sum(e => e.Files.Count);
        try
        {
            foreach (var entry in entries)
            {
                foreach (var file in entry.Files)
                {
                    ctx.Progress(activity, $"{entry.Name}: {file.File}", total == 0 ? 0 : results.Count * 100 / total);
                    results.Add(TestFile(folder, set, entry, file, ctx));
                }
            }
        }
        finally
        {
            ctx.ProgressCompleted(activity);
        }
        return results;
    }

    private KvmBackupCheck TestFile(string folder, BackupManifest set, BackupEntry entry, BackupFileEntry file, IOperationContext ctx)
    {
        var path = Path.Combine(folder, file.File);
        var problems = new List<string>();
        bool checksum = false, consistent = false;
        if (File.Exists(path))
        {
            ctx.Verbose($"SHA-256 of {path}");
            checksum = BackupManifest.Sha256Of(path) == file.Sha256;
            if (!checksum) problems.Add("its SHA-256 differs from the one recorded at backup time.");
            var check = _qemuImg.Check(path, "qcow2", ctx);
            consistent = check.ExitCode == 0 && check.Corruptions == 0 && check.CheckErrors == 0;
            if (!consistent) problems.Add($"qemu-img check found {check.Corruptions} corruptions and {check.CheckErrors} errors.");
        }
        var chainProblems = set.Backups.Contains(entry) ? ChainProblems(folder, set, entry, file, ctx).ToList() : new List<string>();
        if (entry.Parent is not null)
        {
            var parent = set.Backups.FirstOrDefault(b => b.Name == entry.Parent);
            var parentFile = parent?.Files.FirstOrDefault(f => f.Disk == file.Disk);
            if (parent is not null && parentFile is not null && !File.Exists(Path.Combine(folder, parentFile.File)) && !chainProblems.Any(p => p.Contains(parentFile.File, StringComparison.Ordinal)))
            {
                chainProblems.Add($"the backup it builds on, '{parent.Name}', has lost its file '{parentFile.File}'.");
            }
        }
        problems.AddRange(chainProblems);
        return new KvmBackupCheck
        {
            Path = folder,
            Backup = entry.Name,
            Disk = file.Disk,
            File = path,
            ChecksumMatches = checksum,
            ImageConsistent = consistent,
            ChainComplete = chainProblems.Count == 0,
            Problems = problems,
        };
    }
}
