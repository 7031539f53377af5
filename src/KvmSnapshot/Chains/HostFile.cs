using System;
using System.IO;
using System.Runtime.InteropServices;
using KvmSnapshot.Linux;

namespace KvmSnapshot.Chains;

/// <summary>
/// Which file a path names, independent of the path's spelling (symlinks, "..", hard links): device and inode.
/// <see cref="FallbackPath"/> is set only when the identity could not be read (see <see cref="HostFileFacts.IdentityProblem"/>):
/// such a file is then compared by its full path, and a second name of it is not recognised.
/// A class, not a struct (issue 8): the dictionaries and sets keyed by it are then shared generic code that the
/// ReadyToRun image holds, instead of instantiations over a value type that the JIT compiles on every first call.
/// </summary>
internal sealed record FileIdentity(ulong Device, ulong Inode, string? FallbackPath)
{
    public bool IsByPath => FallbackPath is not null;

    public override string ToString() => FallbackPath ?? $"{Device}:{Inode}";
}

/// <summary>What <see cref="HostFile.Describe"/> found out about a file.</summary>
internal readonly record struct HostFileFacts(FileIdentity Identity, long? AllocatedBytes, string? IdentityProblem)
{
    /// <summary>Type, size and change times, when statx gave them all: what a cached read of the file is checked against.</summary>
    public FileStamp? Stamp { get; init; }
}

/// <summary>
/// What changes whenever a file's content or name binding changes: its type, size, and modify and change times in
/// nanoseconds (the change time cannot be set back by any user: utimes itself sets it to now).
/// </summary>
internal readonly record struct FileStamp(ushort Mode, ulong Size, long ModifyNs, long ChangeNs)
{
    public bool IsRegularFile => LibC.FileType(Mode) == LibC.S_IFREG;

    public bool IsDirectory => LibC.FileType(Mode) == LibC.S_IFDIR;
}

/// <summary>
/// statx(2) facts .NET does not expose: device/inode (to recognise one file under two names, which loop detection
/// and shared-base checks need) and allocated blocks (the "actual size" qemu-img shows for sparse images).
/// statx is used rather than stat because struct statx has one layout on every architecture.
/// When statx is missing (glibc before 2.28, kernel before 4.11, a seccomp filter) or fails for a file, the
/// identity degrades to the full path and <see cref="HostFileFacts.IdentityProblem"/> says why; callers with a
/// user to tell (<see cref="ImageCatalog"/>) turn that into a warning. It is never silent.
/// </summary>
internal static class HostFile
{

    private const StatxMask StampMask = StatxMask.Type | StatxMask.Size | StatxMask.ModifyTime | StatxMask.ChangeTime;

    private static string? _unsupported;

    /// <summary>Why no file identity can be read on this system at all; null when statx works.</summary>
    public static string? IdentityUnavailable => _unsupported;

    public static HostFileFacts Describe(string fullPath)
    {
        var problem = _unsupported;
        if (problem is null)
        {
            try
            {
                if (LibC.Statx(LibC.AtFdCwd, fullPath, 0, StampMask | StatxMask.Inode | StatxMask.Blocks, out var st) == 0)
                {
                    if ((st.Mask & StatxMask.Inode) != 0)
                    {
                        long? allocated = (st.Mask & StatxMask.Blocks) != 0 ? (long)st.Blocks * 512 : null;
                        FileStamp? stamp = (st.Mask & StampMask) == StampMask
                            ? new FileStamp(st.Mode, st.Size, st.ModifySeconds * 1_000_000_000 + st.ModifyNanoseconds, st.ChangeSeconds * 1_000_000_000 + st.ChangeNanoseconds)
                            : null;
                        return new HostFileFacts(new FileIdentity(st.Device, st.Inode, null), allocated, null) { Stamp = stamp };
                    }
                    problem = $"the file system of '{fullPath}' reports no inode number";
                }
                else
                {
                    var errno = Marshal.GetLastPInvokeError();
                    problem = $"statx('{fullPath}') failed: {Marshal.GetPInvokeErrorMessage(errno)}";
                    if (errno == LibC.ENOSYS) _unsupported = problem = $"this kernel has no statx system call";
                }
            }
            catch (EntryPointNotFoundException)
            {
                _unsupported = problem = "this C library has no statx (glibc 2.28 or later is needed)";
            }
            catch (DllNotFoundException e)
            {
                _unsupported = problem = $"the C library could not be loaded: {e.Message}";
            }
        }
        return new HostFileFacts(new FileIdentity(0, 0, Path.GetFullPath(fullPath)), null, problem);
    }
}
