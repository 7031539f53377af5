using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Text;

namespace KvmSnapshot.Qcow2;

/// <summary>
/// Reads the internal snapshot table. Entries are variable-length (extra data, id and name follow a 40-byte fixed
/// part) and 8-byte aligned. Each entry is bounds-checked before it is read, the count and table size are capped
/// as qemu caps them, so a hostile header costs at most one pass over bytes that really are in the file.
/// </summary>
internal static class Qcow2SnapshotTableReader
{
    public static IReadOnlyList<Qcow2SnapshotEntry> Read(BoundedImageReader file, Qcow2Header header)
    {
        var count = header.SnapshotCount;
        if (count == 0)
        {
            return Array.Empty<Qcow2SnapshotEntry>();
        }
        var tableOffset = header.SnapshotsOffset;
        if (count > Qcow2Layout.MaxSnapshots)
        {
            throw file.Malformed($"the header claims {count} internal snapshots; qcow2 allows at most {Qcow2Layout.MaxSnapshots}");
        }
        var clusterSize = 1UL << (int)header.ClusterBits;
        if (tableOffset == 0 || tableOffset % clusterSize != 0)
        {
            throw file.Malformed($"the snapshot table offset 0x{tableOffset:x} is not a non-zero multiple of the cluster size ({clusterSize} bytes)");
        }
        // Every entry is at least its fixed part: a count the file cannot hold is rejected before allocating for it.
        var minimumTableSize = (ulong)count * Qcow2Layout.SnapshotEntryFixedSize;
        if (!file.Contains(tableOffset, minimumTableSize))
        {
            throw file.Malformed($"the snapshot table at 0x{tableOffset:x} cannot hold {count} snapshots: that needs at least {minimumTableSize} bytes and the file is {file.Length} bytes long");
        }

        var snapshots = new List<Qcow2SnapshotEntry>((int)count);
        Span<byte> fixedPart = stackalloc byte[Qcow2Layout.SnapshotEntryFixedSize];
        var offset = tableOffset;
        for (var index = 0; index < count; index++)
        {
            offset = (offset + 7) & ~7UL;
            var what = $"snapshot table entry {index + 1} of {count}";
            file.ReadAt(offset, fixedPart, what);

            var idLength = BinaryPrimitives.ReadUInt16BigEndian(fixedPart[12..]);
            var nameLength = BinaryPrimitives.ReadUInt16BigEndian(fixedPart[14..]);
            var dateSeconds = BinaryPrimitives.ReadUInt32BigEndian(fixedPart[16..]);
            var dateNanoseconds = BinaryPrimitives.ReadUInt32BigEndian(fixedPart[20..]);
            var vmClockNanoseconds = BinaryPrimitives.ReadUInt64BigEndian(fixedPart[24..]);
            ulong vmStateSize = BinaryPrimitives.ReadUInt32BigEndian(fixedPart[32..]);
            var extraDataSize = BinaryPrimitives.ReadUInt32BigEndian(fixedPart[36..]);
            if (extraDataSize > Qcow2Layout.MaxSnapshotExtraData)
            {
                throw file.Malformed($"{what} at 0x{offset:x} has {extraDataSize} bytes of extra data; qemu allows at most {Qcow2Layout.MaxSnapshotExtraData}");
            }

            // At most 1024 + 2 * 65535 bytes, and only after the bounds check inside ReadAt.
            var variableLength = (long)extraDataSize + idLength + nameLength;
            var variable = file.ReadAt(offset + Qcow2Layout.SnapshotEntryFixedSize, variableLength, what);
            var extra = variable.AsSpan(0, (int)extraDataSize);

            long? virtualDiskSize = null;
            long? instructionCount = null;
            if (extra.Length >= 8)
            {
                vmStateSize = BinaryPrimitives.ReadUInt64BigEndian(extra);
            }
            if (extra.Length >= 16)
            {
                virtualDiskSize = CheckedSigned(file, BinaryPrimitives.ReadUInt64BigEndian(extra[8..]), what, "virtual disk size");
            }
            if (extra.Length >= 24)
            {
                var icount = BinaryPrimitives.ReadUInt64BigEndian(extra[16..]);
                // -1 means "not recorded" (the VM did not run with -icount); qemu-img shows no value then.
                instructionCount = icount == ulong.MaxValue ? null : (long)icount;
            }

            snapshots.Add(new Qcow2SnapshotEntry
            {
                Id = CString(variable.AsSpan((int)extraDataSize, idLength)),
                Name = CString(variable.AsSpan((int)extraDataSize + idLength, nameLength)),
                CreationTimeUtc = DateTime.UnixEpoch.AddTicks((long)dateSeconds * TimeSpan.TicksPerSecond + dateNanoseconds / 100),
                VmClock = TimeSpan.FromTicks((long)(vmClockNanoseconds / 100)),
                VmStateSize = CheckedSigned(file, vmStateSize, what, "VM state size"),
                VirtualDiskSize = virtualDiskSize,
                InstructionCount = instructionCount,
            });

            offset += Qcow2Layout.SnapshotEntryFixedSize + (ulong)variableLength;
            if (offset - tableOffset > Qcow2Layout.MaxSnapshotTableSize)
            {
                throw file.Malformed($"the snapshot table exceeds {Qcow2Layout.MaxSnapshotTableSize} bytes at entry {index + 1}, the most qemu reads");
            }
        }
        return snapshots;
    }

    private static long CheckedSigned(BoundedImageReader file, ulong value, string what, string field)
    {
        if (value > long.MaxValue)
        {
            throw file.Malformed($"{what} has a {field} of {value} bytes, which does not fit in a signed 64-bit integer");
        }
        return (long)value;
    }

    private static string CString(ReadOnlySpan<byte> bytes)
    {
        var nul = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? bytes[..nul] : bytes);
    }
}
