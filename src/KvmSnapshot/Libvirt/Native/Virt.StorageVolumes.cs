using System;
using System.Runtime.InteropServices;

namespace KvmSnapshot.Libvirt.Native;

/// <summary>virStoragePoolPtr; released with virStoragePoolFree; keeps its connection alive.</summary>
internal sealed class StoragePoolHandle : ChildHandle
{
    protected override int Free(IntPtr raw) => Virt.RawStoragePoolFree(raw);
}

/// <summary>virStorageVolPtr; released with virStorageVolFree; keeps its pool (or connection) alive.</summary>
internal sealed class StorageVolHandle : ChildHandle
{
    protected override int Free(IntPtr raw) => Virt.RawStorageVolFree(raw);
}

/// <summary>virConnectListAllStoragePoolsFlags (the ones used here).</summary>
[Flags]
internal enum ConnectListAllStoragePoolsFlags : uint
{
    None = 0,
    Inactive = 1 << 0, // VIR_CONNECT_LIST_STORAGE_POOLS_INACTIVE
    Active = 1 << 1,   // VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE
}

// Storage pools and volumes (libvirt-storage.h): what the pool catalog needs to know, on any URI and without opening a
// file on the client, which images a host keeps and which back on which; and to delete a volume through the daemon.
internal static unsafe partial class Virt
{
    [LibraryImport(Lib, EntryPoint = "virConnectListAllStoragePools")] private static partial int virConnectListAllStoragePoolsRaw(ConnectHandle conn, out IntPtr pools, ConnectListAllStoragePoolsFlags flags);
    [LibraryImport(Lib, EntryPoint = "virStoragePoolFree")] private static partial int virStoragePoolFreeRaw(IntPtr pool);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial StoragePoolHandle virStoragePoolLookupByName(ConnectHandle conn, string name);
    [LibraryImport(Lib)] private static partial IntPtr virStoragePoolGetName(StoragePoolHandle pool);
    [LibraryImport(Lib, EntryPoint = "virStoragePoolGetXMLDesc")] private static partial IntPtr virStoragePoolGetXMLDescHandle(StoragePoolHandle pool, uint flags);
    [LibraryImport(Lib)] private static partial int virStoragePoolIsActive(StoragePoolHandle pool);
    [LibraryImport(Lib)] private static partial int virStoragePoolRefresh(StoragePoolHandle pool, uint flags);
    [LibraryImport(Lib)] private static partial int virStoragePoolListAllVolumes(StoragePoolHandle pool, out IntPtr vols, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial StoragePoolHandle virStoragePoolCreateXML(ConnectHandle conn, string xml, uint flags);
    [LibraryImport(Lib)] private static partial int virStoragePoolDestroy(StoragePoolHandle pool);
    [LibraryImport(Lib, EntryPoint = "virStorageVolFree")] private static partial int virStorageVolFreeRaw(IntPtr vol);
    [LibraryImport(Lib)] private static partial IntPtr virStorageVolGetXMLDesc(StorageVolHandle vol, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial StorageVolHandle virStorageVolLookupByPath(ConnectHandle conn, string path);
    [LibraryImport(Lib)] private static partial int virStorageVolDelete(StorageVolHandle vol, uint flags);

    internal static int RawStoragePoolFree(IntPtr pool) => virStoragePoolFreeRaw(pool);
    internal static int RawStorageVolFree(IntPtr vol) => virStorageVolFreeRaw(vol);

    /// <summary>virConnectListAllStoragePools: every element is adopted by a handle (freed with virStoragePoolFree), the array freed with free(3).</summary>
    public static StoragePoolHandle[] ConnectListAllStoragePools(ConnectHandle conn, ConnectListAllStoragePoolsFlags flags, object? target)
    {
        LibvirtLibrary.Require("virConnectListAllStoragePools");
        var count = virConnectListAllStoragePoolsRaw(conn, out var array, flags);
        if (count < 0) throw Fail(LibvirtCallArea.General, target);
        return AdoptAll<StoragePoolHandle>(array, count, conn, RawStoragePoolFree);
    }

    public static StoragePoolHandle StoragePoolLookupByName(ConnectHandle conn, string name)
    {
        LibvirtLibrary.Require("virStoragePoolLookupByName");
        var pool = virStoragePoolLookupByName(conn, name);
        if (pool.IsInvalid)
        {
            pool.Dispose();
            throw Fail(LibvirtCallArea.General, name);
        }
        pool.SetParent(conn);
        return pool;
    }

    /// <summary>virStoragePoolGetName: the string belongs to the pool object (not freed).</summary>
    public static string StoragePoolGetName(StoragePoolHandle pool, object? target)
        => Marshal.PtrToStringUTF8(virStoragePoolGetName(pool)) ?? throw Fail(LibvirtCallArea.General, target);

    /// <summary>virStoragePoolGetXMLDesc: caller string.</summary>
    public static string StoragePoolGetXmlDesc(StoragePoolHandle pool, object? target)
        => TakeString(virStoragePoolGetXMLDescHandle(pool, 0)) ?? throw Fail(LibvirtCallArea.General, target);

    public static bool StoragePoolIsActive(StoragePoolHandle pool, object? target)
    {
        var r = virStoragePoolIsActive(pool);
        if (r < 0) throw Fail(LibvirtCallArea.General, target);
        return r == 1;
    }

    /// <summary>virStoragePoolRefresh: the daemon reads its folder again (new overlays, changed backing files).</summary>
    public static void StoragePoolRefresh(StoragePoolHandle pool, object? target)
    {
        LibvirtLibrary.Require("virStoragePoolRefresh");
        if (virStoragePoolRefresh(pool, 0) < 0) throw Fail(LibvirtCallArea.General, target);
    }

    /// <summary>virStoragePoolListAllVolumes: every element is adopted by a handle, the array freed with free(3).</summary>
    public static StorageVolHandle[] StoragePoolListAllVolumes(StoragePoolHandle pool, object? target)
    {
        LibvirtLibrary.Require("virStoragePoolListAllVolumes");
        var count = virStoragePoolListAllVolumes(pool, out var array, 0);
        if (count < 0) throw Fail(LibvirtCallArea.General, target);
        return AdoptAll<StorageVolHandle>(array, count, pool, RawStorageVolFree);
    }

    /// <summary>virStoragePoolCreateXML: a transient pool, started (it is gone once destroyed).</summary>
    public static StoragePoolHandle StoragePoolCreateXml(ConnectHandle conn, string xml, object? target)
    {
        LibvirtLibrary.Require("virStoragePoolCreateXML");
        var pool = virStoragePoolCreateXML(conn, xml, 0);
        if (pool.IsInvalid)
        {
            pool.Dispose();
            throw Fail(LibvirtCallArea.General, target);
        }
        pool.SetParent(conn);
        return pool;
    }

    public static void StoragePoolDestroy(StoragePoolHandle pool, object? target)
    {
        if (virStoragePoolDestroy(pool) < 0) throw Fail(LibvirtCallArea.General, target);
    }

    /// <summary>virStorageVolGetXMLDesc: caller string (with &lt;backingStore&gt; when the volume has a backing file).</summary>
    public static string StorageVolGetXmlDesc(StorageVolHandle vol, object? target)
        => TakeString(virStorageVolGetXMLDesc(vol, 0)) ?? throw Fail(LibvirtCallArea.General, target);

    public static StorageVolHandle StorageVolLookupByPath(ConnectHandle conn, string path)
    {
        LibvirtLibrary.Require("virStorageVolLookupByPath");
        var vol = virStorageVolLookupByPath(conn, path);
        if (vol.IsInvalid)
        {
            vol.Dispose();
            throw Fail(LibvirtCallArea.General, path);
        }
        vol.SetParent(conn);
        return vol;
    }

    /// <summary>virStorageVolDelete: the daemon removes the volume's file (on the host that serves the connection).</summary>
    public static void StorageVolDelete(StorageVolHandle vol, object? target)
    {
        LibvirtLibrary.Require("virStorageVolDelete");
        if (virStorageVolDelete(vol, 0) < 0) throw Fail(LibvirtCallArea.General, target);
    }

    private static T[] AdoptAll<T>(IntPtr array, int count, SafeHandle parent, Func<IntPtr, int> freeRaw) where T : ChildHandle, new()
    {
        var handles = new T[count];
        var adopted = 0;
        try
        {
            for (; adopted < count; adopted++)
            {
                var h = new T();
                h.Adopt(Marshal.ReadIntPtr(array, adopted * IntPtr.Size), parent);
                handles[adopted] = h;
            }
        }
        catch
        {
            for (var i = 0; i < adopted; i++) handles[i].Dispose();
            for (var i = adopted; i < count; i++) freeRaw(Marshal.ReadIntPtr(array, i * IntPtr.Size));
            throw;
        }
        finally
        {
            free(array);
        }
        return handles;
    }
}
