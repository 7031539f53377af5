using System;
using System.Runtime.InteropServices;

namespace KvmSnapshot.Libvirt.Native;

/// <summary>
/// libvirt's C API, two layers per function: a private <c>[LibraryImport]</c> declaration named as in C, and an
/// internal wrapper that checks the symbol exists, checks the result, copies libvirt's thread-local error right
/// after a failure (same thread, nothing in between), and wraps pointers into SafeHandles.
/// String ownership is noted per function: "caller" strings are copied then freed with free(3); "object" strings
/// belong to the libvirt object and are only copied.
/// </summary>
internal static unsafe partial class Virt
{
    private const string Lib = LibvirtLibrary.LogicalName;

    // ---- libc -------------------------------------------------------------------------------------------------

    /// <summary>libvirt allocates returned strings and arrays with the C allocator; free(3) releases them.</summary>
    private static void free(IntPtr ptr) => Linux.LibC.Free(ptr);

    /// <summary>Copies a caller-owned char* and frees it. Null stays null.</summary>
    private static string? TakeString(IntPtr p)
    {
        if (p == IntPtr.Zero) return null;
        try { return Marshal.PtrToStringUTF8(p); }
        finally { free(p); }
    }

    /// <summary>Copies an object-owned const char* (not freed).</summary>
    private static string? CopyString(IntPtr p) => p == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(p);

    /// <summary>
    /// Takes ownership of a caller-owned array of <paramref name="count"/> object pointers (virConnectListAll*,
    /// virDomainListAll*): each becomes a handle through <paramref name="adopt"/>, and the array is freed. If adopting
    /// fails part-way, the handles made so far are disposed and every pointer not yet adopted is released with
    /// <paramref name="freeElement"/>; the array itself is always freed.
    /// </summary>
    internal static T[] AdoptAll<T>(IntPtr array, int count, Func<IntPtr, T> adopt, Func<IntPtr, int> freeElement, Action<IntPtr> freeArray)
        where T : IDisposable
    {
        var handles = new T[count];
        var adopted = 0;
        try
        {
            for (; adopted < count; adopted++)
            {
                handles[adopted] = adopt(Marshal.ReadIntPtr(array, adopted * IntPtr.Size));
            }
            return handles;
        }
        catch
        {
            for (var i = 0; i < adopted; i++) handles[i].Dispose();
            throw;
        }
        finally
        {
            // adopted == count after success; otherwise the failed element and the rest still belong to us.
            for (var i = adopted; i < count; i++) freeElement(Marshal.ReadIntPtr(array, i * IntPtr.Size));
            if (array != IntPtr.Zero) freeArray(array);
        }
    }

    // ---- errors (virterror.h) -----------------------------------------------------------------------------------

    [LibraryImport(Lib)] private static partial IntPtr virGetLastError();
    [LibraryImport(Lib)] private static partial void virResetLastError();
    [LibraryImport(Lib)] private static partial void virSetErrorFunc(IntPtr userData, IntPtr handler);

    /// <summary>
    /// Copies the calling thread's last libvirt error and clears it. Must run on the thread of the failed call,
    /// directly after it (libvirt keeps one error slot per thread).
    /// </summary>
    public static LibvirtErrorInfo TakeLastError()
    {
        var p = virGetLastError();
        if (p == IntPtr.Zero) return LibvirtErrorInfo.Unknown;
        // struct _virError { int code; int domain; char *message; ... } — the message is owned by libvirt.
        var code = Marshal.ReadInt32(p, 0);
        var domain = Marshal.ReadInt32(p, 4);
        var message = CopyString(Marshal.ReadIntPtr(p, 8)) ?? LibvirtErrorInfo.Unknown.Message;
        virResetLastError();
        return new LibvirtErrorInfo(code, domain, message);
    }

    private static LibvirtException Fail(LibvirtCallArea area, object? target) =>
        LibvirtErrorTable.ToException(TakeLastError(), area, target);

    [UnmanagedCallersOnly(CallConvs = new[] { typeof(System.Runtime.CompilerServices.CallConvCdecl) })]
    private static void IgnoreError(IntPtr userData, IntPtr error)
    {
        // Errors are read from the failing thread's slot by TakeLastError; libvirt's default handler would print
        // every one of them to stderr of the pwsh session.
    }

    /// <summary>Replaces libvirt's default error handler (which prints to stderr) with one that does nothing.</summary>
    public static void SilenceErrorPrinting()
    {
        LibvirtLibrary.Require("virSetErrorFunc");
        delegate* unmanaged[Cdecl]<IntPtr, IntPtr, void> handler = &IgnoreError;
        virSetErrorFunc(IntPtr.Zero, (IntPtr)handler);
    }

    // ---- library and event loop (libvirt-host.h, libvirt-event.h) -----------------------------------------------

