using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;
using KvmSnapshot.Model.Contracts;

namespace KvmSnapshot.Live;

/// <summary>
/// How much a live operation may write into which file system, estimated before it starts, as the offline
/// operations do (<see cref="SpaceEstimate"/>). Only on a local connection: a remote host's file systems cannot be
/// seen from here (null: no estimate, nothing refused). The numbers are upper bounds:
/// <list type="bullet">
/// <item>a commit writes at most what the merged layers hold (their allocated bytes) into the base's file system;</item>
/// <item>a pull writes at most what the pulled layers hold into the active layer's file system;</item>
/// <item>a snapshot writes a new qcow2 overlay per external disk (<see cref="OverlayBytes"/>), the guest's memory to
/// the memory file of an external snapshot, and, for an internal snapshot of a running domain, the guest's memory
/// into the first qcow2 disk (QEMU's savevm keeps it there).</item>
/// </list>
/// </summary>
internal static class LiveSpace
{
    /// <summary>A fresh qcow2 overlay: header, L1 table, a refcount table and block; 1 MiB covers disks up to many TiB.</summary>
    internal const long OverlayBytes = 1024 * 1024;

    public static SpaceEstimate? ForCommit(LibvirtDomain dom, ChainLayer baseLayer, IEnumerable<ChainLayer> merged)
        => dom.Connection.IsLocal ? DiskSpace.ForLayers(merged, baseLayer.Path) : null;

    public static SpaceEstimate? ForPull(LibvirtDomain dom, ChainLayer target, IEnumerable<ChainLayer> merged)
        => dom.Connection.IsLocal ? DiskSpace.ForLayers(merged, target.Path) : null;

    /// <summary>Every file system the snapshot writes to, with what it writes there; empty on a remote connection.</summary>
    public static IReadOnlyList<SpaceEstimate> ForSnapshot(LibvirtDomain dom, NewDomainSnapshotRequest request)
    {
        if (!dom.Connection.IsLocal || request.ReuseExternal && request.MemoryFile is null) return Array.Empty<SpaceEstimate>();
        var doc = DomainXml.Load(dom.GetXml(), dom.Name);
        var disks = DomainXml.Disks(doc.Root?.Element("devices")).Where(d => d.Device == "disk" && d.IsLocalFile && d.Source is not null).ToList();
        var running = dom.IsActive;
        var memory = MemoryBytes(doc);
        var writes = new List<(string File, long Bytes, string What)>();
        var external = request.DiskOnly || request.MemoryFile is not null || request.DiskSpecs.Any(s => s.Snapshot == "external");
        if (external)
        {
            foreach (var disk in disks)
            {
                var spec = request.DiskSpecs.FirstOrDefault(s => s.Disk == disk.Target);
                if (spec is not null && spec.Snapshot != "external") continue;
                if (spec is null && request.DiskSpecs.Count > 0 && !request.DiskOnly) continue;
                if (request.ReuseExternal) continue;
                // libvirt's default overlay goes next to the active image.
                writes.Add((spec?.File ?? disk.Source!, OverlayBytes, $"a new overlay for {disk.Target}"));
            }
            if (request.MemoryFile is not null && running) writes.Add((request.MemoryFile, memory, "the guest's memory"));
        }
        else
        {
            var first = disks.FirstOrDefault(d => d.Format == "qcow2");
            foreach (var disk in disks.Where(d => d.Format == "qcow2"))
            {
                var bytes = OverlayBytes + (running && disk == first ? memory : 0);
                writes.Add((disk.Source!, bytes, running && disk == first ? $"the guest's memory and snapshot tables in {disk.Target}" : $"snapshot tables in {disk.Target}"));
            }
        }
        return writes
            .GroupBy(w => MountPoint(w.File))
            .Select(g => DiskSpace.For(g.First().File, g.Sum(w => w.Bytes), string.Join(", ", g.Select(w => w.What))))
            .ToList();
    }

    /// <summary>
    /// A block job that failed is reported as DiskFull when the file system it wrote to is (nearly) full now: QEMU
    /// ends a job on ENOSPC with an error libvirt does not pass on, so the free space is the evidence. Null otherwise.
    /// </summary>
    public static KvmSnapshotException? FailedForSpace(LibvirtDomain dom, string writtenFile, KvmSnapshotException failure)
    {
        if (!dom.Connection.IsLocal) return null;
        var free = DiskSpace.Available(Path.GetDirectoryName(writtenFile) ?? "/");
        if (free > NearlyFull) return null;
        return new KvmSnapshotException(ErrorIds.DiskFull, KvmErrorKind.ResourceUnavailable, writtenFile,
            $"{failure.Message} The file system of '{writtenFile}' has {DiskSpace.Format(free)} free: the job ran out of space. "
            + "Layers above the file it wrote to still hold their data, so the guest sees what it saw before; the chain is unchanged.", failure)
        {
            RecommendedAction = "Free space on that file system (the partly written clusters stay allocated in the file), then run the command again.",
        };
    }

    /// <summary>Below this much free space a failed write is taken for ENOSPC (one qcow2 cluster plus its metadata).</summary>
    private const long NearlyFull = 1024 * 1024;

    private static long MemoryBytes(System.Xml.Linq.XDocument doc)
    {
        var element = doc.Root?.Element("currentMemory") ?? doc.Root?.Element("memory");
        if (element is null || !long.TryParse(element.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)) return 0;
        var unit = (string?)element.Attribute("unit") ?? "KiB";
        return unit switch
        {
            "b" or "bytes" => value,
            "KB" => value * 1000,
            "k" or "KiB" => value * 1024,
            "MB" => value * 1000 * 1000,
            "M" or "MiB" => value * 1024 * 1024,
            "GB" => value * 1000 * 1000 * 1000,
            "G" or "GiB" => value * 1024L * 1024 * 1024,
            _ => value * 1024,
        };
    }

    private static string MountPoint(string file)
    {
        try
        {
            return new DriveInfo(Path.GetDirectoryName(Path.GetFullPath(file)) ?? "/").Name;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return Path.GetDirectoryName(file) ?? "/";
        }
    }
}
