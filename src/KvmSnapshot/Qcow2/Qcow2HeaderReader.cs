using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Text;

namespace KvmSnapshot.Qcow2;

/// <summary>What the first cluster of a qcow2 file says: header, backing file, extensions.</summary>
internal sealed record Qcow2Metadata(
    Qcow2Header Header,
    string? BackingFile,
    string? BackingFormat,
    string? ExternalDataFile,
    IReadOnlyList<Qcow2FeatureName> FeatureNames);

/// <summary>
/// Parses the header, its extensions and the backing file name. qcow2 keeps all of them in the first cluster, so
/// the reader loads that cluster once (at most 2 MiB, never more than the file) and slices it with bounds checks.
/// The checks follow what qemu 7.2 refuses in qcow2_do_open, so "valid here" means "qemu opens it".
/// </summary>
internal static class Qcow2HeaderReader
{
    public static Qcow2Metadata Read(BoundedImageReader file)
    {
        var path = file.Path;
        if (file.Length < 4)
        {
            throw Qcow2Errors.NotQcow2(path, file.Length == 0 ? "the file is empty" : $"the file is only {file.Length} bytes long");
        }

        Span<byte> fixedHeader = stackalloc byte[Qcow2Layout.HeaderV2Length];
        file.ReadAt(0, fixedHeader[..4], "the magic number");
        var magic = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader);
        if (magic != Qcow2Layout.Magic)
        {
            throw Qcow2Errors.NotQcow2(path, $"it starts with 0x{magic:x8}, not the qcow2 magic \"QFI\\xfb\" (0x{Qcow2Layout.Magic:x8})");
        }
        if (file.Length < Qcow2Layout.HeaderV2Length)
        {
            throw file.Malformed($"the file is {file.Length} bytes long, shorter than the {Qcow2Layout.HeaderV2Length}-byte qcow2 header; it is truncated");
        }
        file.ReadAt(0, fixedHeader, "the qcow2 header");

        var version = U32(fixedHeader, Qcow2Layout.VersionOffset);
        if (version is not (2 or 3))
        {
            throw file.Malformed(version == 1
                ? "header version 1 is the original qcow format, not qcow2 (versions 2 and 3)"
                : $"header version {version} is not a qcow2 version (2 or 3)");
        }

        var clusterBits = U32(fixedHeader, Qcow2Layout.ClusterBitsOffset);
        if (clusterBits is < Qcow2Layout.MinClusterBits or > Qcow2Layout.MaxClusterBits)
        {
            throw file.Malformed($"cluster_bits is {clusterBits}; qcow2 clusters are 2^{Qcow2Layout.MinClusterBits} to 2^{Qcow2Layout.MaxClusterBits} bytes");
        }
        var clusterSize = 1 << (int)clusterBits;
        using var firstCluster = new FirstCluster(file, clusterSize);

        ulong incompatible = 0, compatible = 0, autoclear = 0;
        uint refcountOrder = 4, headerLength = Qcow2Layout.HeaderV2Length;
        byte compressionType = Qcow2Layout.CompressionZlib;
        if (version == 3)
        {
            var v3 = firstCluster.Slice(Qcow2Layout.HeaderV2Length, Qcow2Layout.HeaderV3MinLength - Qcow2Layout.HeaderV2Length, "the version 3 header fields");
            incompatible = BinaryPrimitives.ReadUInt64BigEndian(v3);
            compatible = BinaryPrimitives.ReadUInt64BigEndian(v3[8..]);
            autoclear = BinaryPrimitives.ReadUInt64BigEndian(v3[16..]);
            refcountOrder = BinaryPrimitives.ReadUInt32BigEndian(v3[24..]);
            headerLength = BinaryPrimitives.ReadUInt32BigEndian(v3[28..]);
            if (headerLength < Qcow2Layout.HeaderV3MinLength)
            {
                throw file.Malformed($"header_length is {headerLength}; a version 3 header is at least {Qcow2Layout.HeaderV3MinLength} bytes");
            }
            if (headerLength > clusterSize)
            {
                throw file.Malformed($"header_length {headerLength} exceeds the cluster size ({clusterSize} bytes)");
            }
            var fullHeader = firstCluster.Slice(0, headerLength, "the header");
            if (headerLength > Qcow2Layout.CompressionTypeOffset)
            {
                compressionType = fullHeader[Qcow2Layout.CompressionTypeOffset];
            }
        }

