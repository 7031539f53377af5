using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using KvmSnapshot.Errors;

namespace KvmSnapshot.Qcow2;

/// <summary>
/// Where each guest cluster of one qcow2 file reads from, from its L1 and L2 tables (no subprocess): data at an offset
/// in the file, zeros (the L2 zero flag of version 3), or nothing (the backing file's data). Runs of clusters of the
/// same kind, with contiguous file offsets for data, come as one <see cref="Run"/>. It answers only what it can answer
/// exactly: compressed clusters, extended L2 entries (subclusters), an external data file, encryption, an image
/// marked corrupt, reserved bits set in an entry, or a table or cluster outside the file give null, and the caller
/// asks <c>qemu-img map</c> instead.
/// </summary>
internal static class Qcow2ClusterMap
{
    public enum Kind : byte { Unallocated, Zero, Data }

    /// <summary>A guest range of the file; <see cref="Offset"/> is where its data starts in the file (Data only).</summary>
    public sealed record Run(long Start, long Length, Kind Kind, long Offset);

    /// <summary>The L1 and L2 entries' host offset: bits 9-55.</summary>
    private const ulong OffsetMask = 0x00FF_FFFF_FFFF_FE00UL;
    private const ulong CompressedBit = 1UL << 62;
    private const ulong ZeroBit = 1UL;
    /// <summary>Bits 1-8 and 56-61 of a standard L2 entry and bits 0-8, 56-62 of an L1 entry are reserved and must be zero.</summary>
    private const ulong L2Reserved = 0x3F00_0000_0000_01FEUL;
    private const ulong L1Reserved = 0x7F00_0000_0000_01FFUL;

    /// <summary>
    /// The runs covering the guest disk [0, virtual size) in order, or null when the file cannot be mapped exactly
    /// (see the class summary); <paramref name="backingFile"/> is the backing name its header records. Errors opening
    /// or reading the file are the header reader's typed errors.
    /// </summary>
    public static List<Run>? TryRead(string path, out long virtualSize, out string? backingFile)
    {
        using var stream = ImageFile.OpenForRead(path);
        var image = Qcow2Reader.Read(stream, path, includeSnapshots: false);
        var header = image.Header;
        virtualSize = (long)header.Size;
        backingFile = image.BackingFile;
        if (header.CryptMethod != 0 || image.IsCorrupt || image.HasExternalDataFile || image.ExtendedL2) return null;
        // The header reader checked the cluster size, the L1 table's size (at most 32 MiB, enough for the virtual
        // size) and a virtual size that fits a long; this one keeps the cluster arithmetic below from overflowing.
        if (header.Size > long.MaxValue / 2) return null;
        try
        {
            return Map(stream, header, ImageFile.LengthOf(stream));
        }
        catch (IOException ex)
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageReadFailed, KvmErrorKind.ReadError, path, $"Cannot read the cluster tables of '{path}': {ex.Message}", ex);
        }
    }

    private static List<Run>? Map(Stream stream, Qcow2Header header, long fileLength)
    {
        var clusterSize = 1L << (int)header.ClusterBits;
        var l2Entries = clusterSize / 8;
        var size = (long)header.Size;
        var clusters = (size + clusterSize - 1) / clusterSize;
        var l1Needed = (clusters + l2Entries - 1) / l2Entries;
        if (l1Needed == 0) return new List<Run>();
        var l1Offset = (long)header.L1TableOffset;
        if (l1Offset % clusterSize != 0 || l1Offset <= 0 || l1Offset > fileLength - l1Needed * 8) return null;

        var l1 = new byte[l1Needed * 8];
        if (!ReadAt(stream, l1Offset, l1)) return null;
        var runs = new List<Run>();
        var l2 = new byte[clusterSize];
        long tables = 0;
        for (long i = 0; i < l1Needed; i++)
        {
            var entry = BinaryPrimitives.ReadUInt64BigEndian(l1.AsSpan((int)(i * 8), 8));
            var first = i * l2Entries;
            var count = Math.Min(l2Entries, clusters - first);
            if ((entry & L1Reserved) != 0) return null;
            var l2Offset = (long)(entry & OffsetMask);
            if (l2Offset == 0)
            {
                Add(runs, first * clusterSize, count * clusterSize, Kind.Unallocated, 0);
                continue;
            }
            // Each L2 table has a cluster of its own: more tables than the file has clusters is a broken (or
            // crafted) table that would have this read the same clusters over and over.
            if (++tables * clusterSize > fileLength) return null;
            if (l2Offset % clusterSize != 0 || l2Offset > fileLength - clusterSize || !ReadAt(stream, l2Offset, l2)) return null;
            for (long j = 0; j < count; j++)
            {
                var e = BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan((int)(j * 8), 8));
                if ((e & CompressedBit) != 0 || (e & L2Reserved) != 0) return null;
                var host = (long)(e & OffsetMask);
                var guest = (first + j) * clusterSize;
                if ((e & ZeroBit) != 0 && header.Version < 3) return null; // reserved before version 3
                if ((e & ZeroBit) != 0)
                {
                    Add(runs, guest, clusterSize, Kind.Zero, 0);
                }
                else if (host == 0)
                {
                    Add(runs, guest, clusterSize, Kind.Unallocated, 0);
                }
                else
                {
                    // A data cluster starts inside the file; past its end it reads as zeros, as QEMU reads it.
                    if (host % clusterSize != 0 || host >= fileLength) return null;
                    Add(runs, guest, clusterSize, Kind.Data, host);
                }
            }
        }
        // The last cluster may reach past the virtual size.
        var last = runs[^1];
        if (last.Start + last.Length > size) runs[^1] = last with { Length = size - last.Start };
        return runs;
    }

    private static void Add(List<Run> runs, long start, long length, Kind kind, long offset)
    {
        if (runs.Count > 0)
        {
            var previous = runs[^1];
            if (previous.Kind == kind && previous.Start + previous.Length == start
                && (kind != Kind.Data || previous.Offset + previous.Length == offset))
            {
                runs[^1] = previous with { Length = previous.Length + length };
                return;
            }
        }
        runs.Add(new Run(start, length, kind, offset));
    }

    private static bool ReadAt(Stream stream, long offset, byte[] buffer)
    {
        stream.Position = offset;
        return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) == buffer.Length;
    }
}
