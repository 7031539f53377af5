using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Model;
using KvmSnapshot.Tests.Infrastructure;
using KvmSnapshot.Tests.Offline;
using Xunit;

namespace KvmSnapshot.Tests.Chains;

public sealed class StoreScanTests
{
    [Fact]
    public void The_forest_has_one_chain_per_leaf_with_ReferencedBy_on_every_layer()
    {
        using var dir = new TempDirectory("sc");
        Tool.CreateRaw(dir.File("template.raw"), "4M");
        Tool.CreateQcow2(dir.File("g1.qcow2"), null, "template.raw", "raw");
        Tool.CreateQcow2(dir.File("g2.qcow2"), null, "template.raw", "raw");
        Tool.CreateQcow2(dir.File("g2-snap.qcow2"), null, "g2.qcow2");
        Tool.CreateQcow2(dir.File("standalone.qcow2"), "1M");
        // A raw file that no image names and whose extension says nothing is not an image.
        File.WriteAllText(dir.File("notes.txt"), "not an image");
        File.WriteAllBytes(dir.File("data.bin"), new byte[4096]);

        var scan = StoreScan.Run(new[] { dir.Path }, recurse: false, new RecordingOperationContext());
        var chains = scan.Chains();

        Assert.Equal(new[] { "g1.qcow2", "g2-snap.qcow2", "standalone.qcow2" }, chains.Select(c => c.Active.Name));
        var g2chain = chains.Single(c => c.Active.Name == "g2-snap.qcow2");
        Assert.Equal(new[] { "g2-snap.qcow2", "g2.qcow2", "template.raw" }, OfflineAssert.Names(g2chain));
        Assert.Empty(g2chain.Layers[0].ReferencedBy);
        Assert.Equal(new[] { dir.File("g2-snap.qcow2") }, g2chain.Layers[1].ReferencedBy);
        Assert.Equal(new[] { dir.File("g1.qcow2"), dir.File("g2.qcow2") }, g2chain.Layers[2].ReferencedBy);
        Assert.Equal("raw", g2chain.Base.Format);
        Assert.DoesNotContain(scan.Images, n => n.Path.EndsWith(".txt") || n.Path.EndsWith(".bin"));
    }

    [Fact]
    public void A_root_removed_before_the_scan_is_an_error_when_named_and_empty_for_the_usage_checks()
    {
        // The usage checks (ImageUsage.Scan) list the folders around a chain, then scan them; another session can
        // remove one in between (seen in the Examples suite: a whole Remove-KvmOrphanImage failed with "The directory
        // ... does not exist" for a folder it had not been asked about).
        using var dir = new TempDirectory("sc");
        Tool.CreateQcow2(dir.File("base.qcow2"), "1M");
        Tool.CreateQcow2(dir.File("top.qcow2"), null, "base.qcow2");
        var gone = Path.Combine(dir.Path, "removed-meanwhile");
        var roots = new[] { (dir.Path, 0), (gone, 1) };

        var error = Assert.Throws<KvmSnapshot.Errors.KvmSnapshotException>(() => StoreScan.Run(roots, new RecordingOperationContext()));
        Assert.Equal("DiskImageNotFound", error.ErrorId);
        Assert.Contains("removed-meanwhile", error.Message);

        var ctx = new RecordingOperationContext();
        var scan = StoreScan.Run(roots, ctx, missingRootsAreEmpty: true);
        Assert.Equal(new[] { dir.File("base.qcow2"), dir.File("top.qcow2") }, scan.ScannedImages.Select(n => n.Path).OrderBy(p => p, StringComparer.Ordinal));
        Assert.Equal(new[] { dir.File("top.qcow2") }, scan.UsersOf(scan.ScannedImages.Single(n => n.Path.EndsWith("base.qcow2"))));
        // A file where a folder was is not silently skipped: that is not a removed folder.
        File.WriteAllText(gone, "a file now");
        Assert.Throws<KvmSnapshot.Errors.KvmSnapshotException>(() => StoreScan.Run(roots, new RecordingOperationContext(), missingRootsAreEmpty: true));
    }

