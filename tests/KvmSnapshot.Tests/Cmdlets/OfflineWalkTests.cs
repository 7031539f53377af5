using System.IO;
using System.Linq;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Hosting;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Cmdlets;

/// <summary>The seeds' offline walk, end to end through the cmdlets in a hosted engine, on real qcow2 files.</summary>
public sealed class OfflineWalkTests
{
    /// <summary>centosbase &lt;- centos1, centosbase &lt;- centos2 &lt;- sn1 &lt;- sn2 &lt;- sn3 &lt;- sn4, distinct data in each layer.</summary>
    internal static void BuildSeedStore(PowerShellSession ps, string dir)
    {
        string F(string n) => Path.Combine(dir, n);
        ps.Run("New-KvmDiskImage -Path $args[0] -Size 64MB", F("centosbase.qcow2")).AssertNoErrors();
        Tool.WritePattern(F("centosbase.qcow2"), 0x11, "0", "8M");
        ps.Run("New-KvmDiskImage -Path $args[0] -BackingFile $args[1]", F("centos1.qcow2"), F("centosbase.qcow2")).AssertNoErrors();
        ps.Run("New-KvmDiskImage -Path $args[0] -BackingFile $args[1] -BackingFormat qcow2", F("centos2.qcow2"), F("centosbase.qcow2")).AssertNoErrors();
        Tool.WritePattern(F("centos1.qcow2"), 0x21, "4M", "2M");
        Tool.WritePattern(F("centos2.qcow2"), 0x22, "5M", "2M");
        var previous = F("centos2.qcow2");
        for (var i = 1; i <= 4; i++)
        {
            var sn = F($"sn{i}.qcow2");
            ps.Run("New-KvmDiskImage -Path $args[0] -BackingFile $args[1]", sn, previous).AssertNoErrors();
            // Each layer: one range only it writes, and one range every layer overwrites.
            Tool.WritePattern(sn, (byte)(0x30 + i), $"{8 + 2 * i}M", "1M");
            Tool.WritePattern(sn, (byte)(0x40 + i), "30M", "512K");
            previous = sn;
        }
    }

    private static string[] LayerNames(PsResult chain) => chain.Single<SnapshotChain>().Layers.Select(l => l.Name).ToArray();

