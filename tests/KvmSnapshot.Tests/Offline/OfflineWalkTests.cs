using System.IO;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Offline;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Offline;

/// <summary>
/// The seeds' offline walk at engine level: a template, two thin guests, a snapshot chain on one of them,
/// then shortening the chain both ways, flattening, and internal snapshots in a converted raw image. Every step
/// proves the guest-visible content is byte-identical to a flattened copy taken before, and that the other guest
/// and the template were not touched.
/// </summary>
public sealed class OfflineWalkTests
{
    private static readonly OfflineEngine Engine = OfflineEngine.Default;

    /// <summary>centosbase &lt;- centos1, centosbase &lt;- centos2 &lt;- sn1 &lt;- sn2 &lt;- sn3 &lt;- sn4, distinct data in every layer.</summary>
    private static void BuildStore(TempDirectory dir)
    {
        var ctx = new RecordingOperationContext();
        Tool.CreateQcow2(dir.File("centosbase.qcow2"), "16M");
        Tool.WritePattern(dir.File("centosbase.qcow2"), 0xce, "0", "8M");
        Engine.CreateImage(new NewImageRequest { Path = dir.File("centos1.qcow2"), BackingFile = dir.File("centosbase.qcow2"), RelativeBackingFile = true }, ctx);
        Engine.CreateImage(new NewImageRequest { Path = dir.File("centos2.qcow2"), BackingFile = dir.File("centosbase.qcow2"), RelativeBackingFile = true }, ctx);
        Tool.WritePattern(dir.File("centos1.qcow2"), 0xc1, "1M", "1M");
        Tool.WritePattern(dir.File("centos2.qcow2"), 0xc2, "1M", "1M");
        var previous = "centos2.qcow2";
        for (var i = 1; i <= 4; i++)
        {
            Engine.CreateImage(new NewImageRequest { Path = dir.File($"sn{i}.qcow2"), BackingFile = dir.File(previous), RelativeBackingFile = true }, ctx);
            // Each layer owns one megabyte and overwrites half of the layer below's, so a lost layer shows.
            Tool.WritePattern(dir.File($"sn{i}.qcow2"), (byte)(0x10 + i), $"{i + 1}M", "1M");
            Tool.WritePattern(dir.File($"sn{i}.qcow2"), (byte)(0x20 + i), $"{i * 1024 + 512}k", "512k");
            previous = $"sn{i}.qcow2";
        }
    }

