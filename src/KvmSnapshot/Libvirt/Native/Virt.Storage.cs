using System;
using System.Runtime.InteropServices;

namespace KvmSnapshot.Libvirt.Native;

// Storage pools (libvirt-storage.h): only what the "who uses this file" scan needs, the pools' XML.
internal static unsafe partial class Virt
{
    [LibraryImport(Lib)] private static partial int virConnectListAllStoragePools(ConnectHandle conn, out IntPtr pools, uint flags);
    [LibraryImport(Lib)] private static partial IntPtr virStoragePoolGetXMLDesc(IntPtr pool, uint flags);
    [LibraryImport(Lib)] private static partial int virStoragePoolFree(IntPtr pool);

    /// <summary>
    /// The XML of every storage pool, active or not (virConnectListAllStoragePools with no flags). Each pool pointer
    /// and the array are the caller's: all are freed, also when reading one pool's XML fails part-way.
    /// </summary>
    public static string[] ConnectListAllStoragePoolXml(ConnectHandle conn, object? target)
    {
        LibvirtLibrary.Require("virConnectListAllStoragePools");
        var count = virConnectListAllStoragePools(conn, out var array, 0);
        if (count < 0) throw Fail(LibvirtCallArea.General, target);
        var xml = new string[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                var pool = Marshal.ReadIntPtr(array, i * IntPtr.Size);
                // Caller string: copied, then freed.
                xml[i] = TakeString(virStoragePoolGetXMLDesc(pool, 0)) ?? throw Fail(LibvirtCallArea.General, target);
            }
        }
        finally
        {
            for (var i = 0; i < count; i++) virStoragePoolFree(Marshal.ReadIntPtr(array, i * IntPtr.Size));
            free(array);
        }
        return xml;
    }
}
