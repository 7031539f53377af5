using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Model;
using KvmSnapshot.Offline;
using KvmSnapshot.QemuImg;
using KvmSnapshot.Qcow2;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Offline;

/// <summary>
/// The native map of a chain's view (<see cref="ViewMap"/>, from the layers' L1/L2 tables), which the commit and pull
/// verification now uses instead of two qemu-img map processes, against real qemu-img: the guest bytes it places must
/// be the bytes <c>qemu-img convert -O raw</c> reads from the view, and each range must come from the layer qemu-img map
/// names (data at the same file offset, zeros at the same depth). Where it cannot answer exactly (compressed clusters,
/// subclusters, a corrupt entry, layers that are not the chain their headers name) it must say so (null), never guess.
/// </summary>
public sealed class ViewMapAgreementTests
{
    private static ChainLayer Layer(string path, string format = "qcow2") => new() { Path = path, Format = format };

    private static void Io(string image, string command, string format = "qcow2")
        => Tool.Run("qemu-io", "-f", format, "-c", command, image).EnsureSuccess();

    private static void Create(string path, string size, string? backing = null, string backingFormat = "qcow2", string options = "")
    {
        var args = new List<string> { "create", "-q", "-f", "qcow2" };
        if (options.Length > 0) args.AddRange(new[] { "-o", options });
        if (backing is not null) args.AddRange(new[] { "-b", backing, "-F", backingFormat });
        args.Add(path);
        args.Add(size);
        Tool.Run("qemu-img", args.ToArray()).EnsureSuccess();
    }

    /// <summary>Asserts that the native map and qemu-img map agree on <paramref name="layers"/>'s view, and that it reads the view's bytes.</summary>
    private static void AssertAgrees(TempDirectory dir, IReadOnlyList<ChainLayer> layers)
    {
        var native = ViewMap.TryMap(layers);
        Assert.NotNull(native);
        var qemu = QemuImgCommands.Default.Map(layers[0].Path, layers[0].Format!, new RecordingOperationContext());

        // The same cover of the guest disk, without gaps or overlaps.
        AssertCovers(native!, qemu.Sum(e => e.Length));

        // Range by range, cut at the boundaries of both maps: data from the same file offset at the same depth, zeros
        // as zeros (at the same depth where a layer holds them).
        var cuts = native!.SelectMany(e => new[] { e.Start, e.Start + e.Length }).Concat(qemu.SelectMany(e => new[] { e.Start, e.Start + e.Length })).Distinct().OrderBy(x => x).ToList();
        for (var i = 0; i + 1 < cuts.Count; i++)
        {
            var at = cuts[i];
            var n = native.Single(e => e.Start <= at && at < e.Start + e.Length);
            var q = qemu.Single(e => e.Start <= at && at < e.Start + e.Length);
            var nData = n.Data && !n.Zero;
            var qData = q.Data && !q.Zero;
            if (nData && !qData && q.Offset is { } zeroAt)
            {
                // An allocated cluster whose file range is a hole (preallocation=metadata): qemu-img map asks the
                // file system and says zeros; the native map says the cluster, which reads as zeros (checked below).
                Assert.Equal(q.Depth, n.Depth);
                Assert.Equal(zeroAt + (at - q.Start), n.Offset + (at - n.Start));
                continue;
            }
            Assert.True(nData == qData, $"at {at}: native data={nData} depth {n.Depth}, qemu-img map data={qData} depth {q.Depth}");
            if (nData)
            {
                Assert.Equal(q.Depth, n.Depth);
                Assert.Equal(q.Offset + (at - q.Start), n.Offset + (at - n.Start));
            }
            else if (q.Present == true && n.Present == true)
            {
                Assert.True(q.Depth == n.Depth, $"zeros at {at}: native depth {n.Depth}, qemu-img map depth {q.Depth}");
            }
        }

        AssertPlacesTheViewsBytes(dir, layers, native);
    }

