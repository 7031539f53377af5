using System;
using System.Runtime.InteropServices;

namespace KvmSnapshot.Libvirt.Native;

/// <summary>virDomainBackupBegin flags (virDomainBackupBeginFlags).</summary>
[Flags]
internal enum DomainBackupBeginFlags : uint
{
    None = 0,
    /// <summary>VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL: the push targets exist (we create them, with their backing file).</summary>
    ReuseExternal = 1 << 0,
}

/// <summary>virDomainCheckpointGetXMLDesc flags (virDomainCheckpointXMLFlags).</summary>
[Flags]
internal enum DomainCheckpointXmlFlags : uint
{
    None = 0,
    /// <summary>VIR_DOMAIN_CHECKPOINT_XML_SECURE</summary>
    Secure = 1 << 0,
    /// <summary>VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN</summary>
    NoDomain = 1 << 1,
    /// <summary>VIR_DOMAIN_CHECKPOINT_XML_SIZE: each disk's size attribute, the bytes changed since the checkpoint.</summary>
    Size = 1 << 2,
}

/// <summary>virDomainCheckpointDelete flags (virDomainCheckpointDeleteFlags).</summary>
[Flags]
internal enum DomainCheckpointDeleteFlags : uint
{
    None = 0,
    /// <summary>VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN</summary>
    Children = 1 << 0,
    /// <summary>VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY</summary>
    MetadataOnly = 1 << 1,
}

/// <summary>virDomainGetJobStats flags (virDomainGetJobStatsFlags).</summary>
[Flags]
internal enum DomainJobStatsFlags : uint
{
    None = 0,
    /// <summary>VIR_DOMAIN_JOB_STATS_COMPLETED: the statistics of the job that finished last.</summary>
    Completed = 1 << 0,
}

/// <summary>virDomainJobType.</summary>
internal enum DomainJobType
{
    /// <summary>VIR_DOMAIN_JOB_NONE</summary>
    None = 0,
    /// <summary>VIR_DOMAIN_JOB_BOUNDED</summary>
    Bounded = 1,
    /// <summary>VIR_DOMAIN_JOB_UNBOUNDED</summary>
    Unbounded = 2,
    /// <summary>VIR_DOMAIN_JOB_COMPLETED</summary>
    Completed = 3,
    /// <summary>VIR_DOMAIN_JOB_FAILED</summary>
    Failed = 4,
    /// <summary>VIR_DOMAIN_JOB_CANCELLED</summary>
    Cancelled = 5,
}

/// <summary>virDomainJobInfo (every field after type is unsigned long long).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct DomainJobInfo
{
    public int Type;
    public ulong TimeElapsed;
    public ulong TimeRemaining;
    public ulong DataTotal;
    public ulong DataProcessed;
    public ulong DataRemaining;
    public ulong MemTotal;
    public ulong MemProcessed;
    public ulong MemRemaining;
    public ulong FileTotal;
    public ulong FileProcessed;
    public ulong FileRemaining;
}

/// <summary>virDomainCheckpointPtr; released with virDomainCheckpointFree; keeps its domain alive.</summary>
internal sealed class DomainCheckpointHandle : ChildHandle
{
    protected override int Free(IntPtr raw) => Virt.RawDomainCheckpointFree(raw);
}

internal static unsafe partial class Virt
{
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial int virDomainBackupBegin(DomainHandle dom, string backupXml, string? checkpointXml, DomainBackupBeginFlags flags);
    [LibraryImport(Lib)] private static partial IntPtr virDomainBackupGetXMLDesc(DomainHandle dom, uint flags);
    [LibraryImport(Lib)] private static partial int virDomainGetJobInfo(DomainHandle dom, out DomainJobInfo info);
    [LibraryImport(Lib)] private static partial int virDomainGetJobStats(DomainHandle dom, out int type, out IntPtr parameters, out int nparams, DomainJobStatsFlags flags);
    [LibraryImport(Lib)] private static partial void virTypedParamsFree(IntPtr parameters, int nparams);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial DomainCheckpointHandle virDomainCheckpointCreateXML(DomainHandle dom, string xml, uint flags);
    [LibraryImport(Lib, EntryPoint = "virDomainCheckpointFree")] private static partial int virDomainCheckpointFreeRaw(IntPtr checkpoint);
    [LibraryImport(Lib)] private static partial IntPtr virDomainCheckpointGetName(DomainCheckpointHandle checkpoint);
    [LibraryImport(Lib)] private static partial IntPtr virDomainCheckpointGetXMLDesc(DomainCheckpointHandle checkpoint, DomainCheckpointXmlFlags flags);
    [LibraryImport(Lib)] private static partial int virDomainListAllCheckpoints(DomainHandle dom, out IntPtr checkpoints, uint flags);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial DomainCheckpointHandle virDomainCheckpointLookupByName(DomainHandle dom, string name, uint flags);
    [LibraryImport(Lib)] private static partial int virDomainCheckpointDelete(DomainCheckpointHandle checkpoint, DomainCheckpointDeleteFlags flags);

