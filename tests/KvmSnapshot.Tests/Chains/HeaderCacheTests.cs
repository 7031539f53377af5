using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using KvmSnapshot.Chains;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;
using KvmSnapshot.QemuImg;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Chains;

/// <summary>
/// Issue 8, cold and warm store scans: headers are read on several threads ahead of the decisions (prefetch), and a
/// session remembers the headers of unchanged files (HeaderCache). Both must give exactly the answer a plain read of
/// every file gives, and a changed file must always be read again.
/// </summary>
public sealed class HeaderCacheTests
{
    /// <summary>A store big enough for the prefetch to run: 4 templates, 8 chains of 5 overlays, plus odd files.</summary>
    private static List<string> BuildStore(TempDirectory dir)
    {
        Directory.CreateDirectory(dir.File("t"));
        Directory.CreateDirectory(dir.File("g"));
        for (var t = 0; t < 4; t++) Tool.CreateQcow2(dir.File($"t/t{t}.qcow2"), "8M");
        var leaves = new List<string>();
        for (var c = 0; c < 8; c++)
        {
            var backing = $"../t/t{c % 4}.qcow2";
            for (var d = 0; d < 5; d++)
            {
                var path = dir.File($"g/vm{c}-{d}.qcow2");
                Tool.CreateQcow2(path, null, backing);
                backing = Path.GetFileName(path);
                if (d == 4) leaves.Add(path);
            }
        }
        // Things a scan meets in real stores: a directory with an image's name, a truncated header, a FIFO, a missing backing file.
        Directory.CreateDirectory(dir.File("g/odd.qcow2"));
        var good = File.ReadAllBytes(dir.File("t/t0.qcow2"));
        File.WriteAllBytes(dir.File("g/truncated.qcow2"), good.AsSpan(0, 40).ToArray());
        Tool.Run("mkfifo", dir.File("g/pipe.qcow2")).EnsureSuccess();
        Tool.CreateQcow2(dir.File("g/gone.qcow2"), "8M");
        Tool.CreateQcow2(dir.File("g/orphan-top.qcow2"), null, dir.File("g/gone.qcow2"));
        File.Delete(dir.File("g/gone.qcow2"));
        return leaves;
    }

    private static string Describe(IReadOnlyList<SnapshotChain> chains)
        => string.Join("\n", chains.Select(c => string.Join(" <- ", c.Layers.Select(l =>
            $"{l.Path}|{l.State}|{l.Format}|{l.BackingFile}|{l.VirtualSize}|{string.Join(",", l.ReferencedBy)}"))));

    [Fact]
    public void A_prefetched_scan_gives_what_reading_each_file_in_turn_gives()
    {
        using var dir = new TempDirectory("hc");
        BuildStore(dir);
        var ctx = new RecordingOperationContext();

        var scan = StoreScan.Run(new[] { dir.Path }, recurse: true, ctx);
        Assert.True(scan.ScannedImages.Count >= ImageCatalog.PrefetchMinimum, "the store must be big enough for the prefetch to run");

        // The same forest, each chain read again from its leaf with a fresh catalog and no prefetch.
        var sequential = scan.Chains().Select(c =>
        {
            var catalog = new ImageCatalog(ctx);
            return ChainResolver.Resolve(catalog.Get(c.Path, null)!, catalog, scan.UsersOf);
        }).ToList();
        Assert.Equal(Describe(sequential), Describe(scan.Chains()));
        Assert.Contains(scan.Chains(), c => c.Layers.Any(l => l.State == ChainLayerState.Missing && l.Path == dir.File("g/gone.qcow2")));
        Assert.Contains(scan.Chains(), c => c.Layers.Any(l => l.State == ChainLayerState.Unreadable && l.Path == dir.File("g/truncated.qcow2")));
    }