    [Fact]
    public void Raw_backing_files_count_when_named_even_without_an_image_extension_and_outside_the_directory()
    {
        using var outside = new TempDirectory("sc");
        using var dir = new TempDirectory("sc");
        File.WriteAllBytes(outside.File("disk.bin"), new byte[1 << 20]);
        Tool.CreateQcow2(dir.File("guest.qcow2"), null, outside.File("disk.bin"), "raw");

        var chains = StoreScan.Run(new[] { dir.Path }, false, new RecordingOperationContext()).Chains();

        var chain = Assert.Single(chains);
        Assert.Equal(new[] { "guest.qcow2", "disk.bin" }, OfflineAssert.Names(chain));
        Assert.Equal(new[] { dir.File("guest.qcow2") }, chain.Base.ReferencedBy);
    }

    [Fact]
    public void Images_in_a_pure_loop_still_appear_and_recursion_is_optional()
    {
        using var dir = new TempDirectory("sc");
        Directory.CreateDirectory(dir.File("sub"));
        Tool.CreateQcow2(dir.File("sub/a.qcow2"), "1M");
        Tool.CreateQcow2(dir.File("sub/b.qcow2"), null, "a.qcow2");
        Tool.Run("qemu-img", "rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", dir.File("sub/a.qcow2")).EnsureSuccess();
        Tool.CreateQcow2(dir.File("top.qcow2"), "1M");

        var flat = StoreScan.Run(new[] { dir.Path }, false, new RecordingOperationContext()).Chains();
        Assert.Equal(new[] { "top.qcow2" }, flat.Select(c => c.Active.Name));

        var deep = StoreScan.Run(new[] { dir.Path }, true, new RecordingOperationContext()).Chains();
        Assert.Equal(2, deep.Count);
        var loop = deep.Single(c => c.Active.Name != "top.qcow2");
        Assert.Equal(ChainLayerState.Loop, loop.Base.State);
        Assert.Equal(3, loop.Depth);
    }

    [Fact]
    public void A_recursive_scan_survives_a_directory_symlink_loop_and_reads_each_file_once()
    {
        using var dir = new TempDirectory("sc");
        Directory.CreateDirectory(dir.File("sub"));
        Tool.CreateQcow2(dir.File("sub/base.qcow2"), "1M");
        Tool.CreateQcow2(dir.File("sub/top.qcow2"), null, "base.qcow2");
        Directory.CreateSymbolicLink(dir.File("sub/loop"), dir.Path);
        File.CreateSymbolicLink(dir.File("alias.qcow2"), dir.File("sub/top.qcow2"));

        var chains = StoreScan.Run(new[] { dir.Path }, true, new RecordingOperationContext()).Chains();

        var chain = Assert.Single(chains);
        Assert.Equal(2, chain.Depth);
        Assert.Empty(chain.Active.ReferencedBy);
        Assert.Equal(new[] { chain.Active.Path }, chain.Base.ReferencedBy);
    }

    /// <summary>
    /// The listing reads each entry's type from the directory itself (readdir's d_type): what it keeps and leaves
    /// must be what a stat of every entry would have told. Hidden files and odd names are images like any other; a
    /// FIFO is not read (and does not hang the scan); a dangling link is no image; a link to an image outside is
    /// followed once; a link to a directory is never entered; subdirectories only with recursion, to any depth.
    /// </summary>
    [Fact]
    public void The_listing_sorts_entries_by_their_own_type_as_stat_would()
    {
        using var dir = new TempDirectory("sc");
        AssertListingSortsByType(dir.Path);
    }

