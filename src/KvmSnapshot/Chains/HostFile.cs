using System;
using System.IO;
using System.Runtime.InteropServices;

namespace KvmSnapshot.Chains;

/// <summary>Which file a path names, independent of the path's spelling (symlinks, "..", hard links).</summary>
public readonly record struct FileIdentity(ulong Device, ulong Inode, string? FallbackPath)
{
    public override string ToString() => FallbackPath ?? $"{Device}:{Inode}";
}

/// <summary>
/// stat(2) facts .NET does not expose: device/inode (to recognise one file under two names, which loop detection
/// needs) and allocated blocks (the "actual size" qemu-img shows for sparse images).
/// </summary>
public static unsafe class HostFile
{
    // struct stat on Linux x86_64 and aarch64 alike: st_dev at 0, st_ino at 8, st_blocks (512-byte units) at 64.
    private const int StatBufferSize = 256;
    private const int DeviceOffset = 0;
    private const int InodeOffset = 8;
    private const int BlocksOffset = 64;

    private static bool _statMissing = !OperatingSystem.IsLinux() || !(RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64);

    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern int NativeStat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buffer);

    /// <summary>Identity and allocated bytes of an existing file; identity falls back to the full path without stat.</summary>
    public static (FileIdentity Identity, long? AllocatedBytes) Describe(string fullPath)
    {
        if (!_statMissing)
        {
            var buffer = stackalloc byte[StatBufferSize];
            try
            {
                if (NativeStat(fullPath, buffer) == 0)
                {
                    var dev = *(ulong*)(buffer + DeviceOffset);
                    var ino = *(ulong*)(buffer + InodeOffset);
                    var blocks = *(long*)(buffer + BlocksOffset);
                    return (new FileIdentity(dev, ino, null), blocks * 512);
                }
            }
            catch (EntryPointNotFoundException)
            {
                // glibc before 2.33 only exports __xstat; identity by path is the safe fallback there.
                _statMissing = true;
            }
            catch (DllNotFoundException)
            {
                _statMissing = true;
            }
        }
        return (new FileIdentity(0, 0, Path.GetFullPath(fullPath)), null);
    }
}
