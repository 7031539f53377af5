using System;
using System.Runtime.InteropServices;

namespace KvmSnapshot.Libvirt.Native;

internal static unsafe partial class Virt
{
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial DomainHandle virDomainLookupByName(ConnectHandle conn, string name);
    [LibraryImport(Lib, EntryPoint = "virDomainFree")] private static partial int virDomainFreeRaw(IntPtr dom);
    [LibraryImport(Lib)] private static partial IntPtr virDomainGetName(IntPtr dom);
    [LibraryImport(Lib)] private static partial IntPtr virDomainGetName(DomainHandle dom);
    [LibraryImport(Lib)] private static partial IntPtr virDomainGetXMLDesc(DomainHandle dom, DomainXmlFlags flags);
    [LibraryImport(Lib)] private static partial int virDomainGetState(DomainHandle dom, out int state, out int reason, uint flags);
    [LibraryImport(Lib)] private static partial int virDomainIsPersistent(DomainHandle dom);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial DomainHandle virDomainDefineXML(ConnectHandle conn, string xml);
    [LibraryImport(Lib)] private static partial int virDomainCreateWithFlags(DomainHandle dom, DomainCreateFlags flags);
    [LibraryImport(Lib)] private static partial int virDomainDestroy(DomainHandle dom);
    [LibraryImport(Lib)] private static partial int virDomainSuspend(DomainHandle dom);
    [LibraryImport(Lib)] private static partial int virDomainResume(DomainHandle dom);
    [LibraryImport(Lib)] private static partial int virDomainAbortJob(DomainHandle dom);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial int virDomainSaveFlags(DomainHandle dom, string to, string? dxml, DomainSaveRestoreFlags flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial int virDomainRestoreFlags(ConnectHandle conn, string from, string? dxml, DomainSaveRestoreFlags flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial IntPtr virDomainSaveImageGetXMLDesc(ConnectHandle conn, string file, uint flags);

    internal static int RawDomainFree(IntPtr dom) => virDomainFreeRaw(dom);

    public static DomainHandle DomainLookupByName(ConnectHandle conn, string name)
    {
        LibvirtLibrary.Require("virDomainLookupByName");
        var dom = virDomainLookupByName(conn, name);
        if (dom.IsInvalid)
        {
            dom.Dispose();
            throw Fail(LibvirtCallArea.General, name);
        }
        dom.SetParent(conn);
        return dom;
    }

    /// <summary>virDomainGetName: the string belongs to the domain object (not freed).</summary>
    public static string DomainGetName(DomainHandle dom)
    {
        LibvirtLibrary.Require("virDomainGetName");
        return CopyString(virDomainGetName(dom)) ?? throw Fail(LibvirtCallArea.General, null);
    }

    /// <summary>Name of a domain pointer borrowed inside an event callback (object string, not freed).</summary>
    public static string? DomainGetNameBorrowed(IntPtr dom) => CopyString(virDomainGetName(dom));

    /// <summary>virDomainGetXMLDesc (caller string).</summary>
    public static string DomainGetXmlDesc(DomainHandle dom, DomainXmlFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainGetXMLDesc");
        return TakeString(virDomainGetXMLDesc(dom, flags)) ?? throw Fail(LibvirtCallArea.General, target);
    }

    public static DomainState DomainGetState(DomainHandle dom, object? target)
    {
        LibvirtLibrary.Require("virDomainGetState");
        if (virDomainGetState(dom, out var state, out _, 0) < 0) throw Fail(LibvirtCallArea.General, target);
        return (DomainState)state;
    }

    public static bool DomainIsPersistent(DomainHandle dom, object? target)
    {
        LibvirtLibrary.Require("virDomainIsPersistent");
        var r = virDomainIsPersistent(dom);
        if (r < 0) throw Fail(LibvirtCallArea.General, target);
        return r == 1;
    }

    /// <summary>virDomainDefineXML: makes (or replaces) the persistent definition.</summary>
    public static DomainHandle DomainDefineXml(ConnectHandle conn, string xml, object? target)
    {
        LibvirtLibrary.Require("virDomainDefineXML");
        var dom = virDomainDefineXML(conn, xml);
        if (dom.IsInvalid)
        {
            dom.Dispose();
            throw Fail(LibvirtCallArea.General, target);
        }
        dom.SetParent(conn);
        return dom;
    }

    public static void DomainCreateWithFlags(DomainHandle dom, DomainCreateFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainCreateWithFlags");
        if (virDomainCreateWithFlags(dom, flags) < 0) throw Fail(LibvirtCallArea.General, target);
    }

    public static void DomainDestroy(DomainHandle dom, object? target)
    {
        LibvirtLibrary.Require("virDomainDestroy");
        if (virDomainDestroy(dom) < 0) throw Fail(LibvirtCallArea.General, target);
    }

    public static void DomainSuspend(DomainHandle dom, object? target)
    {
        LibvirtLibrary.Require("virDomainSuspend");
        if (virDomainSuspend(dom) < 0) throw Fail(LibvirtCallArea.General, target);
    }

    public static void DomainResume(DomainHandle dom, object? target)
    {
        LibvirtLibrary.Require("virDomainResume");
        if (virDomainResume(dom) < 0) throw Fail(LibvirtCallArea.General, target);
    }

    /// <summary>Aborts the domain's current job (a save in progress); false when there was none to abort.</summary>
    public static bool DomainAbortJob(DomainHandle dom)
    {
        LibvirtLibrary.Require("virDomainAbortJob");
        if (virDomainAbortJob(dom) >= 0) return true;
        TakeLastError();
        return false;
    }

    public static void DomainSaveFlags(DomainHandle dom, string to, DomainSaveRestoreFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainSaveFlags");
        if (virDomainSaveFlags(dom, to, null, flags) < 0) throw Fail(LibvirtCallArea.General, target);
    }

    public static void DomainRestoreFlags(ConnectHandle conn, string from, DomainSaveRestoreFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainRestoreFlags");
        if (virDomainRestoreFlags(conn, from, null, flags) < 0) throw Fail(LibvirtCallArea.General, target);
    }

    /// <summary>virDomainSaveImageGetXMLDesc (caller string): the domain XML stored in a save file.</summary>
    public static string DomainSaveImageGetXmlDesc(ConnectHandle conn, string file, object? target)
    {
        LibvirtLibrary.Require("virDomainSaveImageGetXMLDesc");
        return TakeString(virDomainSaveImageGetXMLDesc(conn, file, 0)) ?? throw Fail(LibvirtCallArea.General, target);
    }
}