    /// <summary>What the native map places (its data extents read from their files, zeros elsewhere) is what QEMU reads from the view.</summary>
    private static void AssertPlacesTheViewsBytes(TempDirectory dir, IReadOnlyList<ChainLayer> layers, IReadOnlyList<QemuImgMapExtent> native)
    {
        var raw = dir.File($"view-{Guid.NewGuid():N}.raw");
        Tool.Run("qemu-img", "convert", "-U", "-f", layers[0].Format!, "-O", "raw", layers[0].Path, raw).EnsureSuccess();
        var expected = File.ReadAllBytes(raw);
        var placed = new byte[expected.Length];
        foreach (var e in native.Where(e => e.Data && !e.Zero))
        {
            using var file = File.OpenRead(layers[e.Depth].Path);
            file.Position = e.Offset!.Value;
            var n = file.ReadAtLeast(placed.AsSpan((int)e.Start, (int)e.Length), (int)e.Length, throwOnEndOfStream: false);
            Assert.True(n > 0, $"nothing read at offset {e.Offset} of {layers[e.Depth].Path}");
        }
        var first = expected.AsSpan().CommonPrefixLength(placed);
        Assert.True(first == expected.Length, $"the native map places other bytes than the view reads, from guest offset {first}");
    }

    private static void AssertCovers(IReadOnlyList<QemuImgMapExtent> map, long size)
    {
        long at = 0;
        foreach (var e in map)
        {
            Assert.Equal(at, e.Start);
            Assert.True(e.Length > 0);
            at += e.Length;
        }
        Assert.Equal(size, at);
    }

    [Fact]
    public void A_three_layer_chain_with_data_zero_flags_and_holes_agrees_with_qemu_img_map_and_reads_the_view()
    {
        using var dir = new TempDirectory("vmap");
        Create(dir.File("base.qcow2"), "32M");
        Io(dir.File("base.qcow2"), "write -P 0x11 0 2M");
        Io(dir.File("base.qcow2"), "write -P 0x12 20M 3M");
        Create(dir.File("layer.qcow2"), "32M", "base.qcow2");
        Io(dir.File("layer.qcow2"), "write -P 0x5a 1M 8M");
        Io(dir.File("layer.qcow2"), "write -z 0 512k");          // zero flag over the base's data
        Io(dir.File("layer.qcow2"), "write -z -u 21M 1M");       // zeros that may unmap
        Create(dir.File("top.qcow2"), "32M", "layer.qcow2");
        Io(dir.File("top.qcow2"), "write -P 0x77 12M 1M");
        Io(dir.File("top.qcow2"), "write -P 0x78 1536k 64k");    // over the layer's data

        AssertAgrees(dir, new[] { Layer(dir.File("top.qcow2")), Layer(dir.File("layer.qcow2")), Layer(dir.File("base.qcow2")) });
        AssertAgrees(dir, new[] { Layer(dir.File("layer.qcow2")), Layer(dir.File("base.qcow2")) });
    }

    [Fact]
    public void Clusters_written_out_of_order_map_to_their_scattered_file_offsets()
    {
        using var dir = new TempDirectory("vmap");
        Create(dir.File("base.qcow2"), "16M");
        for (var i = 15; i >= 0; i -= 3) Io(dir.File("base.qcow2"), $"write -P 0x{0x20 + i:x2} {i}M 64k");
        Create(dir.File("top.qcow2"), "16M", "base.qcow2");
        for (var i = 14; i >= 0; i -= 4) Io(dir.File("top.qcow2"), $"write -P 0x{0x40 + i:x2} {i}M 128k");

        AssertAgrees(dir, new[] { Layer(dir.File("top.qcow2")), Layer(dir.File("base.qcow2")) });
    }

    [Theory]
    [InlineData("cluster_size=512")]
    [InlineData("cluster_size=2M")]
    [InlineData("compat=0.10")]
    [InlineData("preallocation=metadata", "")]   // qemu allows preallocation above a backing file only with subclusters
    [InlineData("cluster_size=4096,refcount_bits=1")]
    public void Other_cluster_sizes_and_versions_agree(string options, string? topOptions = null)
    {
        using var dir = new TempDirectory("vmap");
        Create(dir.File("base.qcow2"), "12M", options: options);
        Io(dir.File("base.qcow2"), "write -P 0x31 0 3M");
        Create(dir.File("top.qcow2"), "12M", "base.qcow2", options: topOptions ?? options);
        Io(dir.File("top.qcow2"), "write -P 0x32 2M 5M");
        Io(dir.File("top.qcow2"), "write -z 9M 1M");
        Io(dir.File("top.qcow2"), "discard 2M 512k");

        AssertAgrees(dir, new[] { Layer(dir.File("top.qcow2")), Layer(dir.File("base.qcow2")) });
    }