        var header = new Qcow2Header
        {
            Version = version,
            BackingFileOffset = U64(fixedHeader, Qcow2Layout.BackingFileOffsetOffset),
            BackingFileSize = U32(fixedHeader, Qcow2Layout.BackingFileSizeOffset),
            ClusterBits = clusterBits,
            Size = U64(fixedHeader, Qcow2Layout.SizeOffset),
            CryptMethod = U32(fixedHeader, Qcow2Layout.CryptMethodOffset),
            L1Size = U32(fixedHeader, Qcow2Layout.L1SizeOffset),
            L1TableOffset = U64(fixedHeader, Qcow2Layout.L1TableOffsetOffset),
            RefcountTableOffset = U64(fixedHeader, Qcow2Layout.RefcountTableOffsetOffset),
            RefcountTableClusters = U32(fixedHeader, Qcow2Layout.RefcountTableClustersOffset),
            SnapshotCount = U32(fixedHeader, Qcow2Layout.SnapshotCountOffset),
            SnapshotsOffset = U64(fixedHeader, Qcow2Layout.SnapshotsOffsetOffset),
            IncompatibleFeatures = incompatible,
            CompatibleFeatures = compatible,
            AutoclearFeatures = autoclear,
            RefcountOrder = refcountOrder,
            HeaderLength = headerLength,
            CompressionType = compressionType,
        };

        ValidateFields(file, header);
        // qemu's order: the backing name's place bounds the extension area, the extensions come first in the
        // file, then the name itself. Reading in that order reports the first damaged structure.
        ValidateBackingFileNamePlace(firstCluster, header);
        var extensions = ReadExtensions(firstCluster, header);
        var backingFile = ReadBackingFileName(firstCluster, header);
        RejectUnknownIncompatibleFeatures(file, header, extensions.FeatureNames);