    [Fact]
    public void SeedsOfflineWalk()
    {
        using var tmp = new TempDirectory("walk");
        using var ps = new PowerShellSession();
        var commitDir = Directory.CreateDirectory(tmp.File("commit")).FullName;
        var pullDir = Directory.CreateDirectory(tmp.File("pull")).FullName;
        BuildSeedStore(ps, commitDir);
        BuildSeedStore(ps, pullDir);
        string C(string n) => Path.Combine(commitDir, n);
        string P(string n) => Path.Combine(pullDir, n);

        // Reference: the guest's view of sn4 before anything, flattened into one file.
        var reference = tmp.File("reference.qcow2");
        ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1]", C("sn4.qcow2"), reference).AssertNoErrors();
        Assert.True(Tool.SameContent(reference, C("sn4.qcow2")));
        Assert.True(Tool.ReadsPattern(reference, 0x44, "30M", "512K"));
        Assert.True(Tool.ReadsPattern(reference, 0x32, "12M", "1M"));
        var centos1Hash = Tool.Sha256(C("centos1.qcow2"));
        var centos1View = tmp.File("centos1-view.qcow2");
        ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1]", C("centos1.qcow2"), centos1View).AssertNoErrors();

        var chain = ps.Run("Get-KvmSnapshotChain -Path $args[0]", C("sn4.qcow2")).AssertNoErrors();
        Assert.Equal(new[] { "sn4.qcow2", "sn3.qcow2", "sn2.qcow2", "sn1.qcow2", "centos2.qcow2", "centosbase.qcow2" }, LayerNames(chain));
        Assert.Equal("centosbase.qcow2 <- centos2.qcow2 <- sn1.qcow2 <- sn2.qcow2 <- sn3.qcow2 <- sn4.qcow2", chain.Single<SnapshotChain>().ToString());

        // 1. Remove sn2 by committing it down into sn1 and pointing sn3 at sn1.
        var committed = ps.Run("Invoke-KvmBlockCommit -Path $args[0] -Top $args[1] -Base $args[2] -Confirm:$false", C("sn4.qcow2"), C("sn2.qcow2"), C("sn1.qcow2")).AssertNoErrors();
        Assert.Equal(new[] { "sn4.qcow2", "sn3.qcow2", "sn1.qcow2", "centos2.qcow2", "centosbase.qcow2" }, LayerNames(committed));
        Assert.True(Tool.SameContent(reference, C("sn4.qcow2")), "commit changed what the guest sees");
        Assert.Equal(C("sn1.qcow2"), ps.Run("(Get-KvmDiskImage -Path $args[0]).BackingFileFullPath", C("sn3.qcow2")).AssertNoErrors().Single<string>());
        Assert.True(File.Exists(C("sn2.qcow2")), "a merged layer is only removed with -RemoveMergedLayers");
        Assert.Equal(centos1Hash, Tool.Sha256(C("centos1.qcow2")));
        Assert.True(Tool.SameContent(centos1View, C("centos1.qcow2")));

        // 2. On a fresh chain, remove sn2 by pulling it up into sn3 (sn3 then backs onto sn1).
        var pulled = ps.Run("Invoke-KvmBlockPull -Path $args[0] -Base $args[1] -Confirm:$false", P("sn3.qcow2"), P("sn1.qcow2")).AssertNoErrors();
        Assert.Equal(new[] { "sn3.qcow2", "sn1.qcow2", "centos2.qcow2", "centosbase.qcow2" }, LayerNames(pulled));
        Assert.Equal(new[] { "sn4.qcow2", "sn3.qcow2", "sn1.qcow2", "centos2.qcow2", "centosbase.qcow2" },
            LayerNames(ps.Run("Get-KvmSnapshotChain -Path $args[0]", P("sn4.qcow2")).AssertNoErrors()));
        Assert.True(Tool.SameContent(reference, P("sn4.qcow2")), "pull changed what the guest sees");
        Assert.True(Tool.SameContent(centos1View, P("centos1.qcow2")));

        // 3. Flatten sn4 into a standalone image.
        var flat = tmp.File("sn4-flat.qcow2");
        var image = ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1]", P("sn4.qcow2"), flat).AssertNoErrors().Single<DiskImage>();
        Assert.Null(image.BackingFile);
        Assert.Equal(new[] { "sn4-flat.qcow2" }, LayerNames(ps.Run("Get-KvmSnapshotChain -Path $args[0]", flat).AssertNoErrors()));
        Assert.True(Tool.SameContent(reference, flat));

        // 4. Convert a raw image to qcow2 and take internal snapshots in it.
        var raw = tmp.File("disk.raw");
        ps.Run("New-KvmDiskImage -Path $args[0] -Size 16MB -Format raw", raw).AssertNoErrors();
        Tool.WritePattern(raw, 0x5a, "0", "1M", "raw");
        var qcow = tmp.File("disk.qcow2");
        ps.Run("Convert-KvmDiskImage -Path $args[0] -Destination $args[1] -Format qcow2", raw, qcow).AssertNoErrors();
        Assert.True(Tool.SameContent(raw, qcow));
        var snap = ps.Run("New-KvmSnapshot -Path $args[0] -Name before-update", qcow).AssertNoErrors().Single<InternalSnapshot>();
        Assert.Equal("before-update", snap.Name);
        Tool.WritePattern(qcow, 0x6b, "0", "1M");
        ps.Run("New-KvmSnapshot -Path $args[0] -Name after-update", qcow).AssertNoErrors();
        Assert.Equal(new[] { "before-update", "after-update" },
            ps.Run("Get-KvmSnapshot -Path $args[0]", qcow).AssertNoErrors().All<InternalSnapshot>().Select(s => s.Name).ToArray());
        ps.Run("Restore-KvmSnapshot -Path $args[0] -Name before-update -Confirm:$false", qcow).AssertNoErrors();
        Assert.True(Tool.ReadsPattern(qcow, 0x5a, "0", "1M"));
        Assert.True(Tool.SameContent(raw, qcow));
        ps.Run("Get-KvmSnapshot -Path $args[0] | Remove-KvmSnapshot -Confirm:$false", qcow).AssertNoErrors();
        Assert.Empty(ps.Run("Get-KvmSnapshot -Path $args[0]", qcow).AssertNoErrors().Output);
        Assert.True(Tool.SameContent(raw, qcow), "deleting snapshots changed the active data");
    }
}
