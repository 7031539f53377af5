using System.IO;
using System.Linq;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>
/// A qcow2 image whose header has the corrupt bit set (incompatible_features bit 1, as qemu sets it when it finds
/// inconsistent metadata). qemu-img check -U ignores the bit, so Test-KvmSnapshotChain must read it itself.
/// </summary>
public sealed class CorruptFlagTests
{
    /// <summary>Sets bit 1 of the big-endian u64 incompatible_features at header offset 72 (byte 79 holds bits 0-7).</summary>
    internal static void MarkCorrupt(string qcow2)
    {
        using var f = new FileStream(qcow2, FileMode.Open, FileAccess.ReadWrite);
        f.Position = 79;
        var b = f.ReadByte();
        f.Position = 79;
        f.WriteByte((byte)(b | 0x02));
    }

    [Fact]
    public void TestChainReportsALayerMarkedCorruptAsAnError()
    {
        using var dir = new TempDirectory("corrupt");
        Tool.CreateQcow2(dir.File("base.qcow2"), "8M");
        Tool.CreateQcow2(dir.File("top.qcow2"), null, dir.File("base.qcow2"));
        using var ps = new PowerShellSession();

        Assert.True(ps.Run("Test-KvmSnapshotChain -Path $args[0] -Quiet", dir.File("top.qcow2")).AssertNoErrors().Single<bool>());
        MarkCorrupt(dir.File("base.qcow2"));
        // What the issue saw: the module's own reader shows the flag, qemu-img check -U does not complain.
        Assert.True(ps.Run("(Get-KvmDiskImage -Path $args[0]).Corrupt", dir.File("base.qcow2")).AssertNoErrors().Single<bool>());
        Assert.Equal(0, Tool.Run("qemu-img", "check", "-U", "-f", "qcow2", dir.File("base.qcow2")).ExitCode);

        var result = ps.Run("Test-KvmSnapshotChain -Path $args[0]", dir.File("top.qcow2")).AssertNoErrors().Single<SnapshotChainTestResult>();
        Assert.False(result.Passed);
        var problem = Assert.Single(result.Problems, p => p.Kind == ChainProblemKind.ImageCorrupt);
        Assert.Equal((ChainProblemSeverity.Error, dir.File("base.qcow2")), (problem.Severity, problem.Image));
        Assert.Contains("marked corrupt", problem.Message, System.StringComparison.Ordinal);
        Assert.False(ps.Run("Test-KvmSnapshotChain -Path $args[0] -Quiet", dir.File("top.qcow2")).AssertNoErrors().Single<bool>());
        // The flag is a header fact: it is reported without qemu-img check too.
        var quick = ps.Run("Test-KvmSnapshotChain -Path $args[0] -SkipImageCheck", dir.File("top.qcow2")).AssertNoErrors().Single<SnapshotChainTestResult>();
        Assert.Contains(quick.Problems, p => p.Kind == ChainProblemKind.ImageCorrupt && p.Image == dir.File("base.qcow2"));
        // And in a store scan.
        var store = ps.Run("Get-KvmSnapshotChain -Directory $args[0] | Test-KvmSnapshotChain", dir.Path).AssertNoErrors().All<SnapshotChainTestResult>().ToList();
        Assert.False(Assert.Single(store).Passed);
    }
}
