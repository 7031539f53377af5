using System;
using System.Collections.Generic;
using System.Linq;
using KvmSnapshot.Libvirt.Native;

namespace KvmSnapshot.Libvirt;

/// <summary>
/// A looked-up domain and the managed calls the live engine makes on it. Every call is reported to
/// <see cref="Trace"/> first (the engine passes ctx.Verbose), with its arguments, as -Verbose shows it.
/// The domain owns the connection lease it was made with and releases it on Dispose.
/// </summary>
internal sealed partial class LibvirtDomain : IDisposable
{
    private LibvirtDomain(LibvirtConnection connection, DomainHandle handle, string name, Action<string> trace)
    {
        Connection = connection;
        Handle = handle;
        Name = name;
        Trace = trace;
    }

    public LibvirtConnection Connection { get; }
    public DomainHandle Handle { get; }
    public string Name { get; }
    public Action<string> Trace { get; }

    /// <summary>DomainNotFound when there is no such domain. Takes ownership of <paramref name="connection"/> (also on failure).</summary>
    public static LibvirtDomain Lookup(LibvirtConnection connection, string name, Action<string> trace)
    {
        try
        {
            return new(connection, connection.LookupDomain(name, trace), name, trace);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>virDomainDefineXML: the domain's new persistent definition. Takes ownership of <paramref name="connection"/>.</summary>
    public static LibvirtDomain Define(LibvirtConnection connection, string xml, string name, Action<string> trace)
    {
        try
        {
            trace(LibvirtCall.Format("virDomainDefineXML", ("xml", xml)));
            return new LibvirtDomain(connection, Virt.DomainDefineXml(connection.Handle, xml, name), name, trace);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>virDomainRestoreFlags; the domain that comes back is named in the save file's XML.</summary>
    public static void Restore(LibvirtConnection connection, string path, DomainSaveRestoreFlags flags, Action<string> trace)
    {
        trace(LibvirtCall.Format("virDomainRestoreFlags", ("from", path), ("dxml", null), ("flags", flags)));
        Virt.DomainRestoreFlags(connection.Handle, path, flags, path);
    }

    public static string SaveImageXml(LibvirtConnection connection, string path, Action<string> trace)
    {
        trace(LibvirtCall.Format("virDomainSaveImageGetXMLDesc", ("file", path), ("flags", 0)));
        return Virt.DomainSaveImageGetXmlDesc(connection.Handle, path, path);
    }

    public string GetXml(DomainXmlFlags flags = DomainXmlFlags.None)
    {
        Trace(LibvirtCall.Format("virDomainGetXMLDesc", ("dom", Name), ("flags", flags)));
        return Virt.DomainGetXmlDesc(Handle, flags, Name);
    }

    public DomainState State
    {
        get
        {
            Trace(LibvirtCall.Format("virDomainGetState", ("dom", Name)));
            return Virt.DomainGetState(Handle, Name);
        }
    }

    /// <summary>Running, paused, or in between: anything with a QEMU process.</summary>
    public bool IsActive => IsActiveState(State);

    /// <summary>See <see cref="IsActive"/>; for a state read another way (libvirt's protocol, <see cref="Wire.WireHostReferences"/>).</summary>
    internal static bool IsActiveState(DomainState state) => state is not (DomainState.Shutoff or DomainState.Crashed or DomainState.NoState);

    public bool IsPersistent
    {
        get
        {
            Trace(LibvirtCall.Format("virDomainIsPersistent", ("dom", Name)));
            return Virt.DomainIsPersistent(Handle, Name);
        }
    }

    public void Start(DomainCreateFlags flags)
    {
        Trace(LibvirtCall.Format("virDomainCreateWithFlags", ("dom", Name), ("flags", flags)));
        Virt.DomainCreateWithFlags(Handle, flags, Name);
    }

    public void Destroy()
    {
        Trace(LibvirtCall.Format("virDomainDestroy", ("dom", Name)));
        Virt.DomainDestroy(Handle, Name);
    }

    public void Suspend()
    {
        Trace(LibvirtCall.Format("virDomainSuspend", ("dom", Name)));
        Virt.DomainSuspend(Handle, Name);
    }

    public void Resume()
    {
        Trace(LibvirtCall.Format("virDomainResume", ("dom", Name)));
        Virt.DomainResume(Handle, Name);
    }

    public bool AbortJob()
    {
        Trace(LibvirtCall.Format("virDomainAbortJob", ("dom", Name)));
        return Virt.DomainAbortJob(Handle);
    }

    public void Save(string path, DomainSaveRestoreFlags flags)
    {
        Trace(LibvirtCall.Format("virDomainSaveFlags", ("dom", Name), ("to", path), ("dxml", null), ("flags", flags)));
        Virt.DomainSaveFlags(Handle, path, flags, Name);
    }

    // ---- snapshots ---------------------------------------------------------------------------------------------

    public DomainSnapshotHandle CreateSnapshot(string xml, DomainSnapshotCreateFlags flags)
    {
        Trace(LibvirtCall.Format("virDomainSnapshotCreateXML", ("dom", Name), ("xml", xml), ("flags", flags)));
        return Virt.DomainSnapshotCreateXml(Handle, xml, flags, Name);
    }

    public DomainSnapshotHandle[] ListSnapshots()
    {
        Trace(LibvirtCall.Format("virDomainListAllSnapshots", ("dom", Name), ("flags", DomainSnapshotListFlags.Topological)));
        return Virt.DomainListAllSnapshots(Handle, DomainSnapshotListFlags.Topological, Name);
    }

    /// <summary>SnapshotNotFound when the domain has no snapshot of that name.</summary>
    public DomainSnapshotHandle LookupSnapshot(string name)
    {
        Trace(LibvirtCall.Format("virDomainSnapshotLookupByName", ("dom", Name), ("name", name), ("flags", 0)));
        return Virt.DomainSnapshotLookupByName(Handle, name, name);
    }

    /// <summary>The current snapshot, or null when the domain has none.</summary>
    public DomainSnapshotHandle? CurrentSnapshot()
    {
        Trace(LibvirtCall.Format("virDomainHasCurrentSnapshot", ("dom", Name), ("flags", 0)));
        if (!Virt.DomainHasCurrentSnapshot(Handle, Name)) return null;
        Trace(LibvirtCall.Format("virDomainSnapshotCurrent", ("dom", Name), ("flags", 0)));
        return Virt.DomainSnapshotCurrent(Handle, Name);
    }

    /// <summary>The name of the current snapshot, or null when the domain has none.</summary>
    public string? CurrentSnapshotName()
    {
        using var current = CurrentSnapshot();
        return current is null ? null : Virt.DomainSnapshotGetName(current);
    }

    /// <summary>Names of the snapshots libvirt lists without metadata (one list call; none for the QEMU driver).</summary>
    public IReadOnlySet<string> SnapshotNamesWithoutMetadata()
    {
        Trace(LibvirtCall.Format("virDomainListAllSnapshots", ("dom", Name), ("flags", DomainSnapshotListFlags.NoMetadata)));
        var handles = Virt.DomainListAllSnapshots(Handle, DomainSnapshotListFlags.NoMetadata, Name);
        try
        {
            return handles.Select(h => Virt.DomainSnapshotGetName(h)).ToHashSet(StringComparer.Ordinal);
        }
        finally
        {
            foreach (var h in handles) h.Dispose();
        }
    }

    public string SnapshotXml(DomainSnapshotHandle snapshot, string name)
    {
        Trace(LibvirtCall.Format("virDomainSnapshotGetXMLDesc", ("snapshot", name), ("flags", 0)));
        return Virt.DomainSnapshotGetXmlDesc(snapshot, name);
    }

    public bool SnapshotIsCurrent(DomainSnapshotHandle snapshot, string name)
    {
        Trace(LibvirtCall.Format("virDomainSnapshotIsCurrent", ("snapshot", name), ("flags", 0)));
        return Virt.DomainSnapshotIsCurrent(snapshot, name);
    }

    public bool SnapshotHasMetadata(DomainSnapshotHandle snapshot, string name)
    {
        Trace(LibvirtCall.Format("virDomainSnapshotHasMetadata", ("snapshot", name), ("flags", 0)));
        return Virt.DomainSnapshotHasMetadata(snapshot, name);
    }

    public void RevertToSnapshot(DomainSnapshotHandle snapshot, string name, DomainSnapshotRevertFlags flags)
    {
        Trace(LibvirtCall.Format("virDomainRevertToSnapshot", ("snapshot", name), ("flags", flags)));
        Virt.DomainRevertToSnapshot(snapshot, flags, name);
    }

    public void DeleteSnapshot(DomainSnapshotHandle snapshot, string name, DomainSnapshotDeleteFlags flags)
    {
        Trace(LibvirtCall.Format("virDomainSnapshotDelete", ("snapshot", name), ("flags", flags)));
        Virt.DomainSnapshotDelete(snapshot, flags, name);
    }

    // ---- block jobs --------------------------------------------------------------------------------------------

    public void BlockCommit(string disk, string? @base, string? top, ulong bandwidth, DomainBlockCommitFlags flags)
    {
        Trace(LibvirtCall.Format("virDomainBlockCommit", ("dom", Name), ("disk", disk), ("base", @base), ("top", top), ("bandwidth", bandwidth), ("flags", flags)));
        Virt.DomainBlockCommit(Handle, disk, @base, top, bandwidth, flags, $"{Name}/{disk}");
    }

    public void BlockRebase(string disk, string? @base, ulong bandwidth, DomainBlockRebaseFlags flags)
    {
        Trace(LibvirtCall.Format("virDomainBlockRebase", ("dom", Name), ("disk", disk), ("base", @base), ("bandwidth", bandwidth), ("flags", flags)));
        Virt.DomainBlockRebase(Handle, disk, @base, bandwidth, flags, $"{Name}/{disk}");
    }

    public void BlockPull(string disk, ulong bandwidth, DomainBlockPullFlags flags)
    {
        Trace(LibvirtCall.Format("virDomainBlockPull", ("dom", Name), ("disk", disk), ("bandwidth", bandwidth), ("flags", flags)));
        Virt.DomainBlockPull(Handle, disk, bandwidth, flags, $"{Name}/{disk}");
    }

    /// <summary>Polled for progress; not traced each time (it runs every 250 ms while a job is waited on).</summary>
    public BlockJobInfo? BlockJobInfo(string disk, bool trace = false)
    {
        if (trace) Trace(LibvirtCall.Format("virDomainGetBlockJobInfo", ("dom", Name), ("disk", disk), ("flags", DomainBlockJobInfoFlags.BandwidthBytes)));
        return Virt.DomainGetBlockJobInfo(Handle, disk, $"{Name}/{disk}");
    }

    public void BlockJobAbort(string disk, DomainBlockJobAbortFlags flags)
    {
        Trace(LibvirtCall.Format("virDomainBlockJobAbort", ("dom", Name), ("disk", disk), ("flags", flags)));
        Virt.DomainBlockJobAbort(Handle, disk, flags, $"{Name}/{disk}");
    }

    public void Dispose()
    {
        Handle.Dispose();
        Connection.Dispose();
    }
}
