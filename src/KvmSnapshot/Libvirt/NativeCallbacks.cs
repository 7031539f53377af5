using System;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace KvmSnapshot.Libvirt;

/// <summary>
/// The opaque pointers handed to libvirt with a callback, and the callbacks that are not about one event type.
/// An opaque is a process-unique number (never reused, unlike a GCHandle's address) that maps to the managed
/// receiver here. libvirt calls <see cref="FreeOpaquePointer"/> with it once it will never invoke the callback
/// again (on deregistration, or when the connection ends); a callback whose opaque was already freed finds no
/// receiver and does nothing, so freeing early is never a crash.
/// </summary>
internal static unsafe class NativeCallbacks
{
    // Keyed by the boxed number, not by IntPtr: a ConcurrentDictionary over a value-type key is generic code the
    // runtime compiles on first use (several milliseconds of a first call), one over object keys is precompiled.
    private static readonly ConcurrentDictionary<object, object> Live = new();
    private static long _next;
    private static long _freedByLibvirt;

    /// <summary>Opaques handed out and not yet freed.</summary>
    public static int OutstandingOpaques => Live.Count;

    /// <summary>How many opaques libvirt itself released through the free callback.</summary>
    public static long FreedByLibvirt => Interlocked.Read(ref _freedByLibvirt);

    /// <summary>True while an opaque for <paramref name="receiver"/> is outstanding.</summary>
    public static bool HoldsOpaqueFor(object receiver)
    {
        foreach (var r in Live.Values)
        {
            if (ReferenceEquals(r, receiver)) return true;
        }
        return false;
    }

    /// <summary>A new opaque for <paramref name="receiver"/>; pass it with <see cref="FreeOpaquePointer"/> as the free callback.</summary>
    public static IntPtr Opaque(object receiver)
    {
        var p = (IntPtr)Interlocked.Increment(ref _next);
        Live[p] = receiver; // boxed: IntPtr's Equals and GetHashCode compare the number
        return p;
    }

    /// <summary>The receiver of a live opaque; null once it was freed.</summary>
    public static object? Target(IntPtr opaque) => Live.TryGetValue(opaque, out var r) ? r : null;

    /// <summary>Frees an opaque; freeing it again does nothing.</summary>
    public static bool Free(IntPtr opaque) => Live.TryRemove(opaque, out _);

    /// <summary>virFreeCallback: <c>void (*)(void *opaque)</c>.</summary>
    public static IntPtr FreeOpaquePointer
    {
        get
        {
            delegate* unmanaged[Cdecl]<IntPtr, void> cb = &OnFreeOpaque;
            return (IntPtr)cb;
        }
    }

    /// <summary>virConnectCloseFunc: <c>void (*)(virConnectPtr conn, int reason, void *opaque)</c>.</summary>
    public static IntPtr ClosePointer
    {
        get
        {
            delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr, void> cb = &OnClose;
            return (IntPtr)cb;
        }
    }

    [UnmanagedCallersOnly(CallConvs = new[] { typeof(CallConvCdecl) })]
    private static void OnFreeOpaque(IntPtr opaque)
    {
        try
        {
            if (Free(opaque)) Interlocked.Increment(ref _freedByLibvirt);
        }
        catch (Exception)
        {
            // never unwind into libvirt
        }
    }

    [UnmanagedCallersOnly(CallConvs = new[] { typeof(CallConvCdecl) })]
    private static void OnClose(IntPtr conn, int reason, IntPtr opaque)
    {
        try
        {
            if (Target(opaque) is LibvirtConnection.PooledConnection connection)
            {
                connection.OnClosed(reason);
            }
        }
        catch (Exception)
        {
            // An exception must never unwind into libvirt's event loop.
        }
    }
}
