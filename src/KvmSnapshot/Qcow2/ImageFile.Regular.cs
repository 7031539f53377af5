using System;
using System.Buffers;
using System.IO;
using System.Runtime.InteropServices;
using KvmSnapshot.Linux;
using Microsoft.Win32.SafeHandles;

namespace KvmSnapshot.Qcow2;

internal static partial class ImageFile
{
    /// <summary>How much <see cref="OpenRegularForRead"/> reads at once: a qcow2 header, its extensions and the backing
    /// file name fit in it for images qemu-img makes, and every format probe looks at less.</summary>
    internal const int RegularPrefix = 4096;

    /// <summary>
    /// <see cref="OpenForRead"/> for a path that statx has just shown to be a regular file (a store scan reads
    /// thousands): one open(2) and one statx of the open file instead of FileStream's checks and position queries, and
    /// the first <see cref="RegularPrefix"/> bytes read by one pread(2) and served from memory. Null when the file
    /// turned out not to be a regular file after all (it was replaced in between): use <see cref="OpenForRead"/>.
    /// Throws what <see cref="OpenForRead"/> throws when the open fails.
    /// </summary>
    public static Stream? OpenRegularForRead(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0 || path.Contains('\0', StringComparison.Ordinal)) return null; // OpenForRead names the problem
        var fd = LibC.Open(path, LibC.O_RDONLY | LibC.O_NONBLOCK | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            throw OpenFailed(path, Marshal.GetLastPInvokeError());
        }
        var handle = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
        try
        {
            if (LibC.Statx(fd, string.Empty, LibC.AtEmptyPath, StatxMask.Type | StatxMask.Size, out var st) != 0
                || (st.Mask & (StatxMask.Type | StatxMask.Size)) != (StatxMask.Type | StatxMask.Size)
                || LibC.FileType(st.Mode) != LibC.S_IFREG)
            {
                handle.Dispose();
                return null;
            }
            return new RegularFileReader(handle, (long)st.Size);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A read-only, seekable stream over an open regular file: positional reads (pread), the first
    /// <see cref="RegularPrefix"/> bytes read on the first read and kept. Its length is the one seen at open, like
    /// the length a header reader bounds itself by.
    /// </summary>
    private sealed class RegularFileReader : Stream
    {
        private readonly SafeFileHandle _handle;
        private readonly long _length;
        private byte[]? _prefix;
        private int _prefixCount = -1;
        private long _position;

        public RegularFileReader(SafeFileHandle handle, long length)
        {
            _handle = handle;
            _length = length;
        }

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => _length;

        public override long Position
        {
            get => _position;
            set
            {
                ArgumentOutOfRangeException.ThrowIfNegative(value);
                _position = value;
            }
        }

        public override int Read(Span<byte> buffer)
        {
            if (buffer.IsEmpty) return 0;
            if (_prefixCount < 0)
            {
                _prefix = ArrayPool<byte>.Shared.Rent(RegularPrefix);
                _prefixCount = ReadAt(_prefix.AsSpan(0, RegularPrefix), 0);
            }
            int read;
            if (_position < _prefixCount)
            {
                read = Math.Min(buffer.Length, _prefixCount - (int)_position);
                _prefix.AsSpan((int)_position, read).CopyTo(buffer);
            }
            else if (_prefixCount < RegularPrefix)
            {
                read = 0; // the file ended within the prefix
            }
            else
            {
                read = ReadAt(buffer, _position);
            }
            _position += read;
            return read;
        }

        /// <summary>pread(2) itself: RandomAccess.Read would first ask the kernel whether a handle it did not open can seek.</summary>
        private unsafe int ReadAt(Span<byte> buffer, long offset)
        {
            fixed (byte* pointer = buffer)
            {
                while (true)
                {
                    var read = LibC.PRead(_handle, pointer, buffer.Length, offset);
                    if (read >= 0) return (int)read;
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == LibC.EINTR) continue;
                    // As FileStream reports a failed read (EIO from a failing disk or a vanished NFS server).
                    throw new IOException($"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
                }
            }
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override long Seek(long offset, SeekOrigin origin)
        {
            Position = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                SeekOrigin.End => _length + offset,
                _ => throw new ArgumentOutOfRangeException(nameof(origin)),
            };
            return _position;
        }

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _handle.Dispose();
                if (_prefix is { } prefix)
                {
                    _prefix = null;
                    ArrayPool<byte>.Shared.Return(prefix);
                }
            }
            base.Dispose(disposing);
        }
    }
}
