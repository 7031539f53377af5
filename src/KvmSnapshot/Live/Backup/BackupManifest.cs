using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

/// <summary>One disk's file in one backup, as the manifest records it.</summary>
internal sealed class BackupFileEntry
{
    public required string Disk { get; init; }
    /// <summary>The file's name inside the set's folder (the set can move as a whole).</summary>
    public required string File { get; init; }
    public long VirtualSize { get; init; }
    /// <summary>The file name of the backup this file backs onto (null for a full backup).</summary>
    public string? Backing { get; init; }
    /// <summary>SHA-256 of the whole file, lower-case hex, taken right after the backup.</summary>
    public required string Sha256 { get; init; }
    public long Bytes { get; init; }
}

internal sealed class BackupEntry
{
    public required string Name { get; init; }
    public KvmBackupKind Kind { get; init; }
    public DateTime TimeUtc { get; init; }
    public string? Parent { get; init; }
    public string? Checkpoint { get; init; }
    public required string Method { get; init; }
    public required List<BackupFileEntry> Files { get; init; }
}

/// <summary>
/// kvmsnap-backup.json, beside the images of a backup set: enough to list, verify and restore the set without the
/// domain or libvirt. Written last and atomically (a temporary file renamed over it), so a backup that did not
/// finish is never listed.
/// </summary>
internal sealed class BackupManifest
{
    public const string FileName = "kvmsnap-backup.json";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
    };

    public int Version { get; init; } = 1;
    public required string Domain { get; init; }
    /// <summary>A short random id that names this set's checkpoints (two sets of one domain never share one).</summary>
    public required string SetId { get; init; }
    public List<BackupEntry> Backups { get; init; } = new();

    public static string PathIn(string folder) => System.IO.Path.Combine(folder, FileName);

    /// <summary>The set in <paramref name="folder"/>, or null when the folder holds none.</summary>
    public static BackupManifest? TryLoad(string folder)
    {
        var path = PathIn(folder);
        if (!System.IO.File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<BackupManifest>(System.IO.File.ReadAllText(path), Json)
                ?? throw new JsonException("empty manifest");
        }
        catch (JsonException e)
        {
            throw new KvmSnapshotException(ErrorIds.BackupSetBroken, KvmErrorKind.InvalidData, path,
                $"The backup manifest '{path}' cannot be read: {e.Message}");
        }
    }

    public static BackupManifest Load(string folder)
    {
        if (System.IO.File.Exists(folder))
        {
            throw new KvmSnapshotException(ErrorIds.BackupSetNotFound, KvmErrorKind.ObjectNotFound, folder,
                $"'{folder}' is a file; a backup set is a folder holding {FileName}.");
        }
        return TryLoad(folder) ?? throw new KvmSnapshotException(ErrorIds.BackupSetNotFound, KvmErrorKind.ObjectNotFound, folder,
            $"'{folder}' holds no backup set (no {FileName}).")
        {
            RecommendedAction = "Name the folder Backup-KvmDomain -Destination wrote to.",
        };
    }

    /// <summary>Writes the manifest to a temporary file, flushes it to disk, then renames it over the old one.</summary>
    public void Save(string folder)
    {
        var path = PathIn(folder);
        var temp = System.IO.Path.Combine(folder, $".{FileName}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                JsonSerializer.Serialize(stream, this, Json);
                stream.Flush(flushToDisk: true);
            }
            System.IO.File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (System.IO.File.Exists(temp)) System.IO.File.Delete(temp);
        }
    }

    public BackupEntry Find(string folder, string name)
        => Backups.FirstOrDefault(b => string.Equals(b.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new KvmSnapshotException(ErrorIds.BackupNotFound, KvmErrorKind.ObjectNotFound, name,
                $"The backup set in '{folder}' has no backup '{name}'. Its backups are: {string.Join(", ", Backups.Select(b => b.Name))}.");

    /// <summary>The backups <paramref name="entry"/> needs, full first, ending with itself.</summary>
    public IReadOnlyList<BackupEntry> ChainOf(BackupEntry entry)
    {
        var chain = new List<BackupEntry> { entry };
        var current = entry;
        while (current.Parent is not null && chain.Count <= Backups.Count)
        {
            current = Backups.FirstOrDefault(b => b.Name == current.Parent)
                ?? throw new KvmSnapshotException(ErrorIds.BackupSetBroken, KvmErrorKind.InvalidData, entry.Name,
                    $"Backup '{entry.Name}' needs '{current.Parent}', which the set no longer lists.");
            chain.Add(current);
        }
        chain.Reverse();
        return chain;
    }

    public static KvmBackup ToModel(BackupManifest set, BackupEntry b, string folder, string? connectionUri) => new()
    {
        Name = b.Name,
        Path = folder,
        Domain = set.Domain,
        Kind = b.Kind,
        Time = b.TimeUtc.ToLocalTime(),
        Parent = b.Parent,
        Checkpoint = b.Checkpoint,
        Method = b.Method,
        Disks = b.Files.Select(f => f.Disk).ToList(),
        Files = b.Files.Select(f => System.IO.Path.Combine(folder, f.File)).ToList(),
        BytesCopied = b.Files.Sum(f => f.Bytes),
        ConnectionUri = connectionUri,
    };

    /// <summary>SHA-256 of a file's bytes, lower-case hex.</summary>
    public static string Sha256Of(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20);
        return Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
    }
}
