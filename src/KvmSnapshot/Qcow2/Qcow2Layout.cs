namespace KvmSnapshot.Qcow2;

/// <summary>
/// Byte offsets, magic numbers and limits of the qcow2 on-disk format (docs/interop/qcow2.txt). The limits are
/// the ones qemu 7.2 enforces when it opens an image, so this reader refuses exactly what qemu refuses to read.
/// </summary>
internal static class Qcow2Layout
{
    /// <summary>"QFI\xfb" read as a big-endian u32.</summary>
    public const uint Magic = 0x514649FB;

    // Fixed header fields, byte offsets.
    public const int VersionOffset = 4;
    public const int BackingFileOffsetOffset = 8;
    public const int BackingFileSizeOffset = 16;
    public const int ClusterBitsOffset = 20;
    public const int SizeOffset = 24;
    public const int CryptMethodOffset = 32;
    public const int L1SizeOffset = 36;
    public const int L1TableOffsetOffset = 40;
    public const int RefcountTableOffsetOffset = 48;
    public const int RefcountTableClustersOffset = 56;
    public const int SnapshotCountOffset = 60;
    public const int SnapshotsOffsetOffset = 64;
    public const int IncompatibleFeaturesOffset = 72;
    public const int CompatibleFeaturesOffset = 80;
    public const int AutoclearFeaturesOffset = 88;
    public const int RefcountOrderOffset = 96;
    public const int HeaderLengthOffset = 100;
    public const int CompressionTypeOffset = 104;

    /// <summary>A v2 header ends after snapshots_offset; its extensions start right there.</summary>
    public const int HeaderV2Length = 72;
    /// <summary>The shortest v3 header qemu accepts (everything up to header_length).</summary>
    public const int HeaderV3MinLength = 104;

    // qemu's MIN_CLUSTER_BITS / MAX_CLUSTER_BITS: 512 bytes to 2 MiB.
    public const int MinClusterBits = 9;
    public const int MaxClusterBits = 21;

    /// <summary>qemu rejects refcount_order above 6 (64-bit refcounts).</summary>
    public const int MaxRefcountOrder = 6;

    /// <summary>qemu's QCOW_MAX_L1_SIZE (32 MiB) in 8-byte entries.</summary>
    public const uint MaxL1Entries = 32 * 1024 * 1024 / 8;

    /// <summary>qemu keeps the backing file name in a 1024-byte buffer, NUL included.</summary>
    public const int MaxBackingFileNameLength = 1023;

    /// <summary>qemu keeps the backing format in a 16-byte buffer, NUL included.</summary>
    public const int MaxBackingFormatLength = 15;

    // Snapshot table limits (QCOW_MAX_SNAPSHOTS, QCOW_MAX_SNAPSHOTS_SIZE, QCOW_MAX_SNAPSHOT_EXTRA_DATA).
    public const int MaxSnapshots = 65536;
    public const long MaxSnapshotTableSize = 1024L * MaxSnapshots;
    public const int MaxSnapshotExtraData = 1024;

    /// <summary>Fixed part of a snapshot table entry, before extra data, id and name.</summary>
    public const int SnapshotEntryFixedSize = 40;

    // Header extension types.
    public const uint ExtensionEnd = 0;
    public const uint ExtensionBackingFormat = 0xE2792ACA;
    public const uint ExtensionFeatureNameTable = 0x6803F857;
    public const uint ExtensionBitmaps = 0x23852875;
    public const uint ExtensionFullDiskEncryption = 0x0537BE77;
    public const uint ExtensionExternalDataFile = 0x44415441;

    /// <summary>Size of one feature-name table entry: type (1), bit (1), name (46, NUL-padded).</summary>
    public const int FeatureNameEntrySize = 48;
    public const int FeatureNameLength = 46;

    // Incompatible feature bits qemu 7.2 understands.
    public const int IncompatibleDirtyBit = 0;
    public const int IncompatibleCorruptBit = 1;
    public const int IncompatibleExternalDataFileBit = 2;
    public const int IncompatibleCompressionTypeBit = 3;
    public const int IncompatibleExtendedL2Bit = 4;
    public const ulong KnownIncompatibleFeatures = 0x1F;

    public const int CompatibleLazyRefcountsBit = 0;
    public const int AutoclearBitmapsBit = 0;
    public const int AutoclearExternalDataFileRawBit = 1;

    public const byte CompressionZlib = 0;
    public const byte CompressionZstd = 1;

    public const uint CryptNone = 0;
    public const uint CryptAes = 1;
    public const uint CryptLuks = 2;

    /// <summary>Extended L2 entries need clusters of at least 16 KiB (32 subclusters of 512 bytes).</summary>
    public const int MinClusterBitsWithExtendedL2 = 14;
}
