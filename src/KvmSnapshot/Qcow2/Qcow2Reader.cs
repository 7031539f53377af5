using System;
using System.Buffers.Binary;
using System.IO;
using KvmSnapshot.Errors;

namespace KvmSnapshot.Qcow2;

/// <summary>
/// Reads a qcow2 header, its extensions and snapshot table natively (no subprocess). Every offset and length
/// is bounds-checked against the file: a malformed or truncated file gives KvmSnapshotException
/// (DiskImageMalformed / DiskImageNotQcow2 / DiskImageUnsupportedFeature / DiskImageNotFound), never a crash,
/// hang or huge allocation.
/// </summary>
internal static class Qcow2Reader
{
    /// <summary>True when the file starts with the qcow2 magic. False for a missing or short file.</summary>
    /// <remarks>Never throws for a bad path, a directory, a FIFO or an unreadable file: those are not qcow2.</remarks>
    public static bool IsQcow2(string path)
    {
        try
        {
            using var stream = ImageFile.OpenForRead(path);
            Span<byte> magic = stackalloc byte[4];
            return stream.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false) == magic.Length
                && BinaryPrimitives.ReadUInt32BigEndian(magic) == Qcow2Layout.Magic;
        }
        catch (Exception ex) when (ex is KvmSnapshotException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return false;
        }
    }

    /// <summary>
    /// Opens the file read-only without taking a lock (so images of running VMs can be read; qemu's own locks
    /// are untouched) and reads it. Errors: DiskImageNotFound, DiskImageIsDirectory, DiskImageAccessDenied,
    /// DiskImageNotQcow2, DiskImageMalformed, DiskImageUnsupportedFeature, DiskImageReadFailed, InvalidImageName.
    /// </summary>
    public static Qcow2Image Read(string path, bool includeSnapshots = true)
    {
        using var stream = ImageFile.OpenForRead(path);
        return Read(stream, path, includeSnapshots);
    }

    /// <summary>
    /// Reads from a seekable stream; <paramref name="path"/> is only used in messages and as the error target.
    /// The stream is left open.
    /// </summary>
    public static Qcow2Image Read(Stream stream, string path, bool includeSnapshots = true)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(path);
        if (!stream.CanRead || !stream.CanSeek)
        {
            throw new ArgumentException("The qcow2 reader needs a readable, seekable stream.", nameof(stream));
        }

        try
        {
            var file = new BoundedImageReader(stream, path, ImageFile.LengthOf(stream));
            var metadata = Qcow2HeaderReader.Read(file);
            var snapshots = includeSnapshots
                ? Qcow2SnapshotTableReader.Read(file, metadata.Header)
                : Array.Empty<Qcow2SnapshotEntry>();
            return new Qcow2Image
            {
                Path = path,
                Header = metadata.Header,
                BackingFile = metadata.BackingFile,
                BackingFormat = metadata.BackingFormat,
                ExternalDataFile = metadata.ExternalDataFile,
                FeatureNames = metadata.FeatureNames,
                Snapshots = snapshots,
            };
        }
        catch (IOException ex)
        {
            // EIO from a failing disk, a vanished NFS server: the image may be fine, the read was not.
            throw new KvmSnapshotException(ErrorIds.DiskImageReadFailed, KvmErrorKind.ReadError, path, $"Cannot read '{path}': {ex.Message}", ex);
        }
    }
}
