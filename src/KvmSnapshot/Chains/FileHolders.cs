using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace KvmSnapshot.Chains;

/// <summary>
/// Which processes of this host have a file open, found through /proc/&lt;pid&gt;/fd: each descriptor's link is
/// followed by statx and compared by device and inode, so a renamed or deleted file is still recognised. Unlike
/// /proc/locks this sees a process that opened the file without taking a lock (QEMU with file locking off, or a file
/// system without OFD locks). Processes whose descriptors cannot be read (another user's, for a non-root caller) are
/// not seen; this process is never counted.
/// </summary>
internal static class FileHolders
{
    /// <summary>
    /// The processes among <paramref name="among"/> (every process when null) that hold one of
    /// <paramref name="files"/> open, in ascending pid order.
    /// </summary>
    public static IReadOnlyList<int> Find(IReadOnlySet<FileIdentity> files, IEnumerable<int>? among = null)
    {
        if (files.Count == 0) return Array.Empty<int>();
        var self = Environment.ProcessId;
        return (among ?? AllProcesses()).Where(pid => pid != self && Holds(pid, files)).Order().ToList();
    }

    private static IEnumerable<int> AllProcesses()
    {
        string[] entries;
        try
        {
            entries = Directory.GetDirectories("/proc");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Array.Empty<int>();
        }
        return entries.Select(d => int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : 0)
            .Where(pid => pid > 0);
    }

    private static bool Holds(int pid, IReadOnlySet<FileIdentity> files)
    {
        string[] descriptors;
        try
        {
            descriptors = Directory.GetFiles($"/proc/{pid}/fd");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // gone, or not ours to read
        }
        foreach (var fd in descriptors)
        {
            string? target;
            try
            {
                target = new FileInfo(fd).LinkTarget;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            // Sockets, pipes and anon inodes ("socket:[123]") are no files of ours; skip them without a statx.
            if (target is null || !target.StartsWith('/')) continue;
            var facts = HostFile.Describe(fd);
            if (facts.IdentityProblem is null && files.Contains(facts.Identity)) return true;
        }
        return false;
    }
}
