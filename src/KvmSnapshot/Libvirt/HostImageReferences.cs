using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Xml.Linq;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Libvirt;

/// <summary>Why libvirt names a file.</summary>
internal enum ImageReferenceKind
{
    /// <summary>A disk source of a domain definition (inactive or live).</summary>
    DomainDisk,
    /// <summary>A layer of a disk's backing chain as the live definition records it.</summary>
    DomainBackingStore,
    /// <summary>The overlay an external snapshot created (the snapshot's &lt;disk&gt;&lt;source&gt;).</summary>
    SnapshotOverlay,
    /// <summary>The memory state file of a snapshot.</summary>
    SnapshotMemory,
    /// <summary>A disk of the domain definition saved inside a snapshot: the image a revert goes back to.</summary>
    SnapshotDomainDisk,
}

/// <summary>One file some libvirt object names, with the format libvirt records for it when there is one.</summary>
internal sealed record ImageReference(string Path, string? Format, ImageReferenceKind Kind, string Domain, string? Disk, string? Snapshot)
{
    /// <summary>For SnapshotDomainDisk: how the snapshot captured this disk (internal, external, manual or no).</summary>
    public string? SnapshotMode { get; init; }

    public string Describe() => Kind switch
    {
        ImageReferenceKind.DomainDisk => $"disk {Disk} of domain {Domain}",
        ImageReferenceKind.DomainBackingStore => $"the backing chain of disk {Disk} of domain {Domain}",
        ImageReferenceKind.SnapshotOverlay => $"snapshot {Domain}/{Snapshot} (overlay of disk {Disk})",
        ImageReferenceKind.SnapshotMemory => $"snapshot {Domain}/{Snapshot} (memory state)",
        _ => $"snapshot {Domain}/{Snapshot} (disk {Disk} as it was when taken)",
    };
}

/// <summary>
/// Every file the libvirt of this host names: the disks (and recorded backing chains) of every domain it defines,
/// running or not; the overlays, memory files and saved disk definitions of every snapshot; and the target
/// directories of its storage pools. What could not be asked is listed in <see cref="Gaps"/>: a caller that must
/// not delete what libvirt still needs treats a gap as "in use".
/// </summary>
internal sealed class HostImageReferences
{
    private HostImageReferences(string? uri, IReadOnlyList<ImageReference> references, IReadOnlyList<string> poolDirectories, IReadOnlyList<string> gaps)
    {
        Uri = uri;
        References = references;
        PoolDirectories = poolDirectories;
        Gaps = gaps;
    }

    /// <summary>The connection asked, or null when libvirt is not installed.</summary>
    public string? Uri { get; }
    public IReadOnlyList<ImageReference> References { get; }
    /// <summary>Target paths of directory-like storage pools (dir, fs, netfs) that exist on this host.</summary>
    public IReadOnlyList<string> PoolDirectories { get; }
    /// <summary>What could not be checked, and why; empty when every question was answered.</summary>
    public IReadOnlyList<string> Gaps { get; }

    /// <summary>No libvirt on this host: nothing can name a file, and nothing was left unchecked.</summary>
    public static HostImageReferences None { get; } = new(null, Array.Empty<ImageReference>(), Array.Empty<string>(), Array.Empty<string>());

    /// <summary>
    /// Asks the local libvirt ($env:LIBVIRT_DEFAULT_URI, else libvirt's default): over the daemon's socket where that
    /// answers exactly as libvirt.so would (<see cref="Wire.WireHostReferences"/>), else through libvirt.so. When the
    /// library is absent the answer is <see cref="None"/>; when the daemon cannot be reached, or the URI names another
    /// host, the answer is a gap.
    /// </summary>
    public static HostImageReferences CollectLocal(Action<string>? trace = null)
    {
        // The local daemon over its socket when that answers as libvirt.so would, without loading libvirt.so.
        if (Wire.WireHostReferences.TryCollect(trace) is { } wire) return wire;
        if (!LibvirtLibrary.Load().Loaded) return None;
        LibvirtConnection connection;
        try
        {
            connection = LibvirtConnection.Get(null, trace);
        }
        catch (KvmSnapshotException e)
        {
            return Gap(LibvirtConnection.EffectiveUri(null), $"the local libvirt could not be asked which domains, snapshots and storage pools use images ({e.Message})");
        }
        using (connection)
        {
            if (!connection.IsLocal)
            {
                return Gap(connection.Uri, $"the default libvirt URI '{connection.Uri}' is another host, so the domains of this host could not be asked");
            }
            return Collect(connection, trace);
        }
    }

