using System.Collections.Generic;
using System.Text.Json.Serialization;

namespace KvmSnapshot.QemuImg;

// The shapes of qemu-img's --output=json documents (qemu 7.2 names). Only what the module reads is declared;
// unknown members are ignored so newer qemu-img versions still parse.

/// <summary><c>qemu-img info --output=json</c>: one image (an array of these with --backing-chain).</summary>
internal sealed class QemuImgInfo
{
    [JsonPropertyName("filename")] public string Filename { get; init; } = string.Empty;
    [JsonPropertyName("format")] public string Format { get; init; } = string.Empty;
    [JsonPropertyName("virtual-size")] public long VirtualSize { get; init; }
    [JsonPropertyName("actual-size")] public long? ActualSize { get; init; }
    [JsonPropertyName("cluster-size")] public int? ClusterSize { get; init; }
    [JsonPropertyName("encrypted")] public bool? Encrypted { get; init; }
    [JsonPropertyName("dirty-flag")] public bool? DirtyFlag { get; init; }
    [JsonPropertyName("backing-filename")] public string? BackingFilename { get; init; }
    [JsonPropertyName("full-backing-filename")] public string? FullBackingFilename { get; init; }
    [JsonPropertyName("backing-filename-format")] public string? BackingFilenameFormat { get; init; }
    [JsonPropertyName("snapshots")] public List<QemuImgSnapshotInfo>? Snapshots { get; init; }
    [JsonPropertyName("format-specific")] public QemuImgFormatSpecific? FormatSpecific { get; init; }
}

/// <summary>One extent of <c>qemu-img map --output=json</c>: a guest range and where its data lives.</summary>
internal sealed class QemuImgMapExtent
{
    [JsonPropertyName("start")] public long Start { get; init; }
    [JsonPropertyName("length")] public long Length { get; init; }
    /// <summary>0 = the image mapped, 1 = its backing file, …; past the chain's end when nothing holds the range.</summary>
    [JsonPropertyName("depth")] public int Depth { get; init; }
    [JsonPropertyName("present")] public bool? Present { get; init; }
    [JsonPropertyName("zero")] public bool Zero { get; init; }
    [JsonPropertyName("data")] public bool Data { get; init; }
    /// <summary>Where the data starts in the file at <see cref="Depth"/>; absent for compressed or unmappable data.</summary>
    [JsonPropertyName("offset")] public long? Offset { get; init; }
    [JsonPropertyName("compressed")] public bool? Compressed { get; init; }
}

/// <summary>qemu-img measure --output=json.</summary>
internal sealed class QemuImgMeasure
{
    [JsonPropertyName("required")] public long Required { get; init; }
    [JsonPropertyName("fully-allocated")] public long FullyAllocated { get; init; }
}

internal sealed class QemuImgFormatSpecific
{
    [JsonPropertyName("type")] public string? Type { get; init; }
    [JsonPropertyName("data")] public QemuImgFormatSpecificData? Data { get; init; }
}

internal sealed class QemuImgFormatSpecificData
{
    [JsonPropertyName("compat")] public string? Compat { get; init; }
    [JsonPropertyName("lazy-refcounts")] public bool? LazyRefcounts { get; init; }
    [JsonPropertyName("corrupt")] public bool? Corrupt { get; init; }
    [JsonPropertyName("refcount-bits")] public int? RefcountBits { get; init; }
    [JsonPropertyName("data-file")] public string? DataFile { get; init; }
    [JsonPropertyName("compression-type")] public string? CompressionType { get; init; }
    [JsonPropertyName("extended-l2")] public bool? ExtendedL2 { get; init; }
}

/// <summary>One entry of "snapshots" in <c>qemu-img info --output=json</c>.</summary>
internal sealed class QemuImgSnapshotInfo
{
    [JsonPropertyName("id")] public string Id { get; init; } = string.Empty;
    [JsonPropertyName("name")] public string Name { get; init; } = string.Empty;
    [JsonPropertyName("date-sec")] public long DateSec { get; init; }
    [JsonPropertyName("date-nsec")] public long DateNsec { get; init; }
    [JsonPropertyName("vm-clock-sec")] public long VmClockSec { get; init; }
    [JsonPropertyName("vm-clock-nsec")] public long VmClockNsec { get; init; }
    [JsonPropertyName("vm-state-size")] public long VmStateSize { get; init; }
    [JsonPropertyName("icount")] public long? InstructionCount { get; init; }
}

/// <summary><c>qemu-img check --output=json</c>.</summary>
internal sealed class QemuImgCheck
{
    [JsonPropertyName("filename")] public string Filename { get; init; } = string.Empty;
    [JsonPropertyName("format")] public string Format { get; init; } = string.Empty;
    [JsonPropertyName("check-errors")] public long CheckErrors { get; init; }
    [JsonPropertyName("corruptions")] public long Corruptions { get; init; }
    [JsonPropertyName("leaks")] public long Leaks { get; init; }
    [JsonPropertyName("corruptions-fixed")] public long CorruptionsFixed { get; init; }
    [JsonPropertyName("leaks-fixed")] public long LeaksFixed { get; init; }
    [JsonPropertyName("image-end-offset")] public long? ImageEndOffset { get; init; }
    [JsonPropertyName("total-clusters")] public long? TotalClusters { get; init; }
    [JsonPropertyName("allocated-clusters")] public long? AllocatedClusters { get; init; }
    [JsonPropertyName("fragmented-clusters")] public long? FragmentedClusters { get; init; }
    [JsonPropertyName("compressed-clusters")] public long? CompressedClusters { get; init; }
    /// <summary>qemu-img check's exit code: 0 clean, 2 corrupt, 3 leaks only.</summary>
    [JsonIgnore] public int ExitCode { get; init; }
}
