using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Xml.Linq;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Libvirt;

/// <summary>One storage volume as the daemon describes it (virStorageVolGetXMLDesc): its file and what it backs on.</summary>
internal sealed record StorageVolumeInfo(string Pool, string Name, string Path, string? Format, long? Capacity, long? Allocation,
    string? BackingPath, string? BackingFormat)
{
    /// <summary>When the file was last written, as the daemon's host saw it at the pool's refresh (target/timestamps/mtime).</summary>
    public DateTime? ModifiedUtc { get; init; }
}

/// <summary>One storage pool: its name, type, target folder (on the host that serves the connection) and, when active, its volumes.</summary>
internal sealed record StoragePoolInfo(string Name, string? Type, string? TargetPath, bool Active, IReadOnlyList<StorageVolumeInfo> Volumes)
{
    /// <summary>Why the pool could not be read (it is then not Active); null when it was read or is simply stopped.</summary>
    public string? Problem { get; init; }
}

/// <summary>
/// libvirt's storage API for the chain facts of a host that may be remote: every call goes to the daemon, no file is
/// opened here. Each call is announced through <c>trace</c> (-Verbose).
/// </summary>
internal static class StoragePools
{
    /// <summary>
    /// Every pool of the connection; active ones are refreshed first when <paramref name="refresh"/> (the daemon then
    /// sees overlays made since it last looked) and their volumes read. <paramref name="onlyPool"/>: that pool only.
    /// </summary>
    public static IReadOnlyList<StoragePoolInfo> List(LibvirtConnection connection, bool refresh, Action<string>? trace, string? onlyPool = null)
    {
        StoragePoolHandle[] handles;
        if (onlyPool is not null)
        {
            trace?.Invoke(LibvirtCall.Format("virStoragePoolLookupByName", ("name", onlyPool)));
            handles = new[] { Virt.StoragePoolLookupByName(connection.Handle, onlyPool) };
        }
        else
        {
            trace?.Invoke(LibvirtCall.Format("virConnectListAllStoragePools", ("flags", 0)));
            handles = Virt.ConnectListAllStoragePools(connection.Handle, ConnectListAllStoragePoolsFlags.None, connection.Uri);
        }
        var pools = new List<StoragePoolInfo>();
        try
        {
            foreach (var pool in handles)
            {
                if (onlyPool is not null)
                {
                    pools.Add(Read(pool, connection.Uri, refresh, trace));
                    continue;
                }
                try
                {
                    pools.Add(Read(pool, connection.Uri, refresh, trace));
                }
                catch (KvmSnapshotException e) when (e.ErrorId == ErrorIds.StoragePoolNotFound)
                {
                    // Removed since it was listed (a transient pool destroyed meanwhile): it holds nothing any more.
                }
                catch (KvmSnapshotException e)
                {
                    // Stopped or unreadable meanwhile: its volumes are unknown, which the catalog reports as a gap.
                    pools.Add(new StoragePoolInfo(SafeName(pool, connection.Uri), null, null, false, Array.Empty<StorageVolumeInfo>()) { Problem = e.Message });
                }
            }
        }
        finally
        {
            foreach (var h in handles) h.Dispose();
        }
        return pools.OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
    }

    private static string SafeName(StoragePoolHandle pool, string uri)
    {
        try { return Virt.StoragePoolGetName(pool, uri); }
        catch (KvmSnapshotException) { return "(unnamed)"; }
    }