    /// <summary>Every reference <paramref name="connection"/> knows of.</summary>
    public static HostImageReferences Collect(LibvirtConnection connection, Action<string>? trace = null)
    {
        var references = new List<ImageReference>();
        var gaps = new List<string>();
        var pools = new List<string>();
        var quiet = trace ?? (_ => { });
        string[] names;
        try
        {
            names = Virt.ConnectListAllDomainNames(connection.Handle, ConnectListAllDomainsFlags.None, connection.Uri);
        }
        catch (KvmSnapshotException e)
        {
            return Gap(connection.Uri, $"the domains of {connection.Uri} could not be listed ({e.Message})");
        }
        // Each domain costs a few calls (definitions, snapshot list, one XML per snapshot); several domains are asked
        // at once on the one connection, which libvirt's client and daemon serve concurrently (the daemon takes up
        // to five calls of one client at a time). The answer is assembled in the order of the names.
        var perDomain = new (List<ImageReference> Found, string? Gap)[names.Length];
        KvmSnapshot.Engine.Concurrently.For(names.Length, DomainsInFlight, i => perDomain[i] = CollectDomainWithRetry(connection, names[i], quiet));
        foreach (var (found, gap) in perDomain)
        {
            references.AddRange(found);
            if (gap is not null) gaps.Add(gap);
        }
        try
        {
            foreach (var xml in Virt.ConnectListAllStoragePoolXml(connection.Handle, connection.Uri))
            {
                if (PoolDirectory(xml) is { } dir) pools.Add(dir);
            }
        }
        catch (KvmSnapshotException e)
        {
            gaps.Add($"the storage pools of {connection.Uri} could not be listed ({e.Message})");
        }
        return new HostImageReferences(connection.Uri, references, pools.Distinct(StringComparer.Ordinal).ToList(), gaps);
    }

    /// <summary>Domains asked at once (each with its own calls in turn): below the daemon's five calls per client.</summary>
    private const int DomainsInFlight = 4;

    private static (List<ImageReference> Found, string? Gap) CollectDomainWithRetry(LibvirtConnection connection, string name, Action<string> quiet)
    {
        // A domain that changes while it is read (stopped, undefined, a snapshot being taken) is read again, for up
        // to about 1.5 s; one that is gone names nothing any more. Only a domain that cannot be read then is a gap.
        for (var attempt = 1; ; attempt++)
        {
            var found = new List<ImageReference>();
            try
            {
                CollectDomain(connection, name, quiet, found);
                return (found, null);
            }
            catch (KvmSnapshotException e) when (e.ErrorId is ErrorIds.DomainNotFound || !StillDefined(connection, name))
            {
                return (new List<ImageReference>(), null);
            }
            catch (KvmSnapshotException e)
            {
                // libvirt 9.0 fails virDomainListAllSnapshots ("name in virGetDomainSnapshot must not be NULL")
                // while a snapshot of the domain is being created; that passes within a snapshot's time.
                if (attempt < 6)
                {
                    System.Threading.Thread.Sleep(25 << attempt);
                    continue;
                }
                return (new List<ImageReference>(), $"domain {name} on {connection.Uri} could not be read ({e.Message})");
            }
        }
    }

    private static bool StillDefined(LibvirtConnection connection, string name)
    {
        try
        {
            connection.LookupDomain(name, null).Dispose();
            return true;
        }
        catch (KvmSnapshotException e) when (e.ErrorId == ErrorIds.DomainNotFound)
        {
            return false;
        }
    }

    private static void CollectDomain(LibvirtConnection connection, string name, Action<string> trace, List<ImageReference> into)
    {
        using var dom = LibvirtDomain.Lookup(connection, name, trace);
        AddDomain(name, dom.GetXml(DomainXmlFlags.Inactive), dom.IsActive ? dom.GetXml() : null, into);

        var snapshots = dom.ListSnapshots();
        try
        {
            foreach (var handle in snapshots)
            {
                var snapshotName = Virt.DomainSnapshotGetName(handle);
                string xml;
                try
                {
                    xml = dom.SnapshotXml(handle, snapshotName);
                }
                catch (KvmSnapshotException e) when (e.ErrorId == ErrorIds.SnapshotNotFound)
                {
                    continue; // deleted since it was listed: it names nothing any more
                }
                AddSnapshot(name, snapshotName, xml, into);
            }
        }
        finally
        {
            foreach (var handle in snapshots) handle.Dispose();
        }
    }

