using System;
using System.IO;
using KvmSnapshot.Linux;
using System.Runtime.InteropServices;

namespace KvmSnapshot.Errors;

/// <summary>
/// Turns an exception the engine did not mean to throw into a <see cref="KvmSnapshotException"/>, so a cmdlet
/// reports it as an ErrorRecord with a stable ErrorId (and the original message and exception kept) instead of
/// letting it escape raw. The cmdlet base leaves PowerShell's own exceptions (pipeline stopped, -ErrorAction Stop) alone.
/// </summary>
internal static class UnexpectedFailure
{
    public static bool Applies(Exception e)
        => e is not (KvmSnapshotException or OutOfMemoryException);

    public static KvmSnapshotException Wrap(Exception e) => e switch
    {
        // A SafeHandle closed under a call: a libvirt connection or object that went away while in use.
        ObjectDisposedException => new KvmSnapshotException(ErrorIds.ConnectionFailed, KvmErrorKind.ConnectionError, e.Source,
            $"A libvirt connection or object was closed while it was in use: {e.Message}", e)
        {
            RecommendedAction = "Run the command again; a new connection is opened.",
        },
        // A fault inside a P/Invoke (libvirt or libc); Win32Exception, also an ExternalException, is a failed process start.
        SEHException or MarshalDirectiveException or DllNotFoundException or EntryPointNotFoundException
            => new KvmSnapshotException(ErrorIds.LibvirtError, KvmErrorKind.NotSpecified, e.Source, $"A native call failed: {e.Message}", e),
        // .NET on Linux puts the errno in HResult: 28 is ENOSPC (a file the module writes itself).
        IOException { HResult: LibC.ENOSPC } => new KvmSnapshotException(ErrorIds.DiskFull, KvmErrorKind.ResourceUnavailable, null,
            $"The file system is full: {e.Message}", e),
        // A file the engine had seen went away before it was opened (another session deleted a merged layer): a
        // missing image, typed as such, not an unexpected error.
        FileNotFoundException f => new KvmSnapshotException(ErrorIds.DiskImageNotFound, KvmErrorKind.ObjectNotFound, f.FileName,
            $"A file went away while the command worked on it: {e.Message}", e),
        UnauthorizedAccessException => new KvmSnapshotException(ErrorIds.UnexpectedError, KvmErrorKind.PermissionDenied, null, e.Message, e),
        _ => new KvmSnapshotException(ErrorIds.UnexpectedError, KvmErrorKind.NotSpecified, null, $"{e.Message} ({e.GetType().FullName})", e),
    };
}
