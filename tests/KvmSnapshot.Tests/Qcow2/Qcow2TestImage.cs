using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text.Json;
using KvmSnapshot.Errors;
using KvmSnapshot.Qcow2;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Qcow2;

/// <summary>Byte-level patching of real qcow2 files made by qemu-img, and qemu-img's own view of them.</summary>
internal static class Qcow2TestImage
{
    public const uint BackingFormatExtension = 0xE2792ACA;
    public const uint FeatureNameTableExtension = 0x6803F857;
    public const uint ExternalDataFileExtension = 0x44415441;

    public static uint ReadU32(string path, long offset) => BinaryPrimitives.ReadUInt32BigEndian(ReadBytes(path, offset, 4));

    public static ulong ReadU64(string path, long offset) => BinaryPrimitives.ReadUInt64BigEndian(ReadBytes(path, offset, 8));

    public static byte[] ReadBytes(string path, long offset, int count)
    {
        using var s = File.OpenRead(path);
        s.Position = offset;
        var buffer = new byte[count];
        s.ReadExactly(buffer);
        return buffer;
    }

    public static void WriteBytes(string path, long offset, ReadOnlySpan<byte> bytes)
    {
        using var s = new FileStream(path, FileMode.Open, FileAccess.Write);
        s.Position = offset;
        s.Write(bytes);
    }