    [Fact]
    public void Seeds_offline_walk()
    {
        using var dir = new TempDirectory("walk");
        BuildStore(dir);
        var centos1Hash = Tool.Sha256(dir.File("centos1.qcow2"));
        var templateHash = Tool.Sha256(dir.File("centosbase.qcow2"));
        void OthersUntouched()
        {
            Assert.Equal(centos1Hash, Tool.Sha256(dir.File("centos1.qcow2")));
            Assert.Equal(templateHash, Tool.Sha256(dir.File("centosbase.qcow2")));
        }

        var ctx = new RecordingOperationContext();
        Assert.Equal(new[] { "sn4.qcow2", "sn3.qcow2", "sn2.qcow2", "sn1.qcow2", "centos2.qcow2", "centosbase.qcow2" },
            OfflineAssert.Names(Engine.GetChain(dir.File("sn4.qcow2"), ctx)));
        var before = OfflineAssert.Snapshot(dir.File("sn4.qcow2"), dir.File("flat-before.raw"));
        Assert.True(Tool.ReadsPattern(dir.File("sn4.qcow2"), 0x22, "2560k", "512k"), "the test data is not what the walk expects");

        // 1. Remove sn2 by committing it down into sn1 and pointing sn3 at sn1.
        var commit = Engine.PlanCommit(new CommitRequest { Path = dir.File("sn4.qcow2"), Top = "sn2.qcow2", RemoveMergedLayers = true }, ctx);
        Assert.StartsWith("commit sn2.qcow2 down into sn1.qcow2, then point sn3.qcow2 at sn1.qcow2 (it needs up to ", commit.ToString());
        Assert.Empty(commit.AffectedImages);
        var committed = Engine.Commit(commit, ctx);
        Assert.Equal(new[] { "sn4.qcow2", "sn3.qcow2", "sn1.qcow2", "centos2.qcow2", "centosbase.qcow2" }, OfflineAssert.Names(committed.Chain));
        Assert.Equal("sn1.qcow2", committed.Chain.Layers[1].BackingFile);
        Assert.Equal(new[] { dir.File("sn2.qcow2") }, committed.RemovedLayers);
        Assert.False(File.Exists(dir.File("sn2.qcow2")));
        OfflineAssert.SameContent(before, dir.File("sn4.qcow2"));
        Assert.True(Engine.TestChain(Engine.GetChain(dir.File("sn4.qcow2"), ctx), null, true, ctx).Passed);
        OthersUntouched();

        // 2. On a fresh chain: remove sn2 by pulling it up into sn3.
        using var fresh = new TempDirectory("walk");
        BuildStore(fresh);
        var freshCentos1 = Tool.Sha256(fresh.File("centos1.qcow2"));
        var freshBefore = OfflineAssert.Snapshot(fresh.File("sn4.qcow2"), fresh.File("flat-before.raw"));
        OfflineAssert.SameContent(before, freshBefore);
        var pull = Engine.PlanPull(new PullRequest { Path = fresh.File("sn3.qcow2"), Base = "sn1.qcow2", RemoveMergedLayers = true }, ctx);
        Assert.StartsWith("pull sn2.qcow2 into sn3.qcow2, then back it with sn1.qcow2 (it needs up to ", pull.ToString());
        var pulled = Engine.Pull(pull, ctx);
        Assert.Equal(new[] { "sn3.qcow2", "sn1.qcow2", "centos2.qcow2", "centosbase.qcow2" }, OfflineAssert.Names(pulled.Chain));
        Assert.Equal(new[] { fresh.File("sn2.qcow2") }, pulled.RemovedLayers);
        Assert.Equal(new[] { "sn4.qcow2", "sn3.qcow2", "sn1.qcow2", "centos2.qcow2", "centosbase.qcow2" },
            OfflineAssert.Names(Engine.GetChain(fresh.File("sn4.qcow2"), ctx)));
        OfflineAssert.SameContent(freshBefore, fresh.File("sn4.qcow2"));
        Assert.Equal(freshCentos1, Tool.Sha256(fresh.File("centos1.qcow2")));

        // 3. Flatten sn4 into a standalone image.
        var flat = Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("sn4.qcow2"), Destination = dir.File("sn4-standalone.qcow2") }, ctx);
        Assert.Null(flat.BackingFile);
        Assert.Single(Engine.GetChain(flat.Path, ctx).Layers);
        OfflineAssert.SameContent(before, flat.Path);
        OfflineAssert.SameContent(before, dir.File("sn4.qcow2"));
        OthersUntouched();

        // 4. Convert a raw image to qcow2 and take internal snapshots in it.
        Tool.CreateRaw(dir.File("legacy.raw"), "8M");
        Tool.WritePattern(dir.File("legacy.raw"), 0x77, "0", "4M", "raw");
        var legacyHash = Tool.Sha256(dir.File("legacy.raw"));
        var converted = Engine.ConvertImage(new ConvertImageRequest { Source = dir.File("legacy.raw"), Destination = dir.File("legacy.qcow2") }, ctx);
        Assert.Equal("qcow2", converted.Format);
        OfflineAssert.SameContent(dir.File("legacy.raw"), converted.Path);
        Assert.Equal(legacyHash, Tool.Sha256(dir.File("legacy.raw")));

        var installed = Engine.CreateInternalSnapshot(converted.Path, "as converted", ctx);
        Tool.WritePattern(converted.Path, 0x78, "0", "1M");
        var patched = Engine.CreateInternalSnapshot(converted.Path, "after patch", ctx);
        Tool.WritePattern(converted.Path, 0x79, "0", "2M");
        Assert.Equal(new[] { "as converted", "after patch" }, Engine.GetInternalSnapshots(converted.Path, ctx).Select(s => s.Name));
        Assert.NotEqual(installed.Id, patched.Id);

        Engine.ApplyInternalSnapshot(converted.Path, "as converted", ctx);
        OfflineAssert.SameContent(dir.File("legacy.raw"), converted.Path);
        Engine.ApplyInternalSnapshot(converted.Path, "after patch", ctx);
        Assert.True(Tool.ReadsPattern(converted.Path, 0x78, "0", "1M"));
        Assert.True(Tool.ReadsPattern(converted.Path, 0x77, "1M", "3M"));
        Engine.DeleteInternalSnapshot(converted.Path, "as converted", ctx);
        Assert.Equal(new[] { "after patch" }, Engine.GetInternalSnapshots(converted.Path, ctx).Select(s => s.Name));
        OthersUntouched();
        Assert.Equal(ctx.ProgressReports.Select(p => p.Activity).Distinct().Count(), ctx.CompletedActivities.Distinct().Count());
    }
}
