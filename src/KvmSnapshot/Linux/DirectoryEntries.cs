using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

namespace KvmSnapshot.Linux;

/// <summary>
/// The entries of one directory as readdir(3) gives them, sorted by kind from the entry's own type (d_type): a store
/// scan lists thousands of files, and .NET's FileSystemInfo enumeration asks lstat(2) about every one of them. Only
/// symbolic links (is the target a directory?) and entries of file systems that report no type (DT_UNKNOWN) cost a
/// statx each.
/// </summary>
internal static class DirectoryEntries
{
    private const byte DtUnknown = 0;
    private const byte DtDir = 4;
    private const byte DtReg = 8;
    private const byte DtLnk = 10;

    // struct dirent on 64-bit Linux (glibc and musl): d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
    private const int RecordLengthOffset = 16;
    private const int TypeOffset = 18;
    private const int NameOffset = 19;

    /// <summary>
    /// Adds the full paths of <paramref name="directory"/>'s entries to <paramref name="files"/> (anything that is not
    /// a directory or a symbolic link: regular files, and FIFOs, sockets and devices, which the header read turns
    /// away), <paramref name="links"/> (symbolic links to anything but a directory, dangling ones included) and
    /// <paramref name="directories"/>; symbolic links to directories are left out. Returns the number of entries seen.
    /// Throws DirectoryNotFoundException when the directory is gone, UnauthorizedAccessException or IOException when
    /// it cannot be listed.
    /// </summary>
    public static unsafe int Read(string directory, List<string> files, List<string> links, List<string> directories)
    {
        var dir = LibC.OpenDir(directory);
        if (dir == IntPtr.Zero)
        {
            var errno = Marshal.GetLastPInvokeError();
            var reason = Marshal.GetPInvokeErrorMessage(errno);
            throw errno switch
            {
                LibC.ENOENT or LibC.ENOTDIR => new DirectoryNotFoundException($"'{directory}' does not exist: {reason}"),
                LibC.EACCES or LibC.EPERM => new UnauthorizedAccessException($"Access to the path '{directory}' is denied: {reason}."),
                _ => new IOException($"Cannot list '{directory}': {reason} (errno {errno})"),
            };
        }
        var prefix = directory.EndsWith('/') ? directory : directory + "/";
        var count = 0;
        try
        {
            while (true)
            {
                var entry = LibC.ReadDir(dir);
                if (entry == IntPtr.Zero)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno != 0) throw new IOException($"Cannot list '{directory}': {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
                    return count;
                }
                // The name ends at its NUL, within the record (d_reclen bytes).
                var name = new ReadOnlySpan<byte>((byte*)entry + NameOffset, *(ushort*)((byte*)entry + RecordLengthOffset) - NameOffset);
                var end = name.IndexOf((byte)0);
                if (end >= 0) name = name[..end];
                if (name.SequenceEqual("."u8) || name.SequenceEqual(".."u8)) continue;
                count++;
                var path = prefix + Encoding.UTF8.GetString(name);
                var type = *((byte*)entry + TypeOffset);
                if (type == DtUnknown)
                {
                    type = LibC.Statx(LibC.AtFdCwd, path, LibC.AtSymlinkNoFollow, StatxMask.Type, out var own) == 0 && (own.Mask & StatxMask.Type) != 0
                        ? LibC.FileType(own.Mode) switch { LibC.S_IFDIR => DtDir, LibC.S_IFLNK => DtLnk, _ => DtReg }
                        : DtReg;
                }
                if (type == DtDir)
                {
                    directories.Add(path);
                }
                else if (type == DtLnk)
                {
                    var toDirectory = LibC.Statx(LibC.AtFdCwd, path, 0, StatxMask.Type, out var target) == 0
                        && (target.Mask & StatxMask.Type) != 0 && LibC.FileType(target.Mode) == LibC.S_IFDIR;
                    if (!toDirectory) links.Add(path);
                }
                else
                {
                    files.Add(path);
                }
            }
        }
        finally
        {
            LibC.CloseDir(dir);
        }
    }
}
