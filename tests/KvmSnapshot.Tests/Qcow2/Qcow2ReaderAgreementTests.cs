using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using KvmSnapshot.Qcow2;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;
using static KvmSnapshot.Tests.Qcow2.Qcow2TestImage;

namespace KvmSnapshot.Tests.Qcow2;

/// <summary>The native reader must see what qemu-img info / qemu-img snapshot -l see, on images qemu-img made.</summary>
public sealed class Qcow2ReaderAgreementTests
{
    /// <summary>Compares every field qemu-img info reports with what the reader returned.</summary>
    private static void AssertAgreesWithQemu(Qcow2Image image, string path)
    {
        var info = QemuInfo(path);
        var data = info.GetProperty("format-specific").GetProperty("data");
        Assert.Equal("qcow2", info.GetProperty("format").GetString());
        Assert.Equal(info.GetProperty("virtual-size").GetInt64(), image.VirtualSize);
        Assert.Equal(info.GetProperty("cluster-size").GetInt32(), image.ClusterSize);
        Assert.Equal(info.GetProperty("dirty-flag").GetBoolean(), image.IsDirty);
        Assert.Equal(data.GetProperty("compat").GetString(), image.CompatLevel);
        Assert.Equal(data.GetProperty("refcount-bits").GetInt32(), image.RefcountBits);
        // Version 2 headers have no feature fields; qemu-img leaves those keys out.
        Assert.Equal(data.Property("lazy-refcounts")?.GetBoolean() ?? false, image.LazyRefcounts);
        Assert.Equal(data.Property("corrupt")?.GetBoolean() ?? false, image.IsCorrupt);
        if (image.Header.Version >= 3)
        {
            Assert.Equal(data.GetProperty("compression-type").GetString(), image.CompressionTypeName);
            Assert.Equal(data.GetProperty("extended-l2").GetBoolean(), image.ExtendedL2);
        }
        Assert.Equal(data.Property("data-file")?.GetString(), image.ExternalDataFile);
        Assert.Equal(data.Property("data-file-raw")?.GetBoolean() ?? false, image.ExternalDataFileRaw);
        Assert.Equal(info.Property("backing-filename")?.GetString(), image.BackingFile);
        if (image.BackingFile is not null)
        {
            Assert.Equal(info.Property("backing-filename-format")?.GetString(), image.BackingFormat);
        }

        var expected = info.Property("snapshots")?.EnumerateArray().ToArray() ?? Array.Empty<JsonElement>();
        Assert.Equal(expected.Length, image.Snapshots.Count);
        Assert.Equal((uint)expected.Length, image.Header.SnapshotCount);
        for (var i = 0; i < expected.Length; i++)
        {
            var q = expected[i];
            var s = image.Snapshots[i];
            // qemu-img copies id and name into fixed buffers (128 and 256 bytes): it shows at most 127 / 255 bytes.
            Assert.Equal(q.GetProperty("id").GetString(), Prefix(s.Id, 127));
            Assert.Equal(q.GetProperty("name").GetString(), Prefix(s.Name, 255));
            var created = DateTime.UnixEpoch.AddSeconds(q.GetProperty("date-sec").GetInt64()).AddTicks(q.GetProperty("date-nsec").GetInt64() / 100);
            Assert.Equal(created, s.CreationTimeUtc);
            Assert.Equal(DateTimeKind.Utc, s.CreationTimeUtc.Kind);
            var clockTicks = q.GetProperty("vm-clock-sec").GetInt64() * TimeSpan.TicksPerSecond + q.GetProperty("vm-clock-nsec").GetInt64() / 100;
            Assert.Equal(TimeSpan.FromTicks(clockTicks), s.VmClock);
            Assert.Equal(q.GetProperty("vm-state-size").GetInt64(), s.VmStateSize);
            Assert.Equal(q.Property("icount")?.GetInt64(), s.InstructionCount);
        }
        AssertScanReadsHeaderAlike(path);
    }