    public static void WriteU16(string path, long offset, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, value);
        WriteBytes(path, offset, b);
    }

    public static void WriteU32(string path, long offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        WriteBytes(path, offset, b);
    }

    public static void WriteU64(string path, long offset, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value);
        WriteBytes(path, offset, b);
    }

    public static void Truncate(string path, long length)
    {
        using var s = new FileStream(path, FileMode.Open, FileAccess.Write);
        s.SetLength(length);
    }

    /// <summary>Offset of the header extension of that type (its 8-byte type/length header), or -1.</summary>
    public static long FindExtension(string path, uint type)
    {
        var version = ReadU32(path, 4);
        long offset = version >= 3 ? ReadU32(path, 100) : 72;
        for (var i = 0; i < 64; i++)
        {
            var t = ReadU32(path, offset);
            if (t == 0) return -1;
            if (t == type) return offset;
            offset += 8 + ((ReadU32(path, offset + 4) + 7) & ~7u);
        }
        return -1;
    }

    /// <summary>qemu-img info --output=json -U: the reference the reader is compared with.</summary>
    public static JsonElement QemuInfo(string path)
    {
        var r = Tool.Run("qemu-img", "info", "--output=json", "-U", path).EnsureSuccess();
        using var doc = JsonDocument.Parse(r.StdOut);
        return doc.RootElement.Clone();
    }

    /// <summary>True when qemu-img itself refuses to open the image as qcow2 (-f: probing would fall back to raw).</summary>
    public static bool QemuRefuses(string path) => Tool.Run("qemu-img", "info", "-U", "-f", "qcow2", path).ExitCode != 0;

    public static JsonElement? Property(this JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v : null;

    /// <summary>
    /// Reads the image, requires a KvmSnapshotException (exactly that type) with the given ErrorId that names the
    /// path, requires it to come back within two seconds and the file to be unchanged.
    /// </summary>
    /// <remarks>Pass hashFile false for a FIFO: hashing it would wait for a writer.</remarks>
    public static KvmSnapshotException AssertRejected(string path, string errorId, bool hashFile = true)
    {
        hashFile &= File.Exists(path);
        var before = hashFile ? Tool.Sha256(path) : null;
        var clock = Stopwatch.StartNew();
        var ex = Record.Exception(() => Qcow2Reader.Read(path));
        clock.Stop();
        var rejected = Assert.IsType<KvmSnapshotException>(ex);
        Assert.True(errorId == rejected.ErrorId, $"expected {errorId}, got {rejected.ErrorId}: {rejected.Message}");
        Assert.Equal(path, rejected.Target);
        Assert.Contains(path, rejected.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
        AssertScanReadsHeaderAlike(path);
        Assert.Equal(before, hashFile ? Tool.Sha256(path) : null);
        return rejected;
    }

    /// <summary>
    /// A store scan reads headers through its own path (<see cref="KvmSnapshot.Chains.ImageHeaderFacts"/>: one statx,
    /// one open and one read for a regular file, the first cluster read only as far as needed): it must accept and
    /// reject exactly what the reader of the header alone does, with the same error.
    /// </summary>
    public static void AssertScanReadsHeaderAlike(string path)
    {
        if (!File.Exists(path)) return;
        var alone = Record.Exception(() => Qcow2Reader.Read(path, includeSnapshots: false));
        var facts = KvmSnapshot.Chains.ImageHeaderFacts.Read(path);
        if (facts.OpenError is not null || facts.ProbeError is not null)
        {
            Assert.IsType<KvmSnapshotException>(alone);
            return;
        }
        if (facts.Content != "qcow2")
        {
            var notQcow2 = Assert.IsType<KvmSnapshotException>(alone);
            Assert.Equal(ErrorIds.DiskImageNotQcow2, notQcow2.ErrorId);
            return;
        }
        if (alone is null)
        {
            Assert.Null(facts.Qcow2Error);
            var image = Assert.IsType<Qcow2Image>(facts.Qcow2);
            var expected = Qcow2Reader.Read(path, includeSnapshots: false);
            Assert.Equal(expected.BackingFile, image.BackingFile);
            Assert.Equal(expected.BackingFormat, image.BackingFormat);
            Assert.Equal(expected.ExternalDataFile, image.ExternalDataFile);
            Assert.Equal(expected.VirtualSize, image.VirtualSize);
            return;
        }
        var scanned = Assert.IsType<KvmSnapshotException>(facts.Qcow2Error);
        var direct = Assert.IsType<KvmSnapshotException>(alone);
        Assert.Equal(direct.ErrorId, scanned.ErrorId);
        Assert.Equal(direct.Message, scanned.Message);
    }

    /// <summary>One hand-built snapshot table entry (the fixed part, extra data, id and name, padded to 8 bytes).</summary>
    public static byte[] SnapshotEntry(ulong l1Offset, uint l1Size, string id, string name, byte[] extra,
        uint dateSeconds, uint dateNanoseconds, ulong vmClockNanoseconds, uint vmStateSize)
    {
        var idBytes = System.Text.Encoding.UTF8.GetBytes(id);
        var nameBytes = System.Text.Encoding.UTF8.GetBytes(name);
        var length = 40 + extra.Length + idBytes.Length + nameBytes.Length;
        var entry = new byte[(length + 7) & ~7];
        var s = entry.AsSpan();
        BinaryPrimitives.WriteUInt64BigEndian(s, l1Offset);
        BinaryPrimitives.WriteUInt32BigEndian(s[8..], l1Size);
        BinaryPrimitives.WriteUInt16BigEndian(s[12..], (ushort)idBytes.Length);
        BinaryPrimitives.WriteUInt16BigEndian(s[14..], (ushort)nameBytes.Length);
        BinaryPrimitives.WriteUInt32BigEndian(s[16..], dateSeconds);
        BinaryPrimitives.WriteUInt32BigEndian(s[20..], dateNanoseconds);
        BinaryPrimitives.WriteUInt64BigEndian(s[24..], vmClockNanoseconds);
        BinaryPrimitives.WriteUInt32BigEndian(s[32..], vmStateSize);
        BinaryPrimitives.WriteUInt32BigEndian(s[36..], (uint)extra.Length);
        extra.CopyTo(s[40..]);
        idBytes.CopyTo(s[(40 + extra.Length)..]);
        nameBytes.CopyTo(s[(40 + extra.Length + idBytes.Length)..]);
        return entry;
    }

    /// <summary>
    /// Appends a snapshot table made of the entries at the next cluster boundary and points the header at it.
    /// qemu-img info reads such a table like any other (it does not check refcounts), so it stays the reference.
    /// </summary>
    public static long InstallSnapshotTable(string path, IReadOnlyList<byte[]> entries)
    {
        var clusterSize = 1L << (int)ReadU32(path, 20);
        var offset = (new FileInfo(path).Length + clusterSize - 1) / clusterSize * clusterSize;
        using (var s = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            s.Position = offset;
            foreach (var e in entries) s.Write(e);
            s.SetLength((s.Position + clusterSize - 1) / clusterSize * clusterSize);
        }
        WriteU32(path, 60, (uint)entries.Count);
        WriteU64(path, 64, (ulong)offset);
        return offset;
    }

    public static byte[] BigEndian64(params ulong[] values)
    {
        var b = new byte[values.Length * 8];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(i * 8), values[i]);
        return b;
    }
}