        return new Qcow2Metadata(header, backingFile, extensions.BackingFormat, extensions.ExternalDataFile, extensions.FeatureNames);
    }

    private static void ValidateFields(BoundedImageReader file, Qcow2Header header)
    {
        if (header.RefcountOrder > Qcow2Layout.MaxRefcountOrder)
        {
            throw file.Malformed($"refcount_order is {header.RefcountOrder}; refcounts are at most 2^{Qcow2Layout.MaxRefcountOrder} bits wide");
        }
        if (header.CryptMethod > Qcow2Layout.CryptLuks)
        {
            throw Qcow2Errors.Unsupported(file.Path, $"encryption method {header.CryptMethod} (known: 0 none, 1 aes, 2 luks)");
        }

        var compressionBitSet = (header.IncompatibleFeatures & (1UL << Qcow2Layout.IncompatibleCompressionTypeBit)) != 0;
        switch (header.CompressionType)
        {
            case Qcow2Layout.CompressionZlib when compressionBitSet:
                throw file.Malformed("the compression-type feature bit is set but the compression type is zlib, the default");
            case Qcow2Layout.CompressionZlib:
                break;
            case Qcow2Layout.CompressionZstd when !compressionBitSet:
                throw file.Malformed("the compression type is zstd but the compression-type incompatible feature bit is not set");
            case Qcow2Layout.CompressionZstd:
                break;
            default:
                throw Qcow2Errors.Unsupported(file.Path, $"compression type {header.CompressionType} (known: 0 zlib, 1 zstd)");
        }

        var extendedL2 = (header.IncompatibleFeatures & (1UL << Qcow2Layout.IncompatibleExtendedL2Bit)) != 0;
        if (extendedL2 && header.ClusterBits < Qcow2Layout.MinClusterBitsWithExtendedL2)
        {
            throw file.Malformed($"extended L2 entries need clusters of at least {1 << Qcow2Layout.MinClusterBitsWithExtendedL2} bytes, the cluster size is {1 << (int)header.ClusterBits}");
        }

        if (header.Size > long.MaxValue)
        {
            throw file.Malformed($"the virtual size {header.Size} does not fit in a signed 64-bit integer");
        }
        if (header.L1Size > Qcow2Layout.MaxL1Entries)
        {
            throw file.Malformed($"the active L1 table has {header.L1Size} entries, more than the {Qcow2Layout.MaxL1Entries} qemu allows");
        }
        // Each L1 entry maps one L2 table's worth of guest clusters; the L1 table must cover the virtual size.
        var l2Entries = (1UL << (int)header.ClusterBits) / (extendedL2 ? 16UL : 8UL);
        var bytesPerL1Entry = l2Entries << (int)header.ClusterBits;
        var neededL1Entries = header.Size / bytesPerL1Entry + (header.Size % bytesPerL1Entry == 0 ? 0UL : 1UL);
        if (neededL1Entries > int.MaxValue)
        {
            throw file.Malformed($"the virtual size {header.Size} is too big for {1 << (int)header.ClusterBits}-byte clusters");
        }
        if (header.L1Size < neededL1Entries)
        {
            throw file.Malformed($"the active L1 table has {header.L1Size} entries but the virtual size {header.Size} needs {neededL1Entries}");
        }
    }

    private static void ValidateBackingFileNamePlace(FirstCluster firstCluster, Qcow2Header header)
    {
        if (header.BackingFileOffset == 0)
        {
            return;
        }
        var file = firstCluster.File;
        if (header.BackingFileOffset > (ulong)firstCluster.ClusterSize)
        {
            throw file.Malformed($"the backing file name offset 0x{header.BackingFileOffset:x} lies outside the first cluster ({firstCluster.ClusterSize} bytes)");
        }
        if (header.BackingFileSize > Qcow2Layout.MaxBackingFileNameLength)
        {
            throw file.Malformed($"the backing file name is {header.BackingFileSize} bytes long; qemu allows at most {Qcow2Layout.MaxBackingFileNameLength}");
        }
    }

    private static string? ReadBackingFileName(FirstCluster firstCluster, Qcow2Header header)
    {
        if (header.BackingFileOffset == 0)
        {
            return null;
        }
        var name = CString(firstCluster.Slice(header.BackingFileOffset, header.BackingFileSize, "the backing file name"));
        // An empty name at a non-zero offset is how some tools "remove" a backing file; qemu then has none.
        return name.Length == 0 ? null : name;
    }

    private sealed class Extensions
    {
        public string? BackingFormat { get; set; }
        public string? ExternalDataFile { get; set; }
        public List<Qcow2FeatureName> FeatureNames { get; } = new();
    }

    private static Extensions ReadExtensions(FirstCluster firstCluster, Qcow2Header header)
    {
        var file = firstCluster.File;
        var result = new Extensions();
        // Extensions run from the end of the header to the backing file name, or to the end of the first cluster.
        var end = header.BackingFileOffset != 0 ? header.BackingFileOffset : (ulong)firstCluster.ClusterSize;
        var endDescription = header.BackingFileOffset != 0
            ? $"the backing file name at 0x{header.BackingFileOffset:x}"
            : $"the end of the first cluster ({firstCluster.ClusterSize} bytes)";
        var offset = (ulong)header.HeaderLength;

        // offset grows by at least 8 per step and end is at most one cluster (2 MiB): the walk is bounded.
        while (offset < end)
        {
            if (end - offset < 8)
            {
                throw file.Malformed($"the header extension at 0x{offset:x} is cut off by {endDescription}");
            }
            var extensionHeader = firstCluster.Slice(offset, 8, "a header extension");
            var type = BinaryPrimitives.ReadUInt32BigEndian(extensionHeader);
            var length = BinaryPrimitives.ReadUInt32BigEndian(extensionHeader[4..]);
            if (type == Qcow2Layout.ExtensionEnd)
            {
                break;
            }
            var dataOffset = offset + 8;
            if (length > end - dataOffset)
            {
                throw file.Malformed($"header extension 0x{type:x8} at 0x{offset:x} claims {length} bytes, which runs past {endDescription}");
            }
            var data = firstCluster.Slice(dataOffset, length, $"header extension 0x{type:x8}");
            switch (type)
            {
                case Qcow2Layout.ExtensionBackingFormat:
                    if (length > Qcow2Layout.MaxBackingFormatLength)
                    {
                        throw file.Malformed($"the backing format extension is {length} bytes long; qemu allows at most {Qcow2Layout.MaxBackingFormatLength}");
                    }
                    result.BackingFormat = CString(data);
                    break;
                case Qcow2Layout.ExtensionFeatureNameTable:
                    result.FeatureNames.Clear();
                    for (var entry = 0; entry + Qcow2Layout.FeatureNameEntrySize <= data.Length; entry += Qcow2Layout.FeatureNameEntrySize)
                    {
                        result.FeatureNames.Add(new Qcow2FeatureName(
                            data[entry],
                            data[entry + 1],
                            CString(data.Slice(entry + 2, Qcow2Layout.FeatureNameLength))));
                    }
                    break;
                case Qcow2Layout.ExtensionExternalDataFile:
                    result.ExternalDataFile = CString(data);
                    break;
                default:
                    // Bitmaps, encryption header and extensions from newer qemu: not needed here, skipped as qemu does.
                    break;
            }
            dataOffset += length;
            offset = dataOffset + ((8 - dataOffset % 8) % 8);
        }
        return result;
    }

    private static void RejectUnknownIncompatibleFeatures(BoundedImageReader file, Qcow2Header header, IReadOnlyList<Qcow2FeatureName> featureNames)
    {
        var unknown = header.IncompatibleFeatures & ~Qcow2Layout.KnownIncompatibleFeatures;
        if (unknown == 0)
        {
            return;
        }
        var described = new List<string>();
        for (var bit = 0; bit < 64; bit++)
        {
            if ((unknown & (1UL << bit)) == 0)
            {
                continue;
            }
            string? name = null;
            foreach (var feature in featureNames)
            {
                if (feature.Type == 0 && feature.Bit == bit)
                {
                    name = feature.Name;
                }
            }
            described.Add(name is null ? $"incompatible feature bit {bit}" : $"incompatible feature bit {bit} ('{name}')");
        }
        throw Qcow2Errors.Unsupported(file.Path, string.Join(", ", described) + "; a newer qemu may be able to open it");
    }

    /// <summary>qemu treats these fields as C strings: anything after the first NUL is ignored.</summary>
    private static string CString(ReadOnlySpan<byte> bytes)
    {
        var nul = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? bytes[..nul] : bytes);
    }

    private static uint U32(ReadOnlySpan<byte> header, int offset) => BinaryPrimitives.ReadUInt32BigEndian(header[offset..]);

    private static ulong U64(ReadOnlySpan<byte> header, int offset) => BinaryPrimitives.ReadUInt64BigEndian(header[offset..]);

    /// <summary>
    /// The first cluster, read as far as the structures asked for reach: the header, its extensions and the backing
    /// file name usually end within the first 4 KiB, and a cluster can be 2 MiB. Slices say whether a structure leaves
    /// the cluster or the file, as if the whole cluster had been read.
    /// </summary>
    private sealed class FirstCluster : IDisposable
    {
        /// <summary>What is read at first; more is read when a slice reaches past it.</summary>
        internal const int InitialRead = 4096;

        private readonly long _readable;
        // Rented, not allocated: a store scan reads thousands of headers, and nothing parsed from the cluster keeps a
        // reference into it (names and extensions are copied out), so it goes back to the pool when the read ends.
        private byte[] _buffer;
        private int _length;

        public FirstCluster(BoundedImageReader file, int clusterSize)
        {
            File = file;
            ClusterSize = clusterSize;
            _readable = Math.Min(clusterSize, file.Length);
            _length = (int)Math.Min(_readable, InitialRead);
            _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(_length, 1));
            file.ReadAt(0, _buffer.AsSpan(0, _length), "the first cluster");
        }

        public BoundedImageReader File { get; }

        public int ClusterSize { get; }

        /// <summary>
        /// The bytes at <paramref name="offset"/>. Valid only until the next Slice: one that reads on moves the data to a
        /// bigger buffer and returns the old one to the pool, so use each span before asking for another.
        /// </summary>
        public ReadOnlySpan<byte> Slice(ulong offset, ulong length, string what)
        {
            if (offset > (ulong)ClusterSize || length > (ulong)ClusterSize - offset)
            {
                throw File.Malformed($"{what} at offset 0x{offset:x} ({length} bytes) extends beyond the first cluster ({ClusterSize} bytes), where qcow2 keeps it");
            }
            if (offset + length > (ulong)_readable)
            {
                throw File.Malformed($"{what} at offset 0x{offset:x} ({length} bytes) lies past the end of the file ({File.Length} bytes); the image is truncated");
            }
            if (offset + length > (ulong)_length) Grow((long)(offset + length));
            return _buffer.AsSpan((int)offset, (int)length);
        }

        /// <summary>Reads on to at least <paramref name="end"/> (whole 4 KiB pages, at least doubling, never past the cluster or the file).</summary>
        private void Grow(long end)
        {
            var pages = (end + InitialRead - 1) / InitialRead * InitialRead;
            var size = (int)Math.Min(_readable, Math.Max(pages, 2L * _length));
            var more = ArrayPool<byte>.Shared.Rent(size);
            _buffer.AsSpan(0, _length).CopyTo(more);
            File.ReadAt((ulong)_length, more.AsSpan(_length, size - _length), "the first cluster");
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = more;
            _length = size;
        }

        public void Dispose()
        {
            var buffer = _buffer;
            _buffer = Array.Empty<byte>();
            _length = 0;
            if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