    /// <summary>
    /// Some file systems give readdir no entry types (DT_UNKNOWN): ext4 made without its filetype feature, older XFS,
    /// some network file systems. The listing then asks statx about each entry and must come to the same result.
    /// </summary>
    [Fact]
    public void The_listing_asks_about_each_entry_where_the_file_system_gives_no_types()
    {
        using var work = new TempDirectory("sc-untyped");
        var image = work.File("untyped.ext4");
        var mountPoint = work.File("mnt");
        Directory.CreateDirectory(mountPoint);
        Tool.Run("truncate", "-s", "32M", image).EnsureSuccess();
        Tool.Run("mkfs.ext4", "-q", "-F", "-O", "^filetype", image).EnsureSuccess();
        Tool.Run("mount", "-o", "loop", image, mountPoint).EnsureSuccess();
        try
        {
            var store = Path.Combine(mountPoint, "store");
            Directory.CreateDirectory(store);
            File.WriteAllText(Path.Combine(store, "probe"), "");
            Assert.Equal(0, EntryType(store, "probe")); // the premise: DT_UNKNOWN here
            File.Delete(Path.Combine(store, "probe"));
            AssertListingSortsByType(store);
        }
        finally
        {
            if (Tool.Run("umount", mountPoint).ExitCode != 0) Tool.Run("umount", "-l", mountPoint);
        }
    }

    /// <summary>readdir's d_type for <paramref name="name"/> in <paramref name="directory"/> (0: DT_UNKNOWN).</summary>
    private static int EntryType(string directory, string name)
    {
        var dir = KvmSnapshot.Linux.LibC.OpenDir(directory);
        Assert.NotEqual(IntPtr.Zero, dir);
        try
        {
            for (var entry = KvmSnapshot.Linux.LibC.ReadDir(dir); entry != IntPtr.Zero; entry = KvmSnapshot.Linux.LibC.ReadDir(dir))
            {
                if (System.Runtime.InteropServices.Marshal.PtrToStringUTF8(entry + 19) == name) return System.Runtime.InteropServices.Marshal.ReadByte(entry, 18);
            }
        }
        finally
        {
            KvmSnapshot.Linux.LibC.CloseDir(dir);
        }
        throw new InvalidOperationException($"'{name}' is not in '{directory}'");
    }

    private static void AssertListingSortsByType(string root)
    {
        var dir = new Rooted(root);
        using var outside = new TempDirectory("sc-out");
        Tool.CreateQcow2(dir.File(".hidden.qcow2"), "1M");
        Tool.CreateQcow2(dir.File("with space ünïcode.qcow2"), "1M");
        Tool.Run("mkfifo", dir.File("pipe.qcow2")).EnsureSuccess();
        File.CreateSymbolicLink(dir.File("dangling.qcow2"), dir.File("nothing-here.qcow2"));
        Tool.CreateQcow2(outside.File("far.qcow2"), "1M");
        File.CreateSymbolicLink(dir.File("far-link.qcow2"), outside.File("far.qcow2"));
        Directory.CreateDirectory(outside.File("linked"));
        Tool.CreateQcow2(outside.File("linked/behind-dir-link.qcow2"), "1M");
        Directory.CreateSymbolicLink(dir.File("dir-link"), outside.File("linked"));
        Directory.CreateDirectory(dir.File("a/b/c"));
        Tool.CreateQcow2(dir.File("a/b/c/deep.qcow2"), "1M");

        var flat = StoreScan.Run(new[] { dir.Path }, false, new RecordingOperationContext());
        var deep = StoreScan.Run(new[] { dir.Path }, true, new RecordingOperationContext());

        Assert.Equal(new[] { ".hidden.qcow2", "far-link.qcow2", "with space ünïcode.qcow2" },
            flat.ScannedImages.Select(n => Path.GetFileName(n.Path)).Order(StringComparer.Ordinal));
        Assert.Equal(new[] { ".hidden.qcow2", "deep.qcow2", "far-link.qcow2", "with space ünïcode.qcow2" },
            deep.ScannedImages.Select(n => Path.GetFileName(n.Path)).Order(StringComparer.Ordinal));
        Assert.Empty(flat.Incomplete);
        Assert.Empty(deep.Incomplete);
        Assert.DoesNotContain(deep.Images, n => n.Path.Contains("behind-dir-link", StringComparison.Ordinal));
    }

