using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Management.Automation;
using System.Text;
using KvmSnapshot.Errors;
using KvmSnapshot.Qcow2;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;
using static KvmSnapshot.Tests.Qcow2.Qcow2TestImage;

namespace KvmSnapshot.Tests.Qcow2;

/// <summary>
/// Damaged copies of real images: the reader must name the exact problem with a stable ErrorId, quickly, without
/// touching the file, and (where qemu has an opinion) refuse exactly what qemu-img refuses.
/// </summary>
public sealed class Qcow2ReaderErrorTests
{
    /// <summary>A v3 overlay on base.qcow2 (-F qcow2) with two internal snapshots: every structure is present.</summary>
    private static string MakeOverlay(TempDirectory dir, string compat = "1.1")
    {
        var basePath = dir.File("base.qcow2");
        Tool.CreateQcow2(basePath, "64M");
        var overlay = dir.File("overlay.qcow2");
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-o", $"compat={compat}", "-b", "base.qcow2", "-F", "qcow2", overlay).EnsureSuccess();
        Tool.Run("qemu-img", "snapshot", "-c", "first", overlay).EnsureSuccess();
        Tool.Run("qemu-img", "snapshot", "-c", "second", overlay).EnsureSuccess();
        Assert.False(QemuRefuses(overlay));
        Assert.Equal(2, Qcow2Reader.Read(overlay).Snapshots.Count);
        return overlay;
    }