    [Fact]
    public void A_backing_file_shorter_than_the_image_above_reads_zeros_past_its_end()
    {
        using var dir = new TempDirectory("vmap");
        Create(dir.File("base.qcow2"), "4M");
        Io(dir.File("base.qcow2"), "write -P 0x51 0 4M");
        Create(dir.File("mid.qcow2"), "6M", "base.qcow2");
        Io(dir.File("mid.qcow2"), "write -P 0x52 5M 64k");
        Create(dir.File("top.qcow2"), "10M", "mid.qcow2");
        Io(dir.File("top.qcow2"), "write -P 0x53 9M 64k");

        AssertAgrees(dir, new[] { Layer(dir.File("top.qcow2")), Layer(dir.File("mid.qcow2")), Layer(dir.File("base.qcow2")) });
    }

    [Fact]
    public void A_raw_base_is_data_at_the_guest_offset()
    {
        using var dir = new TempDirectory("vmap");
        Tool.CreateRaw(dir.File("base.raw"), "8M");
        Io(dir.File("base.raw"), "write -P 0x61 1M 2M", "raw");
        Create(dir.File("top.qcow2"), "8M", "base.raw", "raw");
        Io(dir.File("top.qcow2"), "write -P 0x62 2M 1M");

        var layers = new[] { Layer(dir.File("top.qcow2")), Layer(dir.File("base.raw"), "raw") };
        var native = ViewMap.TryMap(layers)!;
        Assert.Contains(native, e => e.Depth == 1 && e.Data && e.Offset == e.Start);
        // qemu-img map reports the raw file's holes as zeros where the native map says data (which reads as zeros):
        // compare the bytes, which is what the verification reads.
        AssertPlacesTheViewsBytes(dir, layers, native);
    }

    [Fact]
    public void A_raw_block_device_is_declined_for_qemu_img_map_which_asks_the_device_its_size()
    {
        // Its length as a file is 0: taken for a regular file, it would read as an empty base.
        using var dir = new TempDirectory("vmap");
        Tool.CreateRaw(dir.File("disk.raw"), "8M");
        Io(dir.File("disk.raw"), "write -P 0x63 0 1M", "raw");
        var device = Tool.Run("losetup", "-f", "--show", dir.File("disk.raw")).EnsureSuccess().StdOut.Trim();
        try
        {
            Create(dir.File("top.qcow2"), "8M", device, "raw");
            Assert.Null(ViewMap.TryMap(new[] { Layer(dir.File("top.qcow2")), Layer(device, "raw") }));
            Assert.NotNull(ViewMap.TryMap(new[] { Layer(dir.File("disk.raw"), "raw") }));
        }
        finally
        {
            Tool.Run("losetup", "-d", device);
        }
    }

    [Fact]
    public void Compressed_clusters_and_subclusters_are_declined_not_guessed()
    {
        using var dir = new TempDirectory("vmap");
        Create(dir.File("plain.qcow2"), "8M");
        Io(dir.File("plain.qcow2"), "write -P 0x71 0 2M");
        Tool.Run("qemu-img", "convert", "-c", "-f", "qcow2", "-O", "qcow2", dir.File("plain.qcow2"), dir.File("compressed.qcow2")).EnsureSuccess();
        Create(dir.File("extended.qcow2"), "8M", options: "extended_l2=on");
        Io(dir.File("extended.qcow2"), "write -P 0x72 4k 4k");

        Assert.NotNull(ViewMap.TryMap(new[] { Layer(dir.File("plain.qcow2")) }));
        Assert.Null(ViewMap.TryMap(new[] { Layer(dir.File("compressed.qcow2")) }));
        Assert.Null(ViewMap.TryMap(new[] { Layer(dir.File("extended.qcow2")) }));
        Assert.Null(ViewMap.TryMap(new[] { Layer(dir.File("plain.qcow2"), "vmdk") }));
    }

    [Fact]
    public void Layers_that_are_not_the_chain_the_headers_name_are_declined()
    {
        using var dir = new TempDirectory("vmap");
        Create(dir.File("base.qcow2"), "8M");
        Create(dir.File("other.qcow2"), "8M");
        Create(dir.File("top.qcow2"), "8M", "base.qcow2");

        Assert.NotNull(ViewMap.TryMap(new[] { Layer(dir.File("top.qcow2")), Layer(dir.File("base.qcow2")) }));
        Assert.Null(ViewMap.TryMap(new[] { Layer(dir.File("top.qcow2")), Layer(dir.File("other.qcow2")) }));
        Assert.Null(ViewMap.TryMap(new[] { Layer(dir.File("top.qcow2")) }));                 // its backing file left out
        Assert.Null(ViewMap.TryMap(new[] { Layer(dir.File("base.qcow2")), Layer(dir.File("other.qcow2")) })); // base has none

        // Said why: the receiving image of a merge checked after the data step fails on this, not just falls back.
        Assert.Null(ViewMap.TryMap(new[] { Layer(dir.File("top.qcow2")), Layer(dir.File("other.qcow2")) }, out var why));
        Assert.Contains("'base.qcow2' as its backing file", why);
        Tool.Run("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2", dir.File("top.qcow2")).EnsureSuccess();
        Assert.Null(ViewMap.TryMap(new[] { Layer(dir.File("top.qcow2")), Layer(dir.File("base.qcow2")) }, out var missing));
        Assert.Contains("'gone.qcow2' as its backing file", missing);
    }

