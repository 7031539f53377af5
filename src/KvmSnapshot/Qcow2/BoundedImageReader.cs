using System;
using System.IO;
using KvmSnapshot.Errors;

namespace KvmSnapshot.Qcow2;

/// <summary>
/// Positional reads from an image stream that check every offset and length against the file length before
/// touching the stream or allocating, so a header that lies about sizes can never make the reader allocate
/// more than the file holds or read past its end.
/// </summary>
internal sealed class BoundedImageReader
{
    private readonly Stream _stream;

    public BoundedImageReader(Stream stream, string path, long length)
    {
        _stream = stream;
        Path = path;
        Length = length;
    }

    public string Path { get; }

    /// <summary>The file length seen when reading started; every read is checked against it.</summary>
    public long Length { get; }

    /// <summary>True when [offset, offset + count) lies inside the file (overflow-safe).</summary>
    public bool Contains(ulong offset, ulong count) => offset <= (ulong)Length && count <= (ulong)Length - offset;

    /// <summary>Reads exactly count bytes at offset into a new array; what names the structure for the message.</summary>
    public byte[] ReadAt(ulong offset, long count, string what)
    {
        EnsureInside(offset, count, what);
        var buffer = new byte[count];
        ReadAt(offset, buffer, what);
        return buffer;
    }

    /// <summary>Fills destination from offset.</summary>
    public void ReadAt(ulong offset, Span<byte> destination, string what)
    {
        EnsureInside(offset, destination.Length, what);
        _stream.Position = (long)offset;
        try
        {
            _stream.ReadExactly(destination);
        }
        catch (EndOfStreamException)
        {
            // The file shrank after its length was taken (an image being rewritten by qemu-img).
            throw Malformed($"{what} at offset 0x{offset:x} could not be read: the file ended early (it changed while being read)");
        }
    }

    public void EnsureInside(ulong offset, long count, string what)
    {
        if (count < 0 || !Contains(offset, (ulong)count))
        {
            throw Malformed($"{what} at offset 0x{offset:x} ({count} bytes) lies past the end of the file ({Length} bytes); the image is truncated or damaged");
        }
    }

    public KvmSnapshotException Malformed(string detail) => Qcow2Errors.Malformed(Path, detail);
}

/// <summary>The exceptions the qcow2 reader throws; each names the path in its message and as its target.</summary>
internal static class Qcow2Errors
{
    public static KvmSnapshotException Malformed(string path, string detail) =>
        new(ErrorIds.DiskImageMalformed, KvmErrorKind.InvalidData, path, $"'{path}' is not a valid qcow2 image: {detail}.")
        {
            RecommendedAction = "Run 'qemu-img check' on the image; restore it from a backup if it is damaged.",
        };

    public static KvmSnapshotException NotQcow2(string path, string detail) =>
        new(ErrorIds.DiskImageNotQcow2, KvmErrorKind.InvalidData, path, $"'{path}' is not a qcow2 image: {detail}.");

    public static KvmSnapshotException Unsupported(string path, string detail) =>
        new(ErrorIds.DiskImageUnsupportedFeature, KvmErrorKind.NotImplemented, path, $"'{path}' uses a qcow2 feature this module cannot read: {detail}.");
}