    public static IEnumerable<object[]> Corruptions() => new[]
    {
        // name, expected ErrorId, does qemu-img info -f qcow2 refuse it too, what the message must say
        new object[] { "bad magic", ErrorIds.DiskImageNotQcow2, true, "not the qcow2 magic" },
        new object[] { "version 4", ErrorIds.DiskImageMalformed, true, "header version 4 is not" },
        new object[] { "version 0", ErrorIds.DiskImageMalformed, true, "header version 0 is not" },
        new object[] { "cluster_bits 40", ErrorIds.DiskImageMalformed, true, "cluster_bits is 40" },
        new object[] { "cluster_bits 63", ErrorIds.DiskImageMalformed, true, "cluster_bits is 63" },
        new object[] { "cluster_bits 8", ErrorIds.DiskImageMalformed, true, "cluster_bits is 8" },
        new object[] { "unknown incompatible bit 40", ErrorIds.DiskImageUnsupportedFeature, true, "incompatible feature bit 40" },
        new object[] { "unknown incompatible bit 63", ErrorIds.DiskImageUnsupportedFeature, true, "incompatible feature bit 63" },
        new object[] { "extension length past the cluster", ErrorIds.DiskImageMalformed, true, "claims 65536 bytes, which runs past the backing file name" },
        new object[] { "extension cut off by the backing name", ErrorIds.DiskImageMalformed, true, "cut off by the backing file name at 0x74" },
        new object[] { "backing format too long", ErrorIds.DiskImageMalformed, true, "backing format extension is 16 bytes" },
        new object[] { "snapshot count 0xFFFFFFFF", ErrorIds.DiskImageMalformed, true, "4294967295 internal snapshots" },
        new object[] { "snapshot count 65537", ErrorIds.DiskImageMalformed, true, "65537 internal snapshots" },
        new object[] { "snapshot count 65536 beyond the file", ErrorIds.DiskImageMalformed, false, "cannot hold 65536 snapshots" },
        // qemu reads past the end of a file as zeros, so it lists two empty snapshots here; the reader says why not.
        new object[] { "snapshot table offset past EOF", ErrorIds.DiskImageMalformed, false, "snapshot table at 0x40000000000 cannot hold 2 snapshots" },
        new object[] { "snapshot table offset unaligned", ErrorIds.DiskImageMalformed, true, "is not a non-zero multiple of the cluster size" },
        new object[] { "snapshot extra data 0xFFFFFFFF", ErrorIds.DiskImageMalformed, true, "4294967295 bytes of extra data" },
        new object[] { "snapshot extra data 1025", ErrorIds.DiskImageMalformed, true, "1025 bytes of extra data" },
        new object[] { "backing offset past EOF", ErrorIds.DiskImageMalformed, true, "backing file name offset 0xfffffffff0 lies outside the first cluster" },
        new object[] { "backing offset past the cluster", ErrorIds.DiskImageMalformed, true, "lies outside the first cluster" },
        new object[] { "backing size 2^31", ErrorIds.DiskImageMalformed, true, "backing file name is 2147483648 bytes long" },
        new object[] { "backing size 1024", ErrorIds.DiskImageMalformed, true, "backing file name is 1024 bytes long" },
        new object[] { "backing name crosses the cluster end", ErrorIds.DiskImageMalformed, true, "backing file name at offset 0xfffc (100 bytes) extends beyond the first cluster" },
        new object[] { "header_length 96", ErrorIds.DiskImageMalformed, true, "header_length is 96" },
        new object[] { "header_length beyond the cluster", ErrorIds.DiskImageMalformed, true, "exceeds the cluster size" },
        new object[] { "refcount_order 7", ErrorIds.DiskImageMalformed, true, "refcount_order is 7" },
        new object[] { "compression type 2", ErrorIds.DiskImageUnsupportedFeature, true, "compression type 2" },
        new object[] { "zstd without its feature bit", ErrorIds.DiskImageMalformed, true, "incompatible feature bit is not set" },
        new object[] { "zlib with the compression feature bit", ErrorIds.DiskImageMalformed, true, "compression type is zlib" },
        new object[] { "crypt method 3", ErrorIds.DiskImageUnsupportedFeature, true, "encryption method 3" },
        new object[] { "virtual size 2^62", ErrorIds.DiskImageMalformed, true, "virtual size 4611686018427387904 is too big for 65536-byte clusters" },
        new object[] { "virtual size 1 TiB with a one-entry L1 table", ErrorIds.DiskImageMalformed, true, "has 1 entries but the virtual size 1099511627776 needs 2048" },
        new object[] { "virtual size 2^63", ErrorIds.DiskImageMalformed, true, "does not fit in a signed 64-bit integer" },
        new object[] { "L1 table larger than qemu allows", ErrorIds.DiskImageMalformed, true, "more than the 4194304 qemu allows" },
        new object[] { "extended L2 with 4k clusters", ErrorIds.DiskImageMalformed, true, "extended L2 entries need clusters of at least 16384 bytes" },
        new object[] { "truncated to 3 bytes", ErrorIds.DiskImageNotQcow2, true, "only 3 bytes long" },
        new object[] { "truncated to 50 bytes", ErrorIds.DiskImageMalformed, true, "shorter than the 72-byte qcow2 header" },
        new object[] { "truncated inside the v3 header", ErrorIds.DiskImageMalformed, true, "the version 3 header fields at offset 0x48" },
        new object[] { "truncated inside the feature table", ErrorIds.DiskImageMalformed, false, "header extension 0x6803f857" },
        new object[] { "truncated inside the backing name", ErrorIds.DiskImageMalformed, false, "the backing file name at offset 0x210" },
        new object[] { "truncated inside the first snapshot entry", ErrorIds.DiskImageMalformed, false, "cannot hold 2 snapshots" },
        new object[] { "truncated inside the second snapshot entry", ErrorIds.DiskImageMalformed, false, "snapshot table entry 2 of 2 at offset" },
        new object[] { "truncated inside the second snapshot name", ErrorIds.DiskImageMalformed, false, "snapshot table entry 2 of 2 at offset" },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void Corrupted_image_is_rejected_with_a_stable_error(string corruption, string errorId, bool qemuRefusesToo, string because)
    {
        using var dir = new TempDirectory("q2bad");
        var path = MakeOverlay(dir);
        var clusterSize = 1L << (int)ReadU32(path, 20);
        var snapshotTable = (long)ReadU64(path, 64);
        switch (corruption)
        {
            case "bad magic": WriteBytes(path, 3, new byte[] { 0xFA }); break;
            case "version 4": WriteU32(path, 4, 4); break;
            case "version 0": WriteU32(path, 4, 0); break;
            case "cluster_bits 40": WriteU32(path, 20, 40); break;
            case "cluster_bits 63": WriteU32(path, 20, 63); break;
            case "cluster_bits 8": WriteU32(path, 20, 8); break;
            case "unknown incompatible bit 40": WriteU64(path, 72, 1UL << 40); break;
            case "unknown incompatible bit 63": WriteU64(path, 72, 1UL << 63); break;
            case "extension length past the cluster": WriteU32(path, FindExtension(path, FeatureNameTableExtension) + 4, 0x10000); break;
            case "extension cut off by the backing name": WriteU64(path, 8, 0x74); break;
            case "backing format too long": WriteU32(path, FindExtension(path, BackingFormatExtension) + 4, 16); break;
            case "snapshot count 0xFFFFFFFF": WriteU32(path, 60, 0xFFFFFFFF); break;
            case "snapshot count 65537": WriteU32(path, 60, 65537); break;
            case "snapshot count 65536 beyond the file": WriteU32(path, 60, 65536); break;
            case "snapshot table offset past EOF": WriteU64(path, 64, 0x40000000000); break;
            case "snapshot table offset unaligned": WriteU64(path, 64, (ulong)snapshotTable + 8); break;
            case "snapshot extra data 0xFFFFFFFF": WriteU32(path, snapshotTable + 36, 0xFFFFFFFF); break;
            case "snapshot extra data 1025": WriteU32(path, snapshotTable + 36, 1025); break;
            case "backing offset past EOF": WriteU64(path, 8, 0xFFFFFFFFF0); break;
            case "backing offset past the cluster": WriteU64(path, 8, (ulong)clusterSize + 8); break;
            case "backing size 2^31": WriteU32(path, 16, 0x80000000); break;
            case "backing size 1024": WriteU32(path, 16, 1024); break;
            case "backing name crosses the cluster end": WriteU64(path, 8, (ulong)clusterSize - 4); WriteU32(path, 16, 100); break;
            case "header_length 96": WriteU32(path, 100, 96); break;
            case "header_length beyond the cluster": WriteU32(path, 100, (uint)clusterSize + 8); break;
            case "refcount_order 7": WriteU32(path, 96, 7); break;
            case "compression type 2": WriteU64(path, 72, 1UL << 3); WriteBytes(path, 104, new byte[] { 2 }); break;
            case "zstd without its feature bit": WriteBytes(path, 104, new byte[] { 1 }); break;
            case "zlib with the compression feature bit": WriteU64(path, 72, 1UL << 3); break;
            case "crypt method 3": WriteU32(path, 32, 3); break;
            case "virtual size 2^62": WriteU64(path, 24, 1UL << 62); break;
            case "virtual size 1 TiB with a one-entry L1 table": WriteU64(path, 24, 1UL << 40); break;
            case "virtual size 2^63": WriteU64(path, 24, 1UL << 63); break;
            case "L1 table larger than qemu allows": WriteU32(path, 36, 32 * 1024 * 1024 / 8 + 1); break;
            case "extended L2 with 4k clusters": WriteU64(path, 72, 1UL << 4); WriteU32(path, 20, 12); break;
            case "truncated to 3 bytes": Truncate(path, 3); break;
            case "truncated to 50 bytes": Truncate(path, 50); break;
            case "truncated inside the v3 header": Truncate(path, 90); break;
            case "truncated inside the feature table": Truncate(path, 0x100); break;
            case "truncated inside the backing name": Truncate(path, 0x212); break;
            // Entry 1 ("1", "first", 24 bytes of extra data) spans 72 bytes; entry 2's name ends at +143.
            case "truncated inside the first snapshot entry": Truncate(path, snapshotTable + 20); break;
            case "truncated inside the second snapshot entry": Truncate(path, snapshotTable + 100); break;
            case "truncated inside the second snapshot name": Truncate(path, snapshotTable + 140); break;
            default: throw new ArgumentException(corruption);
        }
        Assert.NotEqual(Tool.Sha256(dir.File("base.qcow2")), Tool.Sha256(path)); // the patch happened

        var rejected = AssertRejected(path, errorId);

        // The message pins the cause: a later check tripping over the damage would pass the ErrorId test alone.
        Assert.Contains(because, rejected.Message, StringComparison.Ordinal);

        var expectedCategory = errorId switch
        {
            ErrorIds.DiskImageUnsupportedFeature => KvmErrorKind.NotImplemented,
            _ => KvmErrorKind.InvalidData,
        };
        Assert.Equal(expectedCategory, rejected.Category);
        if (qemuRefusesToo)
        {
            Assert.True(QemuRefuses(path), $"qemu-img opens the image with '{corruption}' although the reader refused it: {rejected.Message}");
        }
    }

    [Fact]
    public void Unknown_incompatible_bit_is_named_from_the_feature_name_table()
    {
        using var dir = new TempDirectory("q2feat");
        var path = MakeOverlay(dir);
        // Turn the "extended L2 entries" table entry into a description of bit 40, then set bit 40.
        var table = FindExtension(path, FeatureNameTableExtension) + 8;
        var entries = (int)ReadU32(path, table - 4) / 48;
        var patched = false;
        for (var i = 0; i < entries; i++)
        {
            var entry = ReadBytes(path, table + i * 48, 48);
            if (entry[0] == 0 && entry[1] == 4)
            {
                var name = new byte[46];
                Encoding.ASCII.GetBytes("time travel journal").CopyTo(name, 0);
                WriteBytes(path, table + i * 48 + 1, new byte[] { 40 });
                WriteBytes(path, table + i * 48 + 2, name);
                patched = true;
            }
        }
        Assert.True(patched);
        WriteU64(path, 72, (1UL << 40) | (1UL << 41));

        var rejected = AssertRejected(path, ErrorIds.DiskImageUnsupportedFeature);

        Assert.Contains("bit 40 ('time travel journal')", rejected.Message, StringComparison.Ordinal);
        Assert.Contains("bit 41", rejected.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("bit 41 (", rejected.Message, StringComparison.Ordinal);
        Assert.Contains("time travel journal", Tool.Run("qemu-img", "info", "-U", path).StdErr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0.10")]
    [InlineData("1.1")]
    public void Extension_running_past_the_first_cluster_is_rejected_without_a_backing_file(string compat)
    {
        using var dir = new TempDirectory("q2ext");
        var path = dir.File("disk.qcow2");
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-o", $"compat={compat},cluster_size=4096", path, "16M").EnsureSuccess();
        var headerEnd = compat == "0.10" ? 72u : ReadU32(path, 100);
        // An extension nobody knows whose data reaches one byte past the 4 KiB first cluster.
        WriteU32(path, headerEnd, 0x12345678);
        WriteU32(path, headerEnd + 4, 4096 - headerEnd - 8 + 1);

        var rejected = AssertRejected(path, ErrorIds.DiskImageMalformed);

        Assert.Contains("header extension 0x12345678 at 0x" + headerEnd.ToString("x", System.Globalization.CultureInfo.InvariantCulture) + " claims", rejected.Message, StringComparison.Ordinal);
        Assert.Contains("runs past the end of the first cluster (4096 bytes)", rejected.Message, StringComparison.Ordinal);
        Assert.True(QemuRefuses(path));
        // One byte less ends exactly at the cluster boundary: the walk stops there and both readers accept it.
        WriteU32(path, headerEnd + 4, 4096 - headerEnd - 8);
        Assert.False(QemuRefuses(path));
        Assert.Equal(16L << 20, Qcow2Reader.Read(path).VirtualSize);
    }

    [Theory]
    [InlineData("0.10")]
    [InlineData("1.1")]
    public void Messages_say_what_is_wrong(string compat)
    {
        using var dir = new TempDirectory("q2msg");
        var path = MakeOverlay(dir, compat);
        WriteU32(path, 60, 0xFFFFFFFF);
        Assert.Contains("4294967295 internal snapshots", AssertRejected(path, ErrorIds.DiskImageMalformed).Message, StringComparison.Ordinal);
        WriteU32(path, 60, 2);
        WriteU32(path, 16, 0x80000000);
        Assert.Contains("backing file name is 2147483648 bytes", AssertRejected(path, ErrorIds.DiskImageMalformed).Message, StringComparison.Ordinal);
        WriteU32(path, 4, 4);
        Assert.Contains("header version 4", AssertRejected(path, ErrorIds.DiskImageMalformed).Message, StringComparison.Ordinal);
        WriteBytes(path, 0, Encoding.ASCII.GetBytes("RIFF"));
        Assert.Contains("not the qcow2 magic", AssertRejected(path, ErrorIds.DiskImageNotQcow2).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_file_and_missing_directory_are_not_found()
    {
        using var dir = new TempDirectory("q2miss");
        var missing = dir.File("nope.qcow2");
        var rejected = AssertRejected(missing, ErrorIds.DiskImageNotFound);
        Assert.Equal(KvmErrorKind.ObjectNotFound, rejected.Category);
        AssertRejected(dir.File("no-such-dir/disk.qcow2"), ErrorIds.DiskImageNotFound);
        var file = dir.File("plain");
        File.WriteAllText(file, "x");
        AssertRejected(file + "/disk.qcow2", ErrorIds.DiskImageNotFound);
    }

    [Fact]
    public void Directory_is_rejected_as_a_directory()
    {
        using var dir = new TempDirectory("q2dir");
        var rejected = AssertRejected(dir.Path, ErrorIds.DiskImageIsDirectory);
        Assert.Equal(KvmErrorKind.InvalidArgument, rejected.Category);
    }

    [Fact]
    public void Raw_image_empty_file_and_fifo_are_not_qcow2()
    {
        using var dir = new TempDirectory("q2raw");
        var raw = dir.File("disk.raw");
        Tool.CreateRaw(raw);
        Assert.Equal(KvmErrorKind.InvalidData, AssertRejected(raw, ErrorIds.DiskImageNotQcow2).Category);
        var empty = dir.File("empty.qcow2");
        File.WriteAllBytes(empty, Array.Empty<byte>());
        Assert.Contains("empty", AssertRejected(empty, ErrorIds.DiskImageNotQcow2).Message, StringComparison.Ordinal);
        var fifo = dir.File("fifo.qcow2");
        Tool.Run("mkfifo", fifo).EnsureSuccess();
        AssertRejected(fifo, ErrorIds.DiskImageNotQcow2, hashFile: false); // returns at once instead of waiting for a writer
    }

    [Fact]
    public void Symlink_loop_is_not_found_and_empty_path_is_an_invalid_name()
    {
        using var dir = new TempDirectory("q2loop");
        var a = dir.File("a.qcow2");
        var b = dir.File("b.qcow2");
        File.CreateSymbolicLink(a, b);
        File.CreateSymbolicLink(b, a);
        AssertRejected(a, ErrorIds.DiskImageNotFound, hashFile: false);
        var ex = Assert.IsType<KvmSnapshotException>(Record.Exception(() => Qcow2Reader.Read("")));
        Assert.Equal(ErrorIds.InvalidImageName, ex.ErrorId);
    }

    [Fact]
    public void Snapshot_table_beyond_qemus_64_MiB_cap_is_rejected_with_bounded_work()
    {
        // 600 entries of the largest size qemu allows (1024 bytes of extra data, 64 KiB id, 64 KiB name) make a
        // 79 MB table in a sparse file; qemu stops at 64 MiB and so must the reader, with bounded allocation.
        using var dir = new TempDirectory("q2big");
        var path = MakeOverlay(dir);
        var table = (long)ReadU64(path, 64);
        const int count = 600;
        var entry = SnapshotEntry(0, 0, "", "", new byte[1024], 1, 0, 0, 0);
        var entrySize = (40 + 1024 + 0xFFFF + 0xFFFF + 7) & ~7;
        using (var s = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            s.SetLength(table + (long)count * entrySize + 4096);
            for (var i = 0; i < count; i++)
            {
                s.Position = table + (long)i * entrySize;
                s.Write(entry);
            }
        }
        for (var i = 0; i < count; i++)
        {
            WriteU16(path, table + (long)i * entrySize + 12, 0xFFFF);
            WriteU16(path, table + (long)i * entrySize + 14, 0xFFFF);
        }
        WriteU32(path, 60, count);
        var before = GC.GetAllocatedBytesForCurrentThread();

        var rejected = AssertRejected(path, ErrorIds.DiskImageMalformed);

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("exceeds", rejected.Message, StringComparison.Ordinal);
        Assert.True(allocated < 256L * 1024 * 1024, $"allocated {allocated} bytes");
        Assert.True(QemuRefuses(path));
    }

    [Fact]
    public void Snapshot_table_just_under_the_cap_is_read()
    {
        // The same big entries, few enough to stay under 64 MiB: qemu reads them, so must the reader.
        using var dir = new TempDirectory("q2bigok");
        var path = MakeOverlay(dir);
        var table = (long)ReadU64(path, 64);
        const int count = 500;
        var entrySize = (40 + 1024 + 0xFFFF + 0xFFFF + 7) & ~7;
        var name = new string('s', 0xFFFF);
        using (var s = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            for (var i = 0; i < count; i++)
            {
                var id = (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture).PadRight(0xFFFF, '\0');
                var e = SnapshotEntry(0, 0, id, name, new byte[1024], 1, 0, 0, 0);
                Assert.Equal(entrySize, e.Length);
                s.Position = table + (long)i * entrySize;
                s.Write(e);
            }
        }
        WriteU32(path, 60, count);

        var image = Qcow2Reader.Read(path);

        Assert.Equal(count, image.Snapshots.Count);
        Assert.Equal("500", image.Snapshots[^1].Id);
        Assert.Equal(0xFFFF, image.Snapshots[^1].Name.Length);
        Assert.Equal(count, QemuInfo(path).GetProperty("snapshots").GetArrayLength());
    }
}