    [Fact]
    public void An_L2_entry_with_reserved_bits_set_is_declined()
    {
        using var dir = new TempDirectory("vmap");
        var image = dir.File("top.qcow2");
        Create(image, "8M");
        Io(image, "write -P 0x7a 0 64k");
        var l2 = FirstL2Table(image);
        using (var file = new FileStream(image, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = l2 + 7; // the low byte of the first entry: set reserved bit 1
            var b = file.ReadByte();
            file.Position = l2 + 7;
            file.WriteByte((byte)(b | 0x02));
        }
        Assert.Null(Qcow2ClusterMap.TryRead(image, out _, out _));
    }

    [Fact]
    public void An_L1_table_that_points_outside_the_file_is_declined()
    {
        using var dir = new TempDirectory("vmap");
        var image = dir.File("top.qcow2");
        Create(image, "8M");
        Io(image, "write -P 0x7b 0 64k");
        var header = Qcow2Reader.Read(image, includeSnapshots: false).Header;
        using (var file = new FileStream(image, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = (long)header.L1TableOffset;
            var far = BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((1UL << 63) | (1UL << 40)));
            file.Write(far);
        }
        Assert.Null(Qcow2ClusterMap.TryRead(image, out _, out _));
    }

    [Fact]
    public void Random_damage_to_the_header_and_tables_gives_a_whole_map_null_or_a_typed_error_only()
    {
        using var dir = new TempDirectory("vmap");
        var image = dir.File("image.qcow2");
        Create(image, "64M", options: "cluster_size=4096");
        foreach (var at in new[] { "0", "5M", "33M", "63M" }) Io(image, $"write -P 0x5c {at} 8k");
        Io(image, "write -z 40M 16k");
        var original = File.ReadAllBytes(image);
        var header = Qcow2Reader.Read(image, includeSnapshots: false).Header;
        var l1 = (int)header.L1TableOffset;
        var l2 = (int)FirstL2Table(image);
        var random = new Random(20261202);
        var damagedPath = dir.File("damaged.qcow2");
        int mapped = 0, declined = 0, rejected = 0;
        for (var iteration = 0; iteration < 300; iteration++)
        {
            var damaged = (byte[])original.Clone();
            for (var f = random.Next(1, 5); f > 0; f--)
            {
                var offset = random.Next(3) switch
                {
                    0 => random.Next(104),                       // the header's fields
                    1 => l1 + random.Next(64),                   // the first L1 entries
                    _ => l2 + random.Next(4096),                 // the first L2 table
                };
                damaged[offset] = (byte)(random.Next(2) == 0 ? random.Next(256) : damaged[offset] ^ (1 << random.Next(8)));
            }
            File.WriteAllBytes(damagedPath, damaged);
            try
            {
                var runs = Qcow2ClusterMap.TryRead(damagedPath, out var size, out _);
                if (runs is null) { declined++; continue; }
                mapped++;
                long covered = 0;
                foreach (var run in runs)
                {
                    Assert.Equal(covered, run.Start);
                    Assert.True(run.Length > 0);
                    if (run.Kind == Qcow2ClusterMap.Kind.Data) Assert.InRange(run.Offset, 1, damaged.Length - 1);
                    covered += run.Length;
                }
                Assert.Equal(size, covered);
            }
            catch (KvmSnapshot.Errors.KvmSnapshotException)
            {
                rejected++;
            }
        }
        // The property held on every kind of outcome, not only on one.
        Assert.True(mapped > 0 && declined > 0 && rejected > 0, $"mapped {mapped}, declined {declined}, rejected {rejected}");
    }

    private static long FirstL2Table(string image)
    {
        var header = Qcow2Reader.Read(image, includeSnapshots: false).Header;
        using var file = File.OpenRead(image);
        file.Position = (long)header.L1TableOffset;
        var entry = new byte[8];
        file.ReadExactly(entry);
        return (long)(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(entry) & 0x00FF_FFFF_FFFF_FE00UL);
    }
}
