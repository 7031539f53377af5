using System;
using System.Collections.Generic;

namespace KvmSnapshot.Qcow2;

/// <summary>The fixed qcow2 header fields (v2: the first 72 bytes; v3 adds the rest).</summary>
internal sealed class Qcow2Header
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
internal sealed record Qcow2FeatureName(byte Type, byte Bit, string Name);

/// <summary>One entry of the snapshot table.</summary>
internal sealed class Qcow2SnapshotEntry
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
internal sealed class Qcow2Image
{
    public required string Path { get; init; }
    public required Qcow2Header Header { get; init; }
    public int ClusterSize => 1 << (int)Header.ClusterBits;
    public string? BackingFile { get; init; }
    /// <summary>From the backing-file-format header extension; null when not recorded.</summary>
    public string? BackingFormat { get; init; }
    /// <summary>
    /// From the external-data-file header extension, as qemu-img info reports it. Guest data is only in that file
    /// when <see cref="HasExternalDataFile"/> is true.
    /// </summary>
    public string? ExternalDataFile { get; init; }
    public IReadOnlyList<Qcow2FeatureName> FeatureNames { get; init; } = Array.Empty<Qcow2FeatureName>();
    public IReadOnlyList<Qcow2SnapshotEntry> Snapshots { get; init; } = Array.Empty<Qcow2SnapshotEntry>();
    /// <summary>Incompatible bit 0: the image was not closed cleanly (lazy refcounts).</summary>
    public bool IsDirty => (Header.IncompatibleFeatures & 1) != 0;
    /// <summary>Incompatible bit 1: qemu marked the image corrupt.</summary>
    public bool IsCorrupt => (Header.IncompatibleFeatures & 2) != 0;
    /// <summary>Incompatible bit 2: guest data lives in <see cref="ExternalDataFile"/>, not in this file.</summary>
    public bool HasExternalDataFile => (Header.IncompatibleFeatures & 4) != 0;
    /// <summary>Autoclear bit 1: the external data file is a valid raw image by itself (qemu-img "data-file-raw").</summary>
    public bool ExternalDataFileRaw => (Header.AutoclearFeatures & 2) != 0;
    /// <summary>Incompatible bit 4: L2 entries carry subcluster bitmaps (qemu-img "extended-l2").</summary>
    public bool ExtendedL2 => (Header.IncompatibleFeatures & 16) != 0;
    /// <summary>Compatible bit 0 (qemu-img "lazy-refcounts").</summary>
    public bool LazyRefcounts => (Header.CompatibleFeatures & 1) != 0;
    /// <summary>qemu-img's "compat": 0.10 for version 2 headers, 1.1 for version 3.</summary>
    public string CompatLevel => Header.Version >= 3 ? "1.1" : "0.10";
    /// <summary>qemu-img's "refcount-bits".</summary>
    public int RefcountBits => 1 << (int)Header.RefcountOrder;
    /// <summary>qemu-img's "compression-type".</summary>
    public string CompressionTypeName => Header.CompressionType == 1 ? "zstd" : "zlib";
    /// <summary>Guest-visible size in bytes (qemu-img "virtual-size"); the reader rejects sizes above Int64.MaxValue.</summary>
    public long VirtualSize => (long)Header.Size;
    /// <summary>qemu-img's "encrypt.format": null, "aes" or "luks".</summary>
    public string? EncryptionFormat => Header.CryptMethod switch { 1 => "aes", 2 => "luks", _ => null };
}
