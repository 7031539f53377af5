using System;
using KvmSnapshot.Errors;

namespace KvmSnapshot.Libvirt.Native;

/// <summary>What kind of call failed; the same virErrorNumber can mean different things to a user per area.</summary>
internal enum LibvirtCallArea
{
    General,
    /// <summary>Opening or keeping a connection: any failure there is a connection failure.</summary>
    Connection,
    Snapshot,
    BlockJob,
}

/// <summary>The libvirt error copied right after a failing call (virGetLastError): code, reporting module, text.</summary>
internal readonly record struct LibvirtErrorInfo(int Code, int Domain, string Message)
{
    public static readonly LibvirtErrorInfo Unknown = new(0, 0, "libvirt reported a failure without an error message");
}

/// <summary>virErrorNumber values the table names (libvirt 9.0's virterror.h).</summary>
internal static class VirErrorNumber
{
    public const int InternalError = 1;          // VIR_ERR_INTERNAL_ERROR
    public const int NoSupport = 3;              // VIR_ERR_NO_SUPPORT
    public const int UnknownHost = 4;            // VIR_ERR_UNKNOWN_HOST
    public const int NoConnect = 5;              // VIR_ERR_NO_CONNECT
    public const int InvalidConn = 6;            // VIR_ERR_INVALID_CONN
    public const int InvalidDomain = 7;          // VIR_ERR_INVALID_DOMAIN
    public const int InvalidArg = 8;             // VIR_ERR_INVALID_ARG
    public const int OperationFailed = 9;        // VIR_ERR_OPERATION_FAILED
    public const int XmlError = 27;              // VIR_ERR_XML_ERROR
    public const int DomainExists = 28;          // VIR_ERR_DOM_EXIST
    public const int OperationDenied = 29;       // VIR_ERR_OPERATION_DENIED
    public const int XmlDetail = 35;             // VIR_ERR_XML_DETAIL
    public const int SystemError = 38;           // VIR_ERR_SYSTEM_ERROR
    public const int Rpc = 39;                   // VIR_ERR_RPC
    public const int GnutlsError = 40;           // VIR_ERR_GNUTLS_ERROR
    public const int NoDomain = 42;              // VIR_ERR_NO_DOMAIN
    public const int AuthFailed = 45;            // VIR_ERR_AUTH_FAILED
    public const int OperationInvalid = 55;      // VIR_ERR_OPERATION_INVALID
    public const int ConfigUnsupported = 67;     // VIR_ERR_CONFIG_UNSUPPORTED
    public const int OperationTimeout = 68;      // VIR_ERR_OPERATION_TIMEOUT
    public const int InvalidDomainSnapshot = 71; // VIR_ERR_INVALID_DOMAIN_SNAPSHOT
    public const int NoDomainSnapshot = 72;      // VIR_ERR_NO_DOMAIN_SNAPSHOT
    public const int NoStoragePool = 49;         // VIR_ERR_NO_STORAGE_POOL
    public const int NoStorageVol = 50;          // VIR_ERR_NO_STORAGE_VOL
    public const int ArgumentUnsupported = 74;   // VIR_ERR_ARGUMENT_UNSUPPORTED
    public const int SnapshotRevertRisky = 77;   // VIR_ERR_SNAPSHOT_REVERT_RISKY
    public const int OperationAborted = 78;      // VIR_ERR_OPERATION_ABORTED
    public const int AuthCancelled = 79;         // VIR_ERR_AUTH_CANCELLED
    public const int BlockCopyActive = 83;       // VIR_ERR_BLOCK_COPY_ACTIVE
    public const int OperationUnsupported = 84;  // VIR_ERR_OPERATION_UNSUPPORTED
    public const int Ssh = 85;                   // VIR_ERR_SSH
    public const int ResourceBusy = 87;          // VIR_ERR_RESOURCE_BUSY
    public const int AccessDenied = 88;          // VIR_ERR_ACCESS_DENIED
    public const int AuthUnavailable = 94;       // VIR_ERR_AUTH_UNAVAILABLE
    public const int NoServer = 95;              // VIR_ERR_NO_SERVER
    public const int LibSsh = 98;                // VIR_ERR_LIBSSH
    public const int DeviceMissing = 99;         // VIR_ERR_DEVICE_MISSING
}

