using System;
using System.Collections.Generic;

namespace KvmSnapshot.Model;

/// <summary>Whether a backup holds every cluster of its disks or only what changed since the backup before it.</summary>
public enum KvmBackupKind
{
    Full,
    Incremental,
}

/// <summary>
/// One complete backup of a backup set (Backup-KvmDomain, Get-KvmBackup): a folder holds one set, a full backup and the
/// incrementals after it, and a manifest (kvmsnap-backup.json) that lists only backups that finished. Path (the set's
/// folder) and Name bind to Restore-KvmBackup's -Path and -Backup, and to Test-KvmBackup's -Path, by property name.
/// </summary>
public sealed class KvmBackup
{
    /// <summary>The backup's name in its set: its position and kind ("001-full", "002-incremental").</summary>
    public required string Name { get; init; }
    /// <summary>The backup set's folder.</summary>
    public required string Path { get; init; }
    public required string Domain { get; init; }
    public KvmBackupKind Kind { get; init; }
    /// <summary>When the backup was taken (local time).</summary>
    public DateTime Time { get; init; }
    /// <summary>The backup this one holds the changes since (null for a full backup).</summary>
    public string? Parent { get; init; }
    /// <summary>The libvirt checkpoint the backup made, from which the next incremental copies changes (null when none was made).</summary>
    public string? Checkpoint { get; init; }
    /// <summary>How it was copied: BackupApi (libvirt push backup of a running domain), Snapshot (temporary external snapshot,
    /// copy, active commit back) or Copy (qemu-img of a shut-off domain).</summary>
    public required string Method { get; init; }
    /// <summary>The disk targets backed up (vda, …).</summary>
    public required IReadOnlyList<string> Disks { get; init; }
    /// <summary>The image files of this backup, one per disk, in the order of <see cref="Disks"/>.</summary>
    public required IReadOnlyList<string> Files { get; init; }
    /// <summary>Bytes the backup files hold on disk (what was copied, plus qcow2 metadata).</summary>
    public long BytesCopied { get; init; }
    public string? ConnectionUri { get; init; }

    public override string ToString() => Name;
}

/// <summary>The result of Test-KvmBackup for one file of one backup.</summary>
public sealed class KvmBackupCheck
{
    /// <summary>The backup set's folder.</summary>
    public required string Path { get; init; }
    /// <summary>The backup's name.</summary>
    public required string Backup { get; init; }
    public required string Disk { get; init; }
    public required string File { get; init; }
    /// <summary>The SHA-256 of the file equals the one recorded when the backup was taken.</summary>
    public bool ChecksumMatches { get; init; }
    /// <summary>qemu-img check found no corruption or error.</summary>
    public bool ImageConsistent { get; init; }
    /// <summary>The file backs onto the file of the backup before it (incremental), or onto nothing (full), and that file is there.</summary>
    public bool ChainComplete { get; init; }
    public bool Healthy => ChecksumMatches && ImageConsistent && ChainComplete;
    /// <summary>What is wrong, in words; empty when healthy.</summary>
    public required IReadOnlyList<string> Problems { get; init; }

    public override string ToString() => $"{Backup}/{Disk}";
}

/// <summary>A standalone disk image Restore-KvmBackup rebuilt from a backup set. Path binds to Get-KvmDiskImage's -Path.</summary>
public sealed class RestoredBackupImage
{
    public required string Path { get; init; }
    /// <summary>The backup set's folder.</summary>
    public required string BackupSet { get; init; }
    /// <summary>The backup whose point in time the image holds.</summary>
    public required string Backup { get; init; }
    public required string Disk { get; init; }
    /// <summary>The image's file size in bytes.</summary>
    public long Size { get; init; }

    public override string ToString() => Path;
}