    /// <summary>The files a domain's definitions name: the inactive one, and the live one of a running domain.</summary>
    internal static void AddDomain(string name, string inactiveXml, string? liveXml, List<ImageReference> into)
    {
        AddDisks(DomainXml.Disks(inactiveXml, name), name, null, into, ImageReferenceKind.DomainDisk);
        if (liveXml is not null) AddDisks(DomainXml.Disks(liveXml, name), name, null, into, ImageReferenceKind.DomainDisk);
    }

    /// <summary>The files one snapshot's XML names: its overlays, its memory file and its saved domain's disks.</summary>
    internal static void AddSnapshot(string name, string snapshotName, string xml, List<ImageReference> into)
    {
        var info = SnapshotXml.Parse(xml, snapshotName);
        foreach (var disk in info.Disks.Where(d => d.Snapshot == "external" && IsLocalPath(d.File)))
        {
            into.Add(new ImageReference(Path.GetFullPath(disk.File!), disk.Driver, ImageReferenceKind.SnapshotOverlay, name, disk.Disk, snapshotName));
        }
        if (IsLocalPath(info.MemoryFile))
        {
            into.Add(new ImageReference(Path.GetFullPath(info.MemoryFile!), null, ImageReferenceKind.SnapshotMemory, name, null, snapshotName));
        }
        var modes = info.Disks.GroupBy(d => d.Disk, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Snapshot, StringComparer.Ordinal);
        var start = into.Count;
        AddDisks(info.DomainDisks, name, snapshotName, into, ImageReferenceKind.SnapshotDomainDisk);
        for (var i = start; i < into.Count; i++)
        {
            into[i] = into[i] with { SnapshotMode = into[i].Disk is { } d && modes.TryGetValue(d, out var m) ? m : null };
        }
    }

    private static void AddDisks(IEnumerable<DiskXml> disks, string domain, string? snapshot, List<ImageReference> into, ImageReferenceKind kind)
    {
        foreach (var disk in disks)
        {
            if (disk.Type is "file" or "block" && IsLocalPath(disk.Source))
            {
                into.Add(new ImageReference(Path.GetFullPath(disk.Source!), disk.Format, kind, domain, disk.Target, snapshot));
            }
            foreach (var layer in disk.Backing.Where(b => b.Type is "file" or "block" && IsLocalPath(b.Source)))
            {
                into.Add(new ImageReference(Path.GetFullPath(layer.Source!), layer.Format,
                    kind == ImageReferenceKind.DomainDisk ? ImageReferenceKind.DomainBackingStore : kind, domain, disk.Target, snapshot));
            }
        }
    }

    private static bool IsLocalPath(string? path) => path is not null && path.StartsWith('/');

    /// <summary>The target path of a pool whose volumes are files in a directory.</summary>
    internal static string? PoolDirectory(string xml)
    {
        XDocument doc;
        try
        {
            doc = XDocument.Parse(xml);
        }
        catch (System.Xml.XmlException)
        {
            return null;
        }
        var type = doc.Root?.Attribute("type")?.Value;
        if (type is not ("dir" or "fs" or "netfs")) return null;
        var path = doc.Root?.Element("target")?.Element("path")?.Value;
        return IsLocalPath(path) && Directory.Exists(path) ? Path.GetFullPath(path!) : null;
    }

    /// <summary>An answer assembled elsewhere (<see cref="Wire.WireHostReferences"/>).</summary>
    internal static HostImageReferences From(string uri, List<ImageReference> references, List<string> poolDirectories)
        => new(uri, references, poolDirectories.Distinct(StringComparer.Ordinal).ToList(), Array.Empty<string>());

    private static HostImageReferences Gap(string? uri, string why)
        => new(uri, Array.Empty<ImageReference>(), Array.Empty<string>(), new[] { why });
}