    internal static int RawDomainCheckpointFree(IntPtr checkpoint) => virDomainCheckpointFreeRaw(checkpoint);

    private static DomainCheckpointHandle Adopt(DomainCheckpointHandle checkpoint, DomainHandle parent, object? target)
    {
        if (checkpoint.IsInvalid)
        {
            checkpoint.Dispose();
            throw Fail(LibvirtCallArea.General, target);
        }
        checkpoint.SetParent(parent);
        return checkpoint;
    }

    /// <summary>virDomainBackupBegin: starts the backup job (and creates the checkpoint, when given) and returns.</summary>
    public static void DomainBackupBegin(DomainHandle dom, string backupXml, string? checkpointXml, DomainBackupBeginFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainBackupBegin");
        if (virDomainBackupBegin(dom, backupXml, checkpointXml, flags) < 0) throw Fail(LibvirtCallArea.General, target);
    }

    /// <summary>virDomainBackupGetXMLDesc (caller string): the running backup job's description.</summary>
    public static string DomainBackupGetXmlDesc(DomainHandle dom, object? target)
    {
        LibvirtLibrary.Require("virDomainBackupGetXMLDesc");
        return TakeString(virDomainBackupGetXMLDesc(dom, 0)) ?? throw Fail(LibvirtCallArea.General, target);
    }

    /// <summary>virDomainGetJobInfo: the domain's current job (type None when none runs).</summary>
    public static DomainJobInfo DomainGetJobInfo(DomainHandle dom, object? target)
    {
        LibvirtLibrary.Require("virDomainGetJobInfo");
        if (virDomainGetJobInfo(dom, out var info) < 0) throw Fail(LibvirtCallArea.General, target);
        return info;
    }

    /// <summary>
    /// virDomainGetJobStats: only the job type is read; the typed parameter array (caller's) is freed with
    /// virTypedParamsFree.
    /// </summary>
    public static DomainJobType DomainGetJobType(DomainHandle dom, DomainJobStatsFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainGetJobStats");
        var parameters = IntPtr.Zero;
        var count = 0;
        try
        {
            if (virDomainGetJobStats(dom, out var type, out parameters, out count, flags) < 0) throw Fail(LibvirtCallArea.General, target);
            return (DomainJobType)type;
        }
        finally
        {
            if (parameters != IntPtr.Zero) virTypedParamsFree(parameters, count);
        }
    }

    public static DomainCheckpointHandle DomainCheckpointCreateXml(DomainHandle dom, string xml, object? target)
    {
        LibvirtLibrary.Require("virDomainCheckpointCreateXML");
        return Adopt(virDomainCheckpointCreateXML(dom, xml, 0), dom, target);
    }

    /// <summary>virDomainCheckpointGetName: the string belongs to the checkpoint object (not freed).</summary>
    public static string DomainCheckpointGetName(DomainCheckpointHandle checkpoint)
    {
        LibvirtLibrary.Require("virDomainCheckpointGetName");
        return CopyString(virDomainCheckpointGetName(checkpoint)) ?? throw Fail(LibvirtCallArea.General, null);
    }

    /// <summary>virDomainCheckpointGetXMLDesc (caller string).</summary>
    public static string DomainCheckpointGetXmlDesc(DomainCheckpointHandle checkpoint, DomainCheckpointXmlFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainCheckpointGetXMLDesc");
        return TakeString(virDomainCheckpointGetXMLDesc(checkpoint, flags)) ?? throw Fail(LibvirtCallArea.General, target);
    }

    /// <summary>virDomainListAllCheckpoints: each element becomes a handle, then the array is freed with free(3).</summary>
    public static DomainCheckpointHandle[] DomainListAllCheckpoints(DomainHandle dom, object? target)
    {
        LibvirtLibrary.Require("virDomainListAllCheckpoints");
        var count = virDomainListAllCheckpoints(dom, out var array, 0);
        if (count < 0) throw Fail(LibvirtCallArea.General, target);
        return AdoptAll(array, count, raw =>
        {
            var handle = new DomainCheckpointHandle();
            handle.Adopt(raw, dom);
            return handle;
        }, RawDomainCheckpointFree, free);
    }

    public static DomainCheckpointHandle DomainCheckpointLookupByName(DomainHandle dom, string name, object? target)
    {
        LibvirtLibrary.Require("virDomainCheckpointLookupByName");
        return Adopt(virDomainCheckpointLookupByName(dom, name, 0), dom, target);
    }

    public static void DomainCheckpointDelete(DomainCheckpointHandle checkpoint, DomainCheckpointDeleteFlags flags, object? target)
    {
        LibvirtLibrary.Require("virDomainCheckpointDelete");
        if (virDomainCheckpointDelete(checkpoint, flags) < 0) throw Fail(LibvirtCallArea.General, target);
    }
}
