using System;
using System.Runtime.InteropServices;

namespace KvmSnapshot.Libvirt.Native;

/// <summary>virConnectPtr; released with virConnectClose.</summary>
internal sealed class ConnectHandle : SafeHandle
{
    public ConnectHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>True once virConnectClose ran (later than Dispose while child handles still hold the connection).</summary>
    internal bool NativeReleased { get; private set; }

    protected override bool ReleaseHandle()
    {
        NativeReleased = true;
        return Virt.RawConnectClose(handle) >= 0;
    }
}

/// <summary>
/// A handle whose object was obtained through a parent handle. The parent's SafeHandle is kept alive (DangerousAddRef)
/// until this one is released, so a pooled connection cannot be closed under a domain that is still in use.
/// </summary>
internal abstract class ChildHandle : SafeHandle
{
    private SafeHandle? _parent;

    protected ChildHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>Called right after the native call returned this handle (and only when it is valid).</summary>
    public void SetParent(SafeHandle parent)
    {
        var added = false;
        parent.DangerousAddRef(ref added);
        if (added) _parent = parent;
    }

    /// <summary>Adopts a raw pointer the caller owns (an element of a virConnectListAll*/virDomainListAll* array).</summary>
    public void Adopt(IntPtr raw, SafeHandle parent)
    {
        // The parent first: if it is already closed this throws before the handle owns raw, so the caller still
        // owns it and frees it exactly once.
        SetParent(parent);
        SetHandle(raw);
    }

    protected sealed override bool ReleaseHandle()
    {
        var freed = Free(handle) >= 0;
        _parent?.DangerousRelease();
        _parent = null;
        return freed;
    }

    protected abstract int Free(IntPtr raw);
}

/// <summary>virDomainPtr; released with virDomainFree; keeps its connection alive.</summary>
internal sealed class DomainHandle : ChildHandle
{
    protected override int Free(IntPtr raw) => Virt.RawDomainFree(raw);
}

/// <summary>virDomainSnapshotPtr; released with virDomainSnapshotFree; keeps its domain alive.</summary>
internal sealed class DomainSnapshotHandle : ChildHandle
{
    protected override int Free(IntPtr raw) => Virt.RawDomainSnapshotFree(raw);
}
