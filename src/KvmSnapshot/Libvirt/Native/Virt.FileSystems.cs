using System;
using System.Runtime.InteropServices;

namespace KvmSnapshot.Libvirt.Native;

internal static unsafe partial class Virt
{
    // int virDomainFSFreeze(virDomainPtr dom, const char **mountpoints, unsigned int nmountpoints, unsigned int flags)
    [LibraryImport(Lib)] private static partial int virDomainFSFreeze(DomainHandle dom, IntPtr mountpoints, uint nmountpoints, uint flags);
    // int virDomainFSThaw(virDomainPtr dom, const char **mountpoints, unsigned int nmountpoints, unsigned int flags)
    [LibraryImport(Lib)] private static partial int virDomainFSThaw(DomainHandle dom, IntPtr mountpoints, uint nmountpoints, uint flags);

    /// <summary>virDomainFSFreeze of every mounted file system (no mount point list): the guest agent freezes them; returns how many.</summary>
    public static int DomainFSFreeze(DomainHandle dom, object? target)
    {
        LibvirtLibrary.Require("virDomainFSFreeze");
        var frozen = virDomainFSFreeze(dom, IntPtr.Zero, 0, 0);
        if (frozen < 0) throw Fail(LibvirtCallArea.General, target);
        return frozen;
    }

    /// <summary>virDomainFSThaw of every frozen file system; returns how many were thawed.</summary>
    public static int DomainFSThaw(DomainHandle dom, object? target)
    {
        LibvirtLibrary.Require("virDomainFSThaw");
        var thawed = virDomainFSThaw(dom, IntPtr.Zero, 0, 0);
        if (thawed < 0) throw Fail(LibvirtCallArea.General, target);
        return thawed;
    }
}
