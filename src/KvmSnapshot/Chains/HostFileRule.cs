using System;
using System.Linq;

namespace KvmSnapshot.Chains;

/// <summary>
/// Tells a host file from a raw disk image when an overlay names it as its raw backing file. A qcow2 header planted
/// in a guest's raw disk can name any file root can read (/etc/shadow, a key); reading it as the guest's backing data
/// would copy it into images the guest or others can read. Raw images are whole sectors and do not live in system
/// directories; host files usually are not and do.
/// </summary>
internal static class HostFileRule
{
    private static readonly string[] SystemDirectories =
    {
        "/etc/", "/proc/", "/sys/", "/boot/", "/usr/", "/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/",
        "/run/", "/var/log/", "/var/spool/", "/var/mail/",
    };

    /// <summary>Why the raw file at <paramref name="fullPath"/> of <paramref name="size"/> bytes is not a disk image; null when it may be one.</summary>
    public static string? WhyNotAnImage(string fullPath, long size)
    {
        if (SystemDirectories.Any(d => fullPath.StartsWith(d, StringComparison.Ordinal)))
        {
            return $"'{fullPath}' lies in a system directory ({fullPath[..(fullPath.IndexOf('/', 1) + 1)]}), where disk images are not kept";
        }
        if (fullPath.Contains("/.ssh/", StringComparison.Ordinal) || fullPath.Contains("/.gnupg/", StringComparison.Ordinal))
        {
            return $"'{fullPath}' lies in a key directory, where disk images are not kept";
        }
        if (size % 512 != 0)
        {
            return $"'{fullPath}' is {size} bytes, not a whole number of 512-byte sectors as every disk image is";
        }
        return null;
    }
}
