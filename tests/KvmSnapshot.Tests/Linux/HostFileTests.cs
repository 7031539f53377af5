using System;
using System.Globalization;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Linux;

/// <summary>HostFile's device, inode and allocated size against coreutils stat(1) on real files.</summary>
public sealed class HostFileTests
{
    /// <summary>`stat -L -c '%d %i %b %B'`: device, inode, allocated blocks and the block unit, following symlinks.</summary>
    private static (ulong Device, ulong Inode, long Allocated) Stat(string path)
    {
        var fields = Tool.Run("stat", "-L", "-c", "%d %i %b %B", path).EnsureSuccess().StdOut.Trim().Split(' ');
        return (ulong.Parse(fields[0], CultureInfo.InvariantCulture), ulong.Parse(fields[1], CultureInfo.InvariantCulture),
            long.Parse(fields[2], CultureInfo.InvariantCulture) * long.Parse(fields[3], CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Identity_is_device_and_inode_as_stat_reports_them_and_sees_through_hard_links_and_symlinks()
    {
        using var dir = new TempDirectory("hostfile");
        var file = dir.File("base.img");
        File.WriteAllBytes(file, new byte[8192]);
        var hardLink = dir.File("hard.img");
        Tool.Run("ln", file, hardLink).EnsureSuccess();
        var symlink = dir.File("sym.img");
        File.CreateSymbolicLink(symlink, "base.img");
        var other = dir.File("other.img");
        File.WriteAllBytes(other, new byte[8192]);

        var facts = HostFile.Describe(file);
        var expected = Stat(file);

        Assert.Null(facts.IdentityProblem);
        Assert.False(facts.Identity.IsByPath);
        Assert.Equal((expected.Device, expected.Inode), (facts.Identity.Device, facts.Identity.Inode));
        Assert.Equal(facts.Identity, HostFile.Describe(hardLink).Identity);
        Assert.Equal(facts.Identity, HostFile.Describe(symlink).Identity);
        Assert.NotEqual(facts.Identity, HostFile.Describe(other).Identity);
        var otherStat = Stat(other);
        Assert.Equal((otherStat.Device, otherStat.Inode), (HostFile.Describe(other).Identity.Device, HostFile.Describe(other).Identity.Inode));
    }

    [Fact]
    public void The_device_number_matches_stat_on_another_file_system_too()
    {
        // /proc/self/status lives on procfs, /dev/null on devtmpfs or tmpfs: devices with other major/minor numbers.
        foreach (var path in new[] { "/proc/self/status", "/dev/null", "/" }.Where(p => File.Exists(p) || Directory.Exists(p)))
        {
            var expected = Stat(path);
            var facts = HostFile.Describe(path);
            Assert.Equal(expected.Device, facts.Identity.Device);
        }
    }

    [Fact]
    public void Allocated_size_of_a_sparse_file_is_stats_blocks_times_the_block_unit()
    {
        using var dir = new TempDirectory("hostfile");
        var sparse = dir.File("sparse.raw");
        using (var stream = new FileStream(sparse, FileMode.CreateNew))
        {
            stream.SetLength(256L * 1024 * 1024);
            stream.Position = 64L * 1024 * 1024;
            stream.Write(Enumerable.Repeat((byte)0xA5, 1024 * 1024).ToArray());
        }

        var facts = HostFile.Describe(sparse);
        var expected = Stat(sparse);

        Assert.Equal(expected.Allocated, facts.AllocatedBytes);
        Assert.True(facts.AllocatedBytes < 256L * 1024 * 1024, "the hole must not count as allocated");
        Assert.True(facts.AllocatedBytes >= 1024 * 1024, "the written MiB is allocated");
    }

    [Fact]
    public void A_file_whose_identity_cannot_be_read_says_so_instead_of_silently_comparing_paths()
    {
        using var dir = new TempDirectory("hostfile");
        var missing = dir.File("gone.img");

        var facts = HostFile.Describe(missing);

        Assert.True(facts.Identity.IsByPath);
        Assert.Equal(missing, facts.Identity.FallbackPath);
        Assert.Null(facts.AllocatedBytes);
        Assert.NotNull(facts.IdentityProblem);
        Assert.Contains("gone.img", facts.IdentityProblem, StringComparison.Ordinal);
        Assert.Null(HostFile.IdentityUnavailable); // one file's failure does not turn identities off for the process
    }
}