    private static StoragePoolInfo Read(StoragePoolHandle pool, string uri, bool refresh, Action<string>? trace)
    {
        var name = Virt.StoragePoolGetName(pool, uri);
        var doc = XDocument.Parse(Virt.StoragePoolGetXmlDesc(pool, name));
        var type = doc.Root?.Attribute("type")?.Value;
        var target = doc.Root?.Element("target")?.Element("path")?.Value;
        if (!Virt.StoragePoolIsActive(pool, name)) return new StoragePoolInfo(name, type, target, false, Array.Empty<StorageVolumeInfo>());
        if (refresh)
        {
            trace?.Invoke(LibvirtCall.Format("virStoragePoolRefresh", ("pool", name), ("flags", 0)));
            Virt.StoragePoolRefresh(pool, name);
        }
        trace?.Invoke(LibvirtCall.Format("virStoragePoolListAllVolumes", ("pool", name), ("flags", 0)));
        var volumes = new List<StorageVolumeInfo>();
        var handles = Virt.StoragePoolListAllVolumes(pool, name);
        try
        {
            foreach (var vol in handles)
            {
                // A volume deleted since the listing is simply gone.
                string xml;
                try
                {
                    xml = Virt.StorageVolGetXmlDesc(vol, name);
                }
                catch (KvmSnapshotException e) when (e.ErrorId == ErrorIds.StorageVolumeNotFound)
                {
                    continue;
                }
                if (ParseVolume(name, xml) is { } info) volumes.Add(info);
            }
        }
        finally
        {
            foreach (var h in handles) h.Dispose();
        }
        return new StoragePoolInfo(name, type, target, true, volumes.OrderBy(v => v.Path, StringComparer.Ordinal).ToList());
    }

    /// <summary>A volume's XML: target path and format, sizes, and the one backing file it names (&lt;backingStore&gt;).</summary>
    internal static StorageVolumeInfo? ParseVolume(string pool, string xml)
    {
        var root = XDocument.Parse(xml).Root;
        var target = root?.Element("target");
        var path = target?.Element("path")?.Value;
        if (root is null || string.IsNullOrEmpty(path)) return null;
        var backing = root.Element("backingStore");
        var backingPath = backing?.Element("path")?.Value;
        if (backingPath is not null && !backingPath.StartsWith('/'))
        {
            // A relative backing name is relative to the overlay's folder (qemu's rule).
            backingPath = System.IO.Path.GetFullPath(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(path) ?? "/", backingPath));
        }
        return new StorageVolumeInfo(pool, root.Element("name")?.Value ?? System.IO.Path.GetFileName(path), path,
            target?.Element("format")?.Attribute("type")?.Value, Bytes(root.Element("capacity")), Bytes(root.Element("allocation")),
            string.IsNullOrEmpty(backingPath) ? null : backingPath, backing?.Element("format")?.Attribute("type")?.Value)
        {
            ModifiedUtc = Seconds(target?.Element("timestamps")?.Element("mtime")),
        };
    }

    /// <summary>libvirt's "1764550000.123456789" (seconds since the epoch, nanoseconds after the dot) as a UTC time.</summary>
    private static DateTime? Seconds(XElement? e)
    {
        if (e is null || !decimal.TryParse(e.Value, NumberStyles.Number, CultureInfo.InvariantCulture, out var seconds)) return null;
        return DateTime.UnixEpoch.AddTicks((long)(seconds * TimeSpan.TicksPerSecond));
    }

    private static long? Bytes(XElement? e)
    {
        if (e is null || !long.TryParse(e.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)) return null;
        var unit = e.Attribute("unit")?.Value ?? "bytes";
        return unit is "bytes" or "B" or "b" ? n : null;
    }

    /// <summary>Deletes the volume at <paramref name="path"/> through the daemon (virStorageVolLookupByPath, virStorageVolDelete).</summary>
    public static void DeleteVolume(LibvirtConnection connection, string path, Action<string>? trace)
    {
        trace?.Invoke(LibvirtCall.Format("virStorageVolLookupByPath", ("path", path)));
        using var vol = Virt.StorageVolLookupByPath(connection.Handle, path);
        trace?.Invoke(LibvirtCall.Format("virStorageVolDelete", ("vol", path), ("flags", 0)));
        Virt.StorageVolDelete(vol, path);
    }

    /// <summary>Starts a transient dir pool over <paramref name="directory"/> (virStoragePoolCreateXML); gone once destroyed.</summary>
    public static void CreateTransientDirPool(LibvirtConnection connection, string name, string directory)
    {
        var xml = new XElement("pool", new XAttribute("type", "dir"), new XElement("name", name),
            new XElement("target", new XElement("path", directory))).ToString();
        Virt.StoragePoolCreateXml(connection.Handle, xml, name).Dispose();
    }

    /// <summary>Stops (and so removes) a transient pool; the files in its folder stay.</summary>
    public static void DestroyPool(LibvirtConnection connection, string name)
    {
        using var pool = Virt.StoragePoolLookupByName(connection.Handle, name);
        Virt.StoragePoolDestroy(pool, name);
    }
}