    [LibraryImport(Lib)] private static partial int virInitialize();
    [LibraryImport(Lib)] private static partial int virGetVersion(out CULong libVer, IntPtr type, IntPtr typeVer);
    [LibraryImport(Lib)] private static partial int virEventRegisterDefaultImpl();
    [LibraryImport(Lib)] private static partial int virEventRunDefaultImpl();

    public static void Initialize()
    {
        LibvirtLibrary.Require("virInitialize");
        if (virInitialize() < 0) throw Fail(LibvirtCallArea.General, "libvirt");
    }

    /// <summary>major * 1,000,000 + minor * 1,000 + release.</summary>
    public static ulong GetLibraryVersion()
    {
        LibvirtLibrary.Require("virGetVersion");
        if (virGetVersion(out var version, IntPtr.Zero, IntPtr.Zero) < 0) throw Fail(LibvirtCallArea.General, "libvirt");
        return version.Value;
    }

    public static void EventRegisterDefaultImpl()
    {
        LibvirtLibrary.Require("virEventRegisterDefaultImpl");
        if (virEventRegisterDefaultImpl() < 0) throw Fail(LibvirtCallArea.General, "libvirt event loop");
    }

    /// <summary>One iteration of the default event loop; false (with the error) when it failed.</summary>
    public static bool EventRunDefaultImpl(out LibvirtErrorInfo error)
    {
        if (virEventRunDefaultImpl() >= 0)
        {
            error = default;
            return true;
        }
        error = TakeLastError();
        return false;
    }

    // ---- connections ------------------------------------------------------------------------------------------

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial ConnectHandle virConnectOpen(string? name);
    [LibraryImport(Lib, EntryPoint = "virConnectClose")] private static partial int virConnectCloseRaw(IntPtr conn);
    [LibraryImport(Lib)] private static partial int virConnectIsAlive(ConnectHandle conn);
    [LibraryImport(Lib)] private static partial IntPtr virConnectGetURI(ConnectHandle conn);
    [LibraryImport(Lib)] private static partial int virConnectSetKeepAlive(ConnectHandle conn, int interval, uint count);
    [LibraryImport(Lib)] private static partial int virConnectListAllDomains(ConnectHandle conn, out IntPtr domains, ConnectListAllDomainsFlags flags);
    [LibraryImport(Lib)] private static partial IntPtr virConnectGetHostname(ConnectHandle conn);
    [LibraryImport(Lib)] private static partial int virConnectGetLibVersion(ConnectHandle conn, out CULong libVer);
    [LibraryImport(Lib)] private static partial int virConnectRegisterCloseCallback(ConnectHandle conn, IntPtr cb, IntPtr opaque, IntPtr freeCallback);
    [LibraryImport(Lib)] private static partial int virConnectUnregisterCloseCallback(ConnectHandle conn, IntPtr cb);

    /// <summary>virConnectOpen; null = libvirt's default URI. Any failure is ConnectionFailed.</summary>
    public static ConnectHandle ConnectOpen(string? uri)
    {
        LibvirtLibrary.Require("virConnectOpen");
        var conn = virConnectOpen(uri);
        if (conn.IsInvalid)
        {
            conn.Dispose();
            throw Fail(LibvirtCallArea.Connection, uri ?? "(libvirt default URI)");
        }
        return conn;
    }

    internal static int RawConnectClose(IntPtr conn) => virConnectCloseRaw(conn);

    public static bool ConnectIsAlive(ConnectHandle conn)
    {
        LibvirtLibrary.Require("virConnectIsAlive");
        var alive = virConnectIsAlive(conn);
        if (alive < 0)
        {
            TakeLastError(); // a dead connection is an answer here, not an error
            return false;
        }
        return alive == 1;
    }

    /// <summary>virConnectGetURI (caller string).</summary>
    public static string ConnectGetUri(ConnectHandle conn, object? target)
    {
        LibvirtLibrary.Require("virConnectGetURI");
        return TakeString(virConnectGetURI(conn)) ?? throw Fail(LibvirtCallArea.Connection, target);
    }

    /// <summary>virConnectGetHostname (caller string).</summary>
    public static string ConnectGetHostname(ConnectHandle conn, object? target)
    {
        LibvirtLibrary.Require("virConnectGetHostname");
        return TakeString(virConnectGetHostname(conn)) ?? throw Fail(LibvirtCallArea.General, target);
    }

    /// <summary>
    /// virConnectGetLibVersion: the libvirt version serving the connection (the daemon's for a daemon or remote URI),
    /// major * 1,000,000 + minor * 1,000 + release.
    /// </summary>
    public static ulong ConnectGetLibVersion(ConnectHandle conn, object? target)
    {
        LibvirtLibrary.Require("virConnectGetLibVersion");
        if (virConnectGetLibVersion(conn, out var version) < 0) throw Fail(LibvirtCallArea.Connection, target);
        return version.Value;
    }

