using System;
using System.Runtime.InteropServices;

namespace KvmSnapshot.Libvirt.Native;

internal static unsafe partial class Virt
{
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial DomainSnapshotHandle virDomainSnapshotCreateXML(DomainHandle dom, string xml, DomainSnapshotCreateFlags flags);
    [LibraryImport(Lib, EntryPoint = "virDomainSnapshotFree")] private static partial int virDomainSnapshotFreeRaw(IntPtr snapshot);
    [LibraryImport(Lib)] private static partial IntPtr virDomainSnapshotGetName(DomainSnapshotHandle snapshot);
    [LibraryImport(Lib)] private static partial IntPtr virDomainSnapshotGetXMLDesc(DomainSnapshotHandle snapshot, DomainSnapshotXmlFlags flags);
    [LibraryImport(Lib)] private static partial int virDomainListAllSnapshots(DomainHandle dom, out IntPtr snaps, DomainSnapshotListFlags flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial DomainSnapshotHandle virDomainSnapshotLookupByName(DomainHandle dom, string name, uint flags);
    [LibraryImport(Lib)] private static partial int virDomainHasCurrentSnapshot(DomainHandle dom, uint flags);
    [LibraryImport(Lib)] private static partial DomainSnapshotHandle virDomainSnapshotCurrent(DomainHandle dom, uint flags);
    [LibraryImport(Lib)] private static partial int virDomainSnapshotIsCurrent(DomainSnapshotHandle snapshot, uint flags);
    [LibraryImport(Lib)] private static partial int virDomainSnapshotHasMetadata(DomainSnapshotHandle snapshot, uint flags);
    [LibraryImport(Lib)] private static partial int virDomainRevertToSnapshot(DomainSnapshotHandle snapshot, DomainSnapshotRevertFlags flags);
    [LibraryImport(Lib)] private static partial int virDomainSnapshotDelete(DomainSnapshotHandle snapshot, DomainSnapshotDeleteFlags flags);

    internal static int RawDomainSnapshotFree(IntPtr snapshot) => virDomainSnapshotFreeRaw(snapshot);

    private static DomainSnapshotHandle Adopt(DomainSnapshotHandle snapshot, DomainHandle parent, object? target)
    {
        if (snapshot.IsInvalid)
        {
            snapshot.Dispose();
            throw Fail(LibvirtCallArea.Snapshot, target);
        }
        snapshot.SetParent(parent);
        return snapshot;
    }

    public static DomainSnapshotHandle DomainSnapshotCreateXml(DomainHandle dom, string xml, DomainSnapshotCreateFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainSnapshotCreateXML");
        return Adopt(virDomainSnapshotCreateXML(dom, xml, flags), dom, target);
    }

    /// <summary>virDomainSnapshotGetName: the string belongs to the snapshot object (not freed).</summary>
    public static string DomainSnapshotGetName(DomainSnapshotHandle snapshot)
    {
        LibvirtLibrary.Require("virDomainSnapshotGetName");
        return CopyString(virDomainSnapshotGetName(snapshot)) ?? throw Fail(LibvirtCallArea.Snapshot, null);
    }

    /// <summary>virDomainSnapshotGetXMLDesc (caller string).</summary>
    public static string DomainSnapshotGetXmlDesc(DomainSnapshotHandle snapshot, object? target)
    {
        LibvirtLibrary.Require("virDomainSnapshotGetXMLDesc");
        return TakeString(virDomainSnapshotGetXMLDesc(snapshot, DomainSnapshotXmlFlags.None)) ?? throw Fail(LibvirtCallArea.Snapshot, target);
    }

    /// <summary>
    /// virDomainListAllSnapshots: each element becomes a handle (freed with virDomainSnapshotFree when disposed),
    /// then the array itself is freed with free(3).
    /// </summary>
    public static DomainSnapshotHandle[] DomainListAllSnapshots(DomainHandle dom, DomainSnapshotListFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainListAllSnapshots");
        var count = virDomainListAllSnapshots(dom, out var array, flags);
        if (count < 0) throw Fail(LibvirtCallArea.Snapshot, target);
        return AdoptAll(array, count, raw =>
        {
            var handle = new DomainSnapshotHandle();
            handle.Adopt(raw, dom);
            return handle;
        }, RawDomainSnapshotFree, free);
    }

    public static DomainSnapshotHandle DomainSnapshotLookupByName(DomainHandle dom, string name, object? target)
    {
        LibvirtLibrary.Require("virDomainSnapshotLookupByName");
        return Adopt(virDomainSnapshotLookupByName(dom, name, 0), dom, target);
    }

    public static bool DomainHasCurrentSnapshot(DomainHandle dom, object? target)
    {
        LibvirtLibrary.Require("virDomainHasCurrentSnapshot");
        var r = virDomainHasCurrentSnapshot(dom, 0);
        if (r < 0) throw Fail(LibvirtCallArea.Snapshot, target);
        return r == 1;
    }

    public static DomainSnapshotHandle DomainSnapshotCurrent(DomainHandle dom, object? target)
    {
        LibvirtLibrary.Require("virDomainSnapshotCurrent");
        return Adopt(virDomainSnapshotCurrent(dom, 0), dom, target);
    }

    public static bool DomainSnapshotIsCurrent(DomainSnapshotHandle snapshot, object? target)
    {
        LibvirtLibrary.Require("virDomainSnapshotIsCurrent");
        var r = virDomainSnapshotIsCurrent(snapshot, 0);
        if (r < 0) throw Fail(LibvirtCallArea.Snapshot, target);
        return r == 1;
    }

    public static bool DomainSnapshotHasMetadata(DomainSnapshotHandle snapshot, object? target)
    {
        LibvirtLibrary.Require("virDomainSnapshotHasMetadata");
        var r = virDomainSnapshotHasMetadata(snapshot, 0);
        if (r < 0) throw Fail(LibvirtCallArea.Snapshot, target);
        return r == 1;
    }

    public static void DomainRevertToSnapshot(DomainSnapshotHandle snapshot, DomainSnapshotRevertFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainRevertToSnapshot");
        if (virDomainRevertToSnapshot(snapshot, flags) < 0) throw Fail(LibvirtCallArea.Snapshot, target);
    }

    public static void DomainSnapshotDelete(DomainSnapshotHandle snapshot, DomainSnapshotDeleteFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainSnapshotDelete");
        if (virDomainSnapshotDelete(snapshot, flags) < 0) throw Fail(LibvirtCallArea.Snapshot, target);
    }
}
