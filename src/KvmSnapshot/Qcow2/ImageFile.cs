using System;
using System.IO;
using System.Runtime.InteropServices;
using KvmSnapshot.Errors;
using KvmSnapshot.Linux;
using Microsoft.Win32.SafeHandles;

namespace KvmSnapshot.Qcow2;

/// <summary>
/// Opens an image file for reading without locking it and without blocking. FileStream's own open cannot do
/// both: it takes a shared flock (which an exclusive holder turns into a failure) and a plain open(2) of a FIFO
/// waits for a writer forever, which would hang a scan of a directory that happens to contain one. open(2)
/// with O_NONBLOCK returns at once for a FIFO and changes nothing for regular files and block devices.
/// </summary>
internal static partial class ImageFile
{
    /// <summary>
    /// A seekable read-only stream over the image, or a KvmSnapshotException naming the path
    /// (DiskImageNotFound, DiskImageIsDirectory, DiskImageAccessDenied, DiskImageNotQcow2 for FIFOs and
    /// sockets, InvalidImageName, DiskImageReadFailed).
    /// </summary>
    public static FileStream OpenForRead(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0 || path.Contains('\0', StringComparison.Ordinal))
        {
            throw new KvmSnapshotException(ErrorIds.InvalidImageName, KvmErrorKind.InvalidArgument, path,
                path.Length == 0 ? "The image path is empty." : $"The image path '{path}' contains a NUL character.");
        }
        if (Directory.Exists(path))
        {
            throw IsDirectory(path);
        }

        var fd = LibC.Open(path, LibC.O_RDONLY | LibC.O_NONBLOCK | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            throw OpenFailed(path, Marshal.GetLastPInvokeError());
        }
        var handle = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
        FileStream stream;
        try
        {
            stream = new FileStream(handle, FileAccess.Read, bufferSize: 4096);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            handle.Dispose();
            // Raced with the path becoming a directory, or a handle type FileStream refuses.
            if (Directory.Exists(path))
            {
                throw IsDirectory(path);
            }
            throw new KvmSnapshotException(ErrorIds.DiskImageReadFailed, KvmErrorKind.ReadError, path, $"Cannot read '{path}': {ex.Message}", ex);
        }
        if (!stream.CanSeek)
        {
            stream.Dispose();
            throw Qcow2Errors.NotQcow2(path, "it is a pipe, socket or character device, not an image file");
        }
        return stream;
    }

    /// <summary>
    /// The stream's length. Block devices (images on LVM) report 0 from fstat, so fall back to seeking to the end.
    /// </summary>
    public static long LengthOf(Stream stream)
    {
        var length = stream.Length;
        if (length == 0)
        {
            length = stream.Seek(0, SeekOrigin.End);
            stream.Position = 0;
        }
        return length;
    }

    private static KvmSnapshotException IsDirectory(string path) =>
        new(ErrorIds.DiskImageIsDirectory, KvmErrorKind.InvalidArgument, path, $"'{path}' is a directory, not a disk image.");

    private static KvmSnapshotException OpenFailed(string path, int errno)
    {
        var reason = Marshal.GetPInvokeErrorMessage(errno);
        return errno switch
        {
            LibC.ENOENT or LibC.ENOTDIR => new KvmSnapshotException(ErrorIds.DiskImageNotFound, KvmErrorKind.ObjectNotFound, path, $"The disk image '{path}' does not exist."),
            LibC.ELOOP => new KvmSnapshotException(ErrorIds.DiskImageNotFound, KvmErrorKind.ObjectNotFound, path, $"The disk image '{path}' cannot be found: {reason} (a symbolic link loop)."),
            LibC.EISDIR => IsDirectory(path),
            LibC.EACCES or LibC.EPERM => new KvmSnapshotException(ErrorIds.DiskImageAccessDenied, KvmErrorKind.PermissionDenied, path, $"Permission denied reading '{path}': {reason}."),
            LibC.ENAMETOOLONG => new KvmSnapshotException(ErrorIds.InvalidImageName, KvmErrorKind.InvalidArgument, path, $"The image path '{path}' is too long: {reason}."),
            _ => new KvmSnapshotException(ErrorIds.DiskImageReadFailed, KvmErrorKind.ReadError, path, $"Cannot open '{path}': {reason} (errno {errno})."),
        };
    }
}
