using System;
using System.Runtime.InteropServices;

namespace KvmSnapshot.Libvirt.Native;

/// <summary>struct _virDomainBlockJobInfo: <c>int type; unsigned long bandwidth; unsigned long long cur, end;</c></summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BlockJobInfo
{
    public int Type;          // virDomainBlockJobType
    public CULong Bandwidth;  // unsigned long: 64-bit on Linux x64
    public ulong Cur;         // virDomainBlockJobCursor (unsigned long long)
    public ulong End;
}

internal static unsafe partial class Virt
{
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int virDomainBlockCommit(DomainHandle dom, string disk, string? @base, string? top, CULong bandwidth, DomainBlockCommitFlags flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int virDomainBlockRebase(DomainHandle dom, string disk, string? @base, CULong bandwidth, DomainBlockRebaseFlags flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int virDomainBlockPull(DomainHandle dom, string disk, CULong bandwidth, DomainBlockPullFlags flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int virDomainGetBlockJobInfo(DomainHandle dom, string disk, out BlockJobInfo info, DomainBlockJobInfoFlags flags);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int virDomainBlockJobAbort(DomainHandle dom, string disk, DomainBlockJobAbortFlags flags);

    public static void DomainBlockCommit(DomainHandle dom, string disk, string? @base, string? top, ulong bandwidth, DomainBlockCommitFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainBlockCommit");
        if (virDomainBlockCommit(dom, disk, @base, top, new CULong((nuint)bandwidth), flags) < 0) throw Fail(LibvirtCallArea.BlockJob, target);
    }

    public static void DomainBlockRebase(DomainHandle dom, string disk, string? @base, ulong bandwidth, DomainBlockRebaseFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainBlockRebase");
        if (virDomainBlockRebase(dom, disk, @base, new CULong((nuint)bandwidth), flags) < 0) throw Fail(LibvirtCallArea.BlockJob, target);
    }

    public static void DomainBlockPull(DomainHandle dom, string disk, ulong bandwidth, DomainBlockPullFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainBlockPull");
        if (virDomainBlockPull(dom, disk, new CULong((nuint)bandwidth), flags) < 0) throw Fail(LibvirtCallArea.BlockJob, target);
    }

    /// <summary>The job on <paramref name="disk"/>, or null when none runs (libvirt returns 0).</summary>
    public static BlockJobInfo? DomainGetBlockJobInfo(DomainHandle dom, string disk, object? target)
    {
        LibvirtLibrary.Require("virDomainGetBlockJobInfo");
        var r = virDomainGetBlockJobInfo(dom, disk, out var info, DomainBlockJobInfoFlags.BandwidthBytes);
        if (r < 0) throw Fail(LibvirtCallArea.BlockJob, target);
        return r == 0 ? null : info;
    }

    public static void DomainBlockJobAbort(DomainHandle dom, string disk, DomainBlockJobAbortFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainBlockJobAbort");
        if (virDomainBlockJobAbort(dom, disk, flags) < 0) throw Fail(LibvirtCallArea.BlockJob, target);
    }
}