    [Fact]
    public void A_second_scan_reuses_unchanged_headers_and_reads_changed_or_replaced_files_again()
    {
        using var dir = new TempDirectory("hc");
        var leaves = BuildStore(dir);
        var cache = new HeaderCache(racyWindow: TimeSpan.Zero);
        var engine = new OfflineEngine(QemuImgCommands.Default, headerCache: cache);
        var ctx = new RecordingOperationContext();

        var first = engine.ScanStore(dir.Path, recurse: true, ctx);
        Assert.Equal(0, cache.Hits);
        var images = cache.Count;
        Assert.True(images >= 44, $"every readable image is kept ({images})");

        var second = engine.ScanStore(dir.Path, recurse: true, ctx);
        Assert.Equal(Describe(first), Describe(second));
        Assert.Equal(images, cache.Hits);

        // A header rewritten in place (same inode, new backing name) and a file replaced by another (new inode).
        var rebased = leaves[0];
        Tool.Run("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "../t/t3.qcow2", "-F", "qcow2", rebased).EnsureSuccess();
        var replaced = leaves[1];
        Tool.CreateQcow2(replaced + ".new", "8M");
        File.Move(replaced + ".new", replaced, overwrite: true);

        var third = engine.ScanStore(dir.Path, recurse: true, ctx);
        var rebasedChain = third.Single(c => c.Path == rebased);
        Assert.Equal(new[] { Path.GetFileName(rebased), "t3.qcow2" }, rebasedChain.Layers.Select(l => Path.GetFileName(l.Path)));
        var replacedChain = third.Single(c => c.Path == replaced);
        Assert.Single(replacedChain.Layers);
        Assert.Equal(8L << 20, replacedChain.Active.VirtualSize);
        Assert.Equal(2 * images - 2, cache.Hits);
        Assert.Contains(ctx.VerboseMessages, m => m.Contains($"{images - 2} unchanged since this session read them", StringComparison.Ordinal));
    }

    [Fact]
    public void Files_changed_just_before_their_read_are_never_kept()
    {
        using var dir = new TempDirectory("hc");
        BuildStore(dir);
        // A window longer than building the store took: every file here changed "just before" it was read.
        var cache = new HeaderCache(racyWindow: TimeSpan.FromMinutes(10));
        var engine = new OfflineEngine(QemuImgCommands.Default, headerCache: cache);

        engine.ScanStore(dir.Path, recurse: true, new RecordingOperationContext());
        engine.ScanStore(dir.Path, recurse: true, new RecordingOperationContext());

        Assert.Equal(0, cache.Count);
        Assert.Equal(0, cache.Hits);
    }
    [Fact]
    public void A_full_cache_starts_over_and_its_count_stays_true_under_two_reader_threads()
    {
        // The count is kept beside the dictionary (its own Count takes every lock); it must still say how many
        // entries there are, and the cache must still start over past its capacity, with two threads storing at once.
        using var dir = new TempDirectory("hc");
        var files = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            var file = dir.File($"i{i}.qcow2");
            Tool.CreateQcow2(file, "1M");
            files.Add(file);
        }
        var cache = new HeaderCache(racyWindow: TimeSpan.Zero, capacity: 16);

        Parallel.ForEach(files, new ParallelOptions { MaxDegreeOfParallelism = 2 }, f => ImageHeaderFacts.Read(f, cache));
        Assert.InRange(cache.Count, 1, 16);
        Parallel.ForEach(files, new ParallelOptions { MaxDegreeOfParallelism = 2 }, f => ImageHeaderFacts.Read(f, cache));
        Assert.InRange(cache.Count, 1, 16);

        var big = new HeaderCache(racyWindow: TimeSpan.Zero);
        Parallel.ForEach(files, new ParallelOptions { MaxDegreeOfParallelism = 2 }, f => ImageHeaderFacts.Read(f, big));
        Parallel.ForEach(files, new ParallelOptions { MaxDegreeOfParallelism = 2 }, f => ImageHeaderFacts.Read(f, big));
        Assert.Equal(files.Count, big.Count);
        Assert.Equal(files.Count, big.Hits);
        big.Clear();
        Assert.Equal(0, big.Count);
    }
}
