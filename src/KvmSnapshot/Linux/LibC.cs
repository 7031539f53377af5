using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace KvmSnapshot.Linux;

/// <summary>
/// The C library functions the module calls, imported once under one name. "libc" is the runtime's own alias
/// for the platform's C library (libc.so.6 on glibc), which is also the allocator libvirt's returned strings and
/// arrays come from, so <see cref="Free"/> releases them with the matching free(3).
/// </summary>
internal static unsafe partial class LibC
{
    public const string Name = "libc";

    /// <summary>AT_FDCWD: a relative path is resolved against the working directory.</summary>
    public const int AtFdCwd = -100;

    /// <summary>AT_EMPTY_PATH: with an empty path, statx describes the open file dirFd itself.</summary>
    public const int AtEmptyPath = 0x1000;

    // errno values (Linux, identical on x86-64 and arm64).
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EACCES = 13;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int ENAMETOOLONG = 36;
    public const int ENOSYS = 38;
    public const int ELOOP = 40;

    /// <summary>errno ENOSPC on Linux; .NET on Linux puts the errno of a failed write in IOException.HResult.</summary>
    public const int ENOSPC = 28;

    // open(2) flags (Linux, identical on x86-64 and arm64).
    public const int O_RDONLY = 0;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;

    // The file type in a mode (st_mode, stx_mode).
    public const int S_IFMT = 0xF000;
    public const int S_IFDIR = 0x4000;
    public const int S_IFREG = 0x8000;
    public const int S_IFLNK = 0xA000;

    /// <summary>The file type bits of <paramref name="mode"/>: <see cref="S_IFDIR"/>, <see cref="S_IFREG"/>, <see cref="S_IFLNK"/>…</summary>
    public static int FileType(ushort mode) => mode & S_IFMT;

    private static int _entryPointsResolved;

    /// <summary>
    /// Calls every function here once, harmlessly, so that the runtime has looked each one up. The first call of a
    /// P/Invoke asks the dynamic linker (dlsym), and glibc makes that wait while another thread is inside dlopen:
    /// loading libvirt (some 60 libraries, 10-20 ms) would otherwise stall a store scan's first statx for that long.
    /// <see cref="Libvirt.Native.LibvirtLibrary"/> calls this before it loads libvirt. Failures are left to the
    /// callers, which report them where they need the function.
    /// </summary>
    public static void ResolveEntryPoints()
    {
        if (Interlocked.Exchange(ref _entryPointsResolved, 1) != 0) return;
        try
        {
            Statx(AtFdCwd, "/", 0, StatxMask.Type, out _);
            var dir = OpenDir("/");
            if (dir != IntPtr.Zero)
            {
                ReadDir(dir);
                CloseDir(dir);
            }
            var fd = Open("/", O_RDONLY | O_CLOEXEC);
            if (fd >= 0)
            {
                using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle((IntPtr)fd, ownsHandle: true);
                byte none;
                PRead(handle, &none, 0, 0); // EISDIR: only the lookup matters
            }
            var real = RealPath("/", IntPtr.Zero);
            Free(real); // free(NULL) is a no-op
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    /// <summary>geteuid(2): the effective user of this process (0: root).</summary>
    [LibraryImport(Name, EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    [LibraryImport(Name, EntryPoint = "free")]
    public static partial void Free(IntPtr ptr);

    [LibraryImport(Name, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    /// <summary>realpath(3) with a NULL buffer: the result is malloc'd (free it with <see cref="Free"/>); NULL on failure.</summary>
    [LibraryImport(Name, EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr RealPath(string path, IntPtr resolved);

    /// <summary>pread(2): at most count bytes at offset; -1 on failure (errno).</summary>
    [LibraryImport(Name, EntryPoint = "pread", SetLastError = true)]
    public static partial nint PRead(SafeHandle fd, byte* buffer, nint count, long offset);

    /// <summary>AT_SYMLINK_NOFOLLOW: statx describes a symbolic link itself.</summary>
    public const int AtSymlinkNoFollow = 0x100;

    /// <summary>opendir(3); IntPtr.Zero on failure (errno).</summary>
    [LibraryImport(Name, EntryPoint = "opendir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr OpenDir(string path);

    /// <summary>readdir(3): the next struct dirent (64-bit layout on every 64-bit Linux libc), IntPtr.Zero at the end or on an error (errno, cleared before the call).</summary>
    [LibraryImport(Name, EntryPoint = "readdir", SetLastError = true)]
    public static partial IntPtr ReadDir(IntPtr dir);

    [LibraryImport(Name, EntryPoint = "closedir")]
    public static partial int CloseDir(IntPtr dir);

    /// <summary>statx(2) (glibc 2.28, Linux 4.11): follows symlinks with flags 0.</summary>
    [LibraryImport(Name, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int dirFd, string path, int flags, StatxMask mask, out StatxBuffer buffer);
}

/// <summary>The STATX_* request and result mask bits (linux/stat.h).</summary>
[Flags]
internal enum StatxMask : uint
{
    None = 0,
    /// <summary>STATX_TYPE</summary>
    Type = 0x1,
    /// <summary>STATX_MTIME</summary>
    ModifyTime = 0x40,
    /// <summary>STATX_CTIME</summary>
    ChangeTime = 0x80,
    /// <summary>STATX_INO</summary>
    Inode = 0x100,
    /// <summary>STATX_SIZE</summary>
    Size = 0x200,
    /// <summary>STATX_BLOCKS</summary>
    Blocks = 0x400,
}

/// <summary>
/// struct statx (linux/stat.h). Unlike struct stat its layout is the same on every architecture and fixed by the
/// kernel ABI: 256 bytes, the fields used here at the offsets below.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 256)]
internal struct StatxBuffer
{
    [FieldOffset(0)] public StatxMask Mask;      // __u32 stx_mask: what the kernel filled in
    [FieldOffset(28)] public ushort Mode;        // __u16 stx_mode: file type and permissions
    [FieldOffset(32)] public ulong Inode;        // __u64 stx_ino
    [FieldOffset(40)] public ulong Size;         // __u64 stx_size
    [FieldOffset(48)] public ulong Blocks;       // __u64 stx_blocks, 512-byte units
    [FieldOffset(96)] public long ChangeSeconds;       // struct statx_timestamp stx_ctime: __s64 tv_sec
    [FieldOffset(104)] public uint ChangeNanoseconds;  //                                   __u32 tv_nsec
    [FieldOffset(112)] public long ModifySeconds;      // struct statx_timestamp stx_mtime
    [FieldOffset(120)] public uint ModifyNanoseconds;
    [FieldOffset(136)] public uint DeviceMajor;  // __u32 stx_dev_major
    [FieldOffset(140)] public uint DeviceMinor;  // __u32 stx_dev_minor

    /// <summary>The device number as stat(2)'s st_dev spells it (glibc's makedev), e.g. for `stat -c %d`.</summary>
    public readonly ulong Device =>
        ((ulong)(DeviceMajor & 0xfffff000u) << 32) | ((ulong)(DeviceMajor & 0xfffu) << 8)
        | ((ulong)(DeviceMinor & 0xffffff00u) << 12) | (DeviceMinor & 0xffu);
}