    private sealed record Rooted(string Path)
    {
        public string File(string name) => System.IO.Path.Combine(Path, name);
    }

    [Fact]
    public void A_thousand_images_scan_in_well_under_two_seconds_without_a_subprocess()
    {
        using var dir = new TempDirectory("sc");
        Tool.CreateQcow2(dir.File("t.qcow2"), "1M");
        var template = File.ReadAllBytes(dir.File("t.qcow2"));
        File.Delete(dir.File("t.qcow2"));
        // 100 chains of depth 10: header bytes copied and the backing name patched in (qemu-img create x1000 is slow).
        Tool.CreateQcow2(dir.File("probe-base.qcow2"), "1M");
        Tool.CreateQcow2(dir.File("probe.qcow2"), null, "probe-base.qcow2");
        var overlay = File.ReadAllBytes(dir.File("probe.qcow2"));
        File.Delete(dir.File("probe.qcow2"));
        File.Delete(dir.File("probe-base.qcow2"));
        for (var c = 0; c < 100; c++)
        {
            File.WriteAllBytes(dir.File($"c{c:D3}-0.qcow2"), template);
            for (var d = 1; d < 10; d++)
            {
                File.WriteAllBytes(dir.File($"c{c:D3}-{d}.qcow2"), Qcow2Bytes.WithBackingName(overlay, "probe-base.qcow2", $"c{c:D3}-{d - 1}.qcow2"));
            }
        }

        var ctx = new RecordingOperationContext();
        var watch = Stopwatch.StartNew();
        var chains = StoreScan.Run(new[] { dir.Path }, false, ctx).Chains();
        watch.Stop();

        Assert.Equal(100, chains.Count);
        Assert.All(chains, c => Assert.Equal(10, c.Depth));
        Assert.All(chains, c => Assert.True(c.IsComplete));
        Assert.Empty(ctx.VerboseMessages); // no qemu-img ran
        Assert.True(watch.Elapsed.TotalSeconds < 2, $"scan took {watch.Elapsed.TotalMilliseconds} ms");
    }
}

/// <summary>Rewrites the backing file name of a qcow2 overlay's bytes (same length names only keep offsets valid).</summary>
internal static class Qcow2Bytes
{
    public static byte[] WithBackingName(byte[] overlay, string oldName, string newName)
    {
        var offset = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(overlay.AsSpan(8));
        var length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(overlay.AsSpan(16));
        Assert.Equal(oldName, System.Text.Encoding.UTF8.GetString(overlay, offset, length));
        var copy = (byte[])overlay.Clone();
        var bytes = System.Text.Encoding.UTF8.GetBytes(newName);
        Assert.True(bytes.Length <= length + 64, "name too long for the test patcher");
        // The name sits after the header extensions with room to the end of the first cluster.
        bytes.CopyTo(copy, offset);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(16), (uint)bytes.Length);
        return copy;
    }

    /// <summary>
    /// Makes an overlay without a recorded backing format, as old qemu-img versions wrote them (7.2 refuses to):
    /// the backing-format header extension gets a type qemu does not know, so it is ignored.
    /// </summary>
    public static void DropBackingFormat(string image)
    {
        using var f = new System.IO.FileStream(image, System.IO.FileMode.Open, System.IO.FileAccess.ReadWrite);
        var head = new byte[4096];
        f.ReadExactly(head);
        var offset = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(100)); // header_length (v3)
        while (offset + 8 <= head.Length)
        {
            var type = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(offset));
            var length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(offset + 4));
            if (type == 0) break;
            if (type == 0xE2792ACA)
            {
                f.Position = offset;
                var unknown = new byte[4];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(unknown, 0x0B5E0B5E);
                f.Write(unknown);
                return;
            }
            offset += 8 + ((length + 7) & ~7);
        }
        throw new System.InvalidOperationException("no backing format extension in " + image);
    }
}
