using System;
using System.IO;

namespace KvmSnapshot.Tests.Infrastructure;

/// <summary>
/// A tmpfs of a few MiB mounted on a fresh directory, so a test can run a write out of space without touching the
/// machine's disk; unmounted (lazily, if something still holds it) and removed on Dispose. Needs root.
/// </summary>
public sealed class SmallFileSystem : IDisposable
{
    private readonly TempDirectory _mountPoint = new("fs");

    public SmallFileSystem(int megabytes)
    {
        Tool.Run("mount", "-t", "tmpfs", "-o", $"size={megabytes}m,mode=0755", "tmpfs", _mountPoint.Path).EnsureSuccess();
    }

    public string Path => _mountPoint.Path;

    public string File(string name) => _mountPoint.File(name);

    /// <summary>Bytes still free (statvfs f_bavail).</summary>
    public long Free => new DriveInfo(Path).AvailableFreeSpace;

    /// <summary>Writes a file of zeros that leaves exactly <paramref name="leaveFree"/> bytes free (tmpfs counts 4 KiB pages).</summary>
    public void FillLeaving(long leaveFree)
    {
        var length = Free - leaveFree;
        if (length <= 0) return;
        using var filler = new FileStream(File("filler"), FileMode.CreateNew, FileAccess.Write);
        var block = new byte[64 * 1024];
        for (long written = 0; written < length; written += block.Length)
        {
            filler.Write(block, 0, (int)Math.Min(block.Length, length - written));
        }
    }

    public void Dispose()
    {
        if (Tool.Run("umount", Path).ExitCode != 0) Tool.Run("umount", "-l", Path);
        _mountPoint.Dispose();
    }
}