/// <summary>
/// The one table from libvirt's virErrorNumber (and the area of the failing call) to the module's ErrorId and
/// error kind (reported as the PowerShell KvmErrorKind of the same name). libvirt's message is always kept in the exception text.
/// </summary>
internal static class LibvirtErrorTable
{
    public static (string ErrorId, KvmErrorKind Category) Map(int code, LibvirtCallArea area) => (code, area) switch
    {
        // Whatever went wrong while opening a connection, the user's remedy is the URI, the daemon or the network.
        (_, LibvirtCallArea.Connection) => (ErrorIds.ConnectionFailed, KvmErrorKind.ConnectionError),
        (VirErrorNumber.NoConnect or VirErrorNumber.InvalidConn or VirErrorNumber.Rpc or VirErrorNumber.UnknownHost
            or VirErrorNumber.GnutlsError or VirErrorNumber.Ssh or VirErrorNumber.LibSsh or VirErrorNumber.NoServer, _)
            => (ErrorIds.ConnectionFailed, KvmErrorKind.ConnectionError),
        (VirErrorNumber.AuthFailed or VirErrorNumber.AuthCancelled or VirErrorNumber.AuthUnavailable, _)
            => (ErrorIds.ConnectionFailed, KvmErrorKind.AuthenticationError),

        (VirErrorNumber.NoDomain, _) => (ErrorIds.DomainNotFound, KvmErrorKind.ObjectNotFound),
        (VirErrorNumber.NoDomainSnapshot, _) => (ErrorIds.SnapshotNotFound, KvmErrorKind.ObjectNotFound),
        (VirErrorNumber.NoStoragePool, _) => (ErrorIds.StoragePoolNotFound, KvmErrorKind.ObjectNotFound),
        (VirErrorNumber.NoStorageVol, _) => (ErrorIds.StorageVolumeNotFound, KvmErrorKind.ObjectNotFound),
        (VirErrorNumber.SnapshotRevertRisky, _) => (ErrorIds.SnapshotRevertNeedsForce, KvmErrorKind.InvalidOperation),
        (VirErrorNumber.OperationInvalid, _) => (ErrorIds.DomainStateInvalid, KvmErrorKind.InvalidOperation),

        // "disk 'vda' not ready for pivot yet" and "disk 'vda' already in active block job" both use this code.
        (VirErrorNumber.BlockCopyActive, _) => (ErrorIds.BlockJobNotReady, KvmErrorKind.ResourceBusy),
        (VirErrorNumber.OperationAborted, LibvirtCallArea.BlockJob) => (ErrorIds.BlockJobAborted, KvmErrorKind.OperationStopped),
        (VirErrorNumber.OperationAborted, _) => (ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped),

        // libvirt says "unsupported" in four ways; for snapshots the user needs to know it is the snapshot
        // operation (external revert/delete, raw disks) that this libvirt cannot do.
        (VirErrorNumber.NoSupport or VirErrorNumber.OperationUnsupported or VirErrorNumber.ConfigUnsupported
            or VirErrorNumber.ArgumentUnsupported, LibvirtCallArea.Snapshot)
            => (ErrorIds.SnapshotOperationUnsupported, KvmErrorKind.NotImplemented),
        (VirErrorNumber.NoSupport or VirErrorNumber.OperationUnsupported or VirErrorNumber.ConfigUnsupported
            or VirErrorNumber.ArgumentUnsupported, _)
            => (ErrorIds.LibvirtUnsupported, KvmErrorKind.NotImplemented),

        (VirErrorNumber.InvalidArg or VirErrorNumber.XmlError or VirErrorNumber.XmlDetail, _) => (ErrorIds.LibvirtError, KvmErrorKind.InvalidArgument),
        (VirErrorNumber.DomainExists, _) => (ErrorIds.LibvirtError, KvmErrorKind.ResourceExists),
        (VirErrorNumber.OperationDenied or VirErrorNumber.AccessDenied, _) => (ErrorIds.LibvirtError, KvmErrorKind.PermissionDenied),
        (VirErrorNumber.ResourceBusy, _) => (ErrorIds.LibvirtError, KvmErrorKind.ResourceBusy),
        (VirErrorNumber.OperationTimeout, _) => (ErrorIds.LibvirtError, KvmErrorKind.OperationTimeout),
        (VirErrorNumber.DeviceMissing, _) => (ErrorIds.DomainDiskNotFound, KvmErrorKind.ObjectNotFound),
        (VirErrorNumber.OperationFailed or VirErrorNumber.InternalError or VirErrorNumber.SystemError, LibvirtCallArea.BlockJob)
            => (ErrorIds.BlockJobFailed, KvmErrorKind.InvalidResult),
        _ => (ErrorIds.LibvirtError, KvmErrorKind.NotSpecified),
    };

    /// <summary>Builds the exception for a failed call from the error copied on the failing thread.</summary>
    public static LibvirtException ToException(LibvirtErrorInfo error, LibvirtCallArea area, object? target)
    {
        // ENOSPC reaches libvirt's callers only as text ("failed to format image: 'Could not write qcow2 header: No
        // space left on device'", "unable to write … No space left on device"), under several codes.
        var (id, category) = area != LibvirtCallArea.Connection && error.Message.Contains("No space left on device", StringComparison.Ordinal)
            ? (ErrorIds.DiskFull, KvmErrorKind.ResourceUnavailable)
            : Map(error.Code, area);
        var message = id switch
        {
            ErrorIds.SnapshotRevertNeedsForce => $"{error.Message}. Use -Force to revert anyway (libvirt considers this revert risky).",
            ErrorIds.ConnectionFailed when area == LibvirtCallArea.Connection => $"Cannot connect to libvirt at '{target}': {error.Message}",
            _ => error.Message,
        };
        return new LibvirtException(id, category, target, message, error.Code, error.Domain, error.Message)
        {
            RecommendedAction = id switch
            {
                ErrorIds.SnapshotRevertNeedsForce => "Repeat the command with -Force.",
                ErrorIds.ConnectionFailed => "Check that libvirtd runs and the URI (-ConnectionUri or $env:LIBVIRT_DEFAULT_URI) is right.",
                ErrorIds.DiskFull => "Free space on the file system named in the message, or write the new files to another one (-DiskSpec file=, -MemoryFile).",
                _ => null,
            },
        };
    }
}