    /// <summary>
    /// virConnectRegisterCloseCallback: <paramref name="callback"/> runs on the event loop thread when libvirt closes
    /// the connection (libvirtd went away, keepalive timed out); libvirt frees <paramref name="opaque"/> with
    /// <paramref name="freeCallback"/> when it is unregistered. False when this libvirt or driver cannot (then
    /// <paramref name="opaque"/> was freed here).
    /// </summary>
    public static bool ConnectRegisterCloseCallback(ConnectHandle conn, IntPtr callback, IntPtr opaque, IntPtr freeCallback, object? target)
    {
        if (!LibvirtLibrary.Has("virConnectRegisterCloseCallback"))
        {
            NativeCallbacksFree(opaque);
            return false;
        }
        if (virConnectRegisterCloseCallback(conn, callback, opaque, freeCallback) >= 0) return true;
        TakeLastError(); // a driver without close callbacks: liveness is still checked with virConnectIsAlive
        NativeCallbacksFree(opaque);
        return false;
    }

    /// <summary>Best effort, like event deregistration: libvirt then frees the opaque through the free callback.</summary>
    public static void ConnectUnregisterCloseCallback(ConnectHandle conn, IntPtr callback)
    {
        if (!LibvirtLibrary.Has("virConnectUnregisterCloseCallback")) return;
        if (virConnectUnregisterCloseCallback(conn, callback) < 0) TakeLastError();
    }

    private static void NativeCallbacksFree(IntPtr opaque) => KvmSnapshot.Libvirt.NativeCallbacks.Free(opaque);

    /// <summary>Keepalive makes a dead remote peer visible (virConnectIsAlive turns false); needs the event loop.</summary>
    public static void ConnectSetKeepAlive(ConnectHandle conn, int intervalSeconds, uint count, object? target)
    {
        LibvirtLibrary.Require("virConnectSetKeepAlive");
        if (virConnectSetKeepAlive(conn, intervalSeconds, count) < 0) throw Fail(LibvirtCallArea.Connection, target);
    }

    /// <summary>virConnectListAllDomains: every element is freed with virDomainFree, then the array with free(3).</summary>
    public static string[] ConnectListAllDomainNames(ConnectHandle conn, ConnectListAllDomainsFlags flags, object? target)
    {
        LibvirtLibrary.Require("virConnectListAllDomains");
        var count = virConnectListAllDomains(conn, out var array, flags);
        if (count < 0) throw Fail(LibvirtCallArea.General, target);
        var names = new string[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                var dom = Marshal.ReadIntPtr(array, i * IntPtr.Size);
                names[i] = CopyString(virDomainGetName(dom)) ?? string.Empty;
            }
        }
        finally
        {
            for (var i = 0; i < count; i++) RawDomainFree(Marshal.ReadIntPtr(array, i * IntPtr.Size));
            free(array);
        }
        return names;
    }

    // ---- domain events (libvirt-domain.h) -----------------------------------------------------------------------

    [LibraryImport(Lib)]
    private static partial int virConnectDomainEventRegisterAny(ConnectHandle conn, IntPtr dom, int eventId, IntPtr callback, IntPtr opaque, IntPtr freeCallback);

    [LibraryImport(Lib)] private static partial int virConnectDomainEventDeregisterAny(ConnectHandle conn, int callbackId);

    /// <summary>Registers <paramref name="callback"/> for <paramref name="eventId"/> on every domain of the connection.</summary>
    /// <remarks>
    /// libvirt frees <paramref name="opaque"/> with <paramref name="freeCallback"/> after deregistration; when
    /// registration fails it does not, and the opaque is freed here.
    /// </remarks>
    public static int ConnectDomainEventRegisterAny(ConnectHandle conn, DomainEventId eventId, IntPtr callback, IntPtr opaque, IntPtr freeCallback, object? target)
    {
        LibvirtLibrary.Require("virConnectDomainEventRegisterAny");
        var id = virConnectDomainEventRegisterAny(conn, IntPtr.Zero, (int)eventId, callback, opaque, freeCallback);
        if (id < 0)
        {
            var failure = Fail(LibvirtCallArea.Connection, target);
            NativeCallbacksFree(opaque);
            throw failure;
        }
        return id;
    }

    /// <summary>Best effort: a connection that already died has no callbacks left to remove.</summary>
    public static void ConnectDomainEventDeregisterAny(ConnectHandle conn, int callbackId)
    {
        if (!LibvirtLibrary.Has("virConnectDomainEventDeregisterAny")) return;
        if (virConnectDomainEventDeregisterAny(conn, callbackId) < 0) TakeLastError();
    }
}
