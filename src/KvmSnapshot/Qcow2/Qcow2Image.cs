using System;
using System.Collections.Generic;

namespace KvmSnapshot.Qcow2;

/// <summary>The fixed qcow2 header fields (v2: the first 72 bytes; v3 adds the rest).</summary>
public sealed class Qcow2Header
{
    public uint Version { get; init; }
    public ulong BackingFileOffset { get; init; }
    public uint BackingFileSize { get; init; }
    public uint ClusterBits { get; init; }
    public ulong Size { get; init; }
    public uint CryptMethod { get; init; }
    public uint L1Size { get; init; }
    public ulong L1TableOffset { get; init; }
    public ulong RefcountTableOffset { get; init; }
    public uint RefcountTableClusters { get; init; }
    public uint SnapshotCount { get; init; }
    public ulong SnapshotsOffset { get; init; }
    public ulong IncompatibleFeatures { get; init; }
    public ulong CompatibleFeatures { get; init; }
    public ulong AutoclearFeatures { get; init; }
    public uint RefcountOrder { get; init; } = 4;
    public uint HeaderLength { get; init; } = 72;
    public byte CompressionType { get; init; }
}

/// <summary>One entry of the feature-name table header extension.</summary>
public sealed record Qcow2FeatureName(byte Type, byte Bit, string Name);

/// <summary>One entry of the snapshot table.</summary>
public sealed class Qcow2SnapshotEntry
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    /// <summary>Creation time (UTC) from date_sec/date_nsec.</summary>
    public DateTime CreationTimeUtc { get; init; }
    public TimeSpan VmClock { get; init; }
    public long VmStateSize { get; init; }
    public long? VirtualDiskSize { get; init; }
    public long? InstructionCount { get; init; }
}

/// <summary>What the native reader learned from a qcow2 file without running qemu-img.</summary>
public sealed class Qcow2Image
{
    public required string Path { get; init; }
    public required Qcow2Header Header { get; init; }
    public int ClusterSize => 1 << (int)Header.ClusterBits;
    public string? BackingFile { get; init; }
    /// <summary>From the backing-file-format header extension; null when not recorded.</summary>
    public string? BackingFormat { get; init; }
    public string? ExternalDataFile { get; init; }
    public IReadOnlyList<Qcow2FeatureName> FeatureNames { get; init; } = Array.Empty<Qcow2FeatureName>();
    public IReadOnlyList<Qcow2SnapshotEntry> Snapshots { get; init; } = Array.Empty<Qcow2SnapshotEntry>();
    /// <summary>Incompatible bit 0: the image was not closed cleanly (lazy refcounts).</summary>
    public bool IsDirty => (Header.IncompatibleFeatures & 1) != 0;
    /// <summary>Incompatible bit 1: qemu marked the image corrupt.</summary>
    public bool IsCorrupt => (Header.IncompatibleFeatures & 2) != 0;
}