    private static string Prefix(string value, int maxBytes)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(value);
        return bytes.Length <= maxBytes ? value : System.Text.Encoding.UTF8.GetString(bytes, 0, maxBytes);
    }

    [Theory]
    [InlineData("compat=0.10")]
    [InlineData("compat=1.1")]
    [InlineData("compat=0.10,cluster_size=512")]
    [InlineData("compat=1.1,cluster_size=2M")]
    [InlineData("compat=1.1,cluster_size=4096,lazy_refcounts=on")]
    [InlineData("compat=1.1,refcount_bits=1")]
    [InlineData("compat=1.1,refcount_bits=64")]
    [InlineData("compat=1.1,compression_type=zstd")]
    [InlineData("compat=1.1,extended_l2=on,cluster_size=128k")]
    [InlineData("compat=1.1,preallocation=metadata")]
    public void Header_fields_match_qemu_img_info(string options)
    {
        using var dir = new TempDirectory("q2hdr");
        var path = dir.File("disk.qcow2");
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-o", options, path, "100M").EnsureSuccess();

        var image = Qcow2Reader.Read(path);

        Assert.Equal(path, image.Path);
        Assert.Equal(options.Contains("compat=0.10") ? 2u : 3u, image.Header.Version);
        Assert.Equal(104857600L, image.VirtualSize);
        Assert.Null(image.BackingFile);
        Assert.Empty(image.Snapshots);
        AssertAgreesWithQemu(image, path);
    }

    [Fact]
    public void Version_3_image_carries_the_feature_name_table_qemu_wrote()
    {
        using var dir = new TempDirectory("q2feat");
        var path = dir.File("disk.qcow2");
        Tool.CreateQcow2(path);

        var image = Qcow2Reader.Read(path);

        Assert.Contains(new Qcow2FeatureName(0, 0, "dirty bit"), image.FeatureNames);
        Assert.Contains(new Qcow2FeatureName(0, 1, "corrupt bit"), image.FeatureNames);
        Assert.Contains(new Qcow2FeatureName(1, 0, "lazy refcounts"), image.FeatureNames);
        Assert.Contains(new Qcow2FeatureName(2, 1, "raw external data"), image.FeatureNames);
        Assert.Equal(112u, image.Header.HeaderLength);
    }

    [Theory]
    [InlineData("1.1", "qcow2")]
    [InlineData("0.10", "qcow2")]
    [InlineData("1.1", "raw")]
    public void Overlay_backing_file_and_format_match_qemu(string compat, string backingFormat)
    {
        using var dir = new TempDirectory("q2ovl");
        var basePath = dir.File("base.img");
        if (backingFormat == "raw") Tool.CreateRaw(basePath, "32M"); else Tool.CreateQcow2(basePath, "32M");
        var overlay = dir.File("overlay.qcow2");
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-o", $"compat={compat}", "-b", "base.img", "-F", backingFormat, overlay).EnsureSuccess();

        var image = Qcow2Reader.Read(overlay);

        Assert.Equal("base.img", image.BackingFile);
        Assert.Equal(backingFormat, image.BackingFormat);
        Assert.Equal(32L * 1024 * 1024, image.VirtualSize);
        AssertAgreesWithQemu(image, overlay);
    }

    /// <summary>
    /// The first cluster is read only as far as the header's structures reach (4 KiB first): a backing file name that
    /// qemu finds across that boundary, or deep in a 2 MiB cluster, is read as qemu reads it, by both header paths.
    /// </summary>
    [Theory]
    [InlineData("compat=1.1", 4090)]
    [InlineData("compat=1.1", 8192)]
    [InlineData("compat=0.10", 4095)]
    [InlineData("compat=1.1,cluster_size=2M", 1048576 + 3)]
    public void Backing_file_name_beyond_the_first_read_is_found_where_qemu_finds_it(string options, int offset)
    {
        using var dir = new TempDirectory("q2far");
        var basePath = dir.File("base.qcow2");
        Tool.CreateQcow2(basePath, "32M");
        var overlay = dir.File("overlay.qcow2");
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-o", options, "-b", basePath, "-F", "qcow2", overlay, "32M").EnsureSuccess();
        var name = System.Text.Encoding.UTF8.GetBytes(basePath);
        WriteBytes(overlay, offset, name);
        WriteU64(overlay, 8, (ulong)offset);

        var image = Qcow2Reader.Read(overlay);

        Assert.Equal(basePath, image.BackingFile);
        Assert.Equal(basePath, QemuInfo(overlay).GetProperty("backing-filename").GetString());
        AssertAgreesWithQemu(image, overlay);
    }

    [Fact]
    public void Absolute_backing_path_is_returned_verbatim()
    {
        using var dir = new TempDirectory("q2abs");
        var basePath = dir.File("base.qcow2");
        Tool.CreateQcow2(basePath);
        var overlay = dir.File("top.qcow2");
        Tool.CreateQcow2(overlay, size: null, backing: basePath);

        var image = Qcow2Reader.Read(overlay);

        Assert.Equal(basePath, image.BackingFile);
        AssertAgreesWithQemu(image, overlay);
    }

    [Fact]
    public void Longest_backing_name_qemu_allows_is_read_whole()
    {
        using var dir = new TempDirectory("q2long");
        var overlay = dir.File("top.qcow2");
        // 1023 bytes, the most qemu stores; -u because no such file exists.
        var name = "/" + string.Join("/", Enumerable.Repeat(new string('b', 254), 4)) + "/" + new string('z', 1023 - 1 - 4 * 255);
        Assert.Equal(1023, name.Length);
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", name, "-F", "raw", overlay, "16M").EnsureSuccess();

        var image = Qcow2Reader.Read(overlay);

        Assert.Equal(name, image.BackingFile);
        Assert.Equal(1023u, image.Header.BackingFileSize);
        AssertAgreesWithQemu(image, overlay);
    }

    [Fact]
    public void Backing_file_recorded_without_format_has_null_format_and_unknown_extensions_are_skipped()
    {
        using var dir = new TempDirectory("q2nofmt");
        var basePath = dir.File("base.qcow2");
        Tool.CreateQcow2(basePath);
        var overlay = dir.File("top.qcow2");
        Tool.CreateQcow2(overlay, null, "base.qcow2");
        // qemu-img 7.2 no longer writes a backing file without a format; images from older tools have none.
        // Retyping the extension to one nobody knows gives that image, and proves unknown extensions are skipped.
        var extension = FindExtension(overlay, BackingFormatExtension);
        Assert.True(extension > 0);
        WriteU32(overlay, extension, 0x12345678);

        var image = Qcow2Reader.Read(overlay);

        Assert.Equal("base.qcow2", image.BackingFile);
        Assert.Null(image.BackingFormat);
        Assert.Contains(image.FeatureNames, f => f.Name == "dirty bit"); // the walk went on past the unknown one
        AssertAgreesWithQemu(image, overlay);
        Assert.Null(QemuInfo(overlay).Property("backing-filename-format"));
    }

    [Theory]
    [InlineData("0.10")]
    [InlineData("1.1")]
    public void Internal_snapshots_match_qemu_img_snapshot_list(string compat)
    {
        using var dir = new TempDirectory("q2snap");
        var path = dir.File("disk.qcow2");
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-o", $"compat={compat}", path, "64M").EnsureSuccess();
        var names = new[] { "before-upgrade", "with space", "ünïcode-snap", "x", "to-delete", "last" };
        foreach (var n in names)
        {
            Tool.WritePattern(path, (byte)n.Length, "0", "64k");
            Tool.Run("qemu-img", "snapshot", "-c", n, path).EnsureSuccess();
        }
        Tool.Run("qemu-img", "snapshot", "-d", "to-delete", path).EnsureSuccess();

        var image = Qcow2Reader.Read(path);

        Assert.Equal(new[] { "before-upgrade", "with space", "ünïcode-snap", "x", "last" }, image.Snapshots.Select(s => s.Name));
        Assert.Equal(new[] { "1", "2", "3", "4", "6" }, image.Snapshots.Select(s => s.Id));
        Assert.All(image.Snapshots, s => Assert.Equal(64L * 1024 * 1024, s.VirtualDiskSize));
        Assert.All(image.Snapshots, s => Assert.InRange(s.CreationTimeUtc, DateTime.UtcNow.AddMinutes(-10), DateTime.UtcNow.AddMinutes(1)));
        AssertAgreesWithQemu(image, path);

        // The text view users see: every ID/TAG row of qemu-img snapshot -l is one entry, in order.
        var listed = Tool.Run("qemu-img", "snapshot", "-l", "-U", path).EnsureSuccess().StdOut
            .Split('\n').Skip(2).Where(l => l.Trim().Length > 0).ToArray();
        Assert.Equal(image.Snapshots.Count, listed.Length);
        for (var i = 0; i < listed.Length; i++)
        {
            Assert.StartsWith(image.Snapshots[i].Id + " ", listed[i], StringComparison.Ordinal);
            Assert.Contains(" " + image.Snapshots[i].Name + " ", listed[i], StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Hand_built_snapshot_entries_with_every_extra_data_size_match_qemu()
    {
        using var dir = new TempDirectory("q2extra");
        var path = dir.File("disk.qcow2");
        Tool.CreateQcow2(path, "64M");
        var l1Offset = ReadU64(path, 40);
        var l1Size = ReadU32(path, 36);
        var entries = new[]
        {
            // No extra data: 32-bit VM state size, no disk size, no icount.
            SnapshotEntry(l1Offset, l1Size, "7", "noextra", Array.Empty<byte>(), 1_600_000_000, 123_456_789, 5_000_000_123, 4096),
            // 8 bytes: the 64-bit VM state size replaces the 32-bit one.
            SnapshotEntry(l1Offset, l1Size, "8", "eight", BigEndian64(1UL << 33), 1_600_000_001, 1, 1, 7),
            SnapshotEntry(l1Offset, l1Size, "9", "sixteen", BigEndian64(5, 1UL << 20), 1_600_000_002, 2, 2, 7),
            SnapshotEntry(l1Offset, l1Size, "10", "twentyfour", BigEndian64(6, 1UL << 21, 12345), 1_600_000_003, 3, 3, 7),
            // Unknown trailing extra data from a newer qemu is skipped; icount -1 means none.
            SnapshotEntry(l1Offset, l1Size, "11", "forty", BigEndian64(7, 1UL << 22, ulong.MaxValue, 0xAAAAAAAAAAAAAAAA, 1), 1_600_000_004, 4, 4, 7),
            SnapshotEntry(l1Offset, l1Size, "12", new string('n', 3000), BigEndian64(0, 0, 0), uint.MaxValue, 999_999_999, ulong.MaxValue, 0),
        };
        InstallSnapshotTable(path, entries);

        var image = Qcow2Reader.Read(path);

        AssertAgreesWithQemu(image, path);
        Assert.Equal(new long?[] { null, null, 1L << 20, 1L << 21, 1L << 22, 0 }, image.Snapshots.Select(s => s.VirtualDiskSize));
        Assert.Equal(new long?[] { null, null, null, 12345, null, 0 }, image.Snapshots.Select(s => s.InstructionCount));
        Assert.Equal(1L << 33, image.Snapshots[1].VmStateSize);
        Assert.Equal(new DateTime(2020, 9, 13, 12, 26, 40, DateTimeKind.Utc).AddTicks(1_234_567), image.Snapshots[0].CreationTimeUtc);
        Assert.Equal(3000, image.Snapshots[5].Name.Length);
    }

    [Fact]
    public void External_data_file_matches_qemu()
    {
        using var dir = new TempDirectory("q2data");
        var path = dir.File("meta.qcow2");
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file=guest.raw,data_file_raw=on", path, "32M").EnsureSuccess();

        var image = Qcow2Reader.Read(path);

        Assert.True(image.HasExternalDataFile);
        Assert.Equal("guest.raw", image.ExternalDataFile);
        Assert.True(image.ExternalDataFileRaw);
        AssertAgreesWithQemu(image, path);
    }

    [Fact]
    public void Data_file_extension_without_its_feature_bit_is_reported_as_qemu_reports_it()
    {
        using var dir = new TempDirectory("q2dataoff");
        var path = dir.File("meta.qcow2");
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file=guest.raw", path, "32M").EnsureSuccess();
        WriteU64(path, 72, ReadU64(path, 72) & ~4UL);

        var image = Qcow2Reader.Read(path);

        // The name stays recorded, but without bit 2 qemu keeps guest data in this file.
        Assert.False(image.HasExternalDataFile);
        Assert.Equal("guest.raw", image.ExternalDataFile);
        AssertAgreesWithQemu(image, path);
    }

    [Theory]
    [InlineData(1UL, true, false)]
    [InlineData(2UL, false, true)]
    [InlineData(3UL, true, true)]
    public void Dirty_and_corrupt_bits_match_qemu(ulong bits, bool dirty, bool corrupt)
    {
        using var dir = new TempDirectory("q2bits");
        var path = dir.File("disk.qcow2");
        Tool.Run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", path, "16M").EnsureSuccess();
        WriteU64(path, 72, bits);

        var image = Qcow2Reader.Read(path);

        Assert.Equal(dirty, image.IsDirty);
        Assert.Equal(corrupt, image.IsCorrupt);
        AssertAgreesWithQemu(image, path);
    }

    [Fact]
    public void Snapshots_are_skipped_on_request_but_counted_in_the_header()
    {
        using var dir = new TempDirectory("q2skip");
        var path = dir.File("disk.qcow2");
        Tool.CreateQcow2(path);
        Tool.Run("qemu-img", "snapshot", "-c", "a", path).EnsureSuccess();
        Tool.Run("qemu-img", "snapshot", "-c", "b", path).EnsureSuccess();
        // Damage the table: a header-only read must not look at it.
        WriteU32(path, (long)ReadU64(path, 64) + 36, 0xFFFFFFFF);

        var image = Qcow2Reader.Read(path, includeSnapshots: false);

        Assert.Equal(2u, image.Header.SnapshotCount);
        Assert.Empty(image.Snapshots);
        AssertRejected(path, "DiskImageMalformed");
    }

    [Fact]
    public void Image_held_open_for_writing_by_qemu_is_readable()
    {
        using var dir = new TempDirectory("q2busy");
        var path = dir.File("disk.qcow2");
        Tool.CreateQcow2(path);
        Tool.Run("qemu-img", "snapshot", "-c", "running", path).EnsureSuccess();
        var psi = new ProcessStartInfo("qemu-io") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "-f", "qcow2", path }) psi.ArgumentList.Add(a);
        using var holder = Process.Start(psi)!;
        try
        {
            // Ask qemu-io for the image length and wait for the answer: the image is then open and write-locked.
            // (Probing the lock with qemu-img info before that races: its brief shared lock can make qemu-io's open fail.)
            holder.StandardInput.WriteLine("length");
            holder.StandardInput.Flush();
            var answer = holder.StandardOutput.ReadLineAsync();
            Assert.True(answer.Wait(TimeSpan.FromSeconds(60)), "qemu-io did not answer");
            Assert.False(holder.HasExited, "qemu-io exited instead of holding the image open");
            // As a running VM does, qemu-io now holds qemu's write lock: plain qemu-img info is refused.
            Assert.NotEqual(0, Tool.Run("qemu-img", "info", path).ExitCode);

            var image = Qcow2Reader.Read(path);

            Assert.Equal("running", Assert.Single(image.Snapshots).Name);
            Assert.True(Qcow2Reader.IsQcow2(path));
            Assert.NotEqual(0, Tool.Run("qemu-img", "info", path).ExitCode); // the lock survived our read
        }
        finally
        {
            holder.StandardInput.Close();
            if (!holder.WaitForExit(10_000)) holder.Kill();
        }
    }

    [Fact]
    public void Stream_overload_reads_the_same_as_the_path_overload()
    {
        using var dir = new TempDirectory("q2strm");
        var basePath = dir.File("base.qcow2");
        Tool.CreateQcow2(basePath);
        var path = dir.File("top.qcow2");
        Tool.CreateQcow2(path, null, "base.qcow2");
        Tool.Run("qemu-img", "snapshot", "-c", "s", path).EnsureSuccess();

        var fromFile = Qcow2Reader.Read(path);
        using var memory = new MemoryStream(File.ReadAllBytes(path));
        var fromStream = Qcow2Reader.Read(memory, "memory:top");

        Assert.Equal("memory:top", fromStream.Path);
        Assert.Equal(fromFile.BackingFile, fromStream.BackingFile);
        Assert.Equal(fromFile.BackingFormat, fromStream.BackingFormat);
        Assert.Equal(fromFile.Header.L1TableOffset, fromStream.Header.L1TableOffset);
        Assert.Equal(fromFile.Snapshots.Single().CreationTimeUtc, fromStream.Snapshots.Single().CreationTimeUtc);
        Assert.True(memory.CanRead); // left open for the caller
    }

    [Fact]
    public void IsQcow2_tells_qcow2_from_everything_else_without_throwing()
    {
        using var dir = new TempDirectory("q2is");
        var qcow2 = dir.File("disk.qcow2");
        Tool.CreateQcow2(qcow2);
        var raw = dir.File("disk.raw");
        Tool.CreateRaw(raw);
        var empty = dir.File("empty");
        File.WriteAllBytes(empty, Array.Empty<byte>());
        var magicOnly = dir.File("magic");
        File.WriteAllBytes(magicOnly, new byte[] { 0x51, 0x46, 0x49, 0xFB });
        var fifo = dir.File("fifo");
        Tool.Run("mkfifo", fifo).EnsureSuccess();

        var clock = Stopwatch.StartNew();
        Assert.True(Qcow2Reader.IsQcow2(qcow2));
        Assert.True(Qcow2Reader.IsQcow2(magicOnly));
        Assert.False(Qcow2Reader.IsQcow2(raw));
        Assert.False(Qcow2Reader.IsQcow2(empty));
        Assert.False(Qcow2Reader.IsQcow2(dir.File("missing")));
        Assert.False(Qcow2Reader.IsQcow2(dir.Path));
        Assert.False(Qcow2Reader.IsQcow2(fifo));
        Assert.False(Qcow2Reader.IsQcow2(""));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }
}
