using System;
using System.Collections.Generic;

namespace KvmSnapshot.Model;

[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter))]
public enum ChainProblemKind
{
    BackingFileMissing,
    BackingChainLoop,
    BackingFormatUnspecified,
    BackingFileNotFollowed,
    ImageUnreadable,
    ImageCorrupt,
    ImageLeakedClusters,
    SharedBase,
    /// <summary>A file libvirt records in one format carries another format's header (a raw disk holding a qcow2 header).</summary>
    FormatMismatch,
    /// <summary>A chain names a host file, not a disk image, as its raw backing file.</summary>
    BackingFileNotAnImage,
    /// <summary>
    /// qemu-img check could not read the layer because a running process holds it exclusively (QEMU during a block
    /// job on the disk): not checked now, which says nothing bad about the layer.
    /// </summary>
    ImageInUse,
}

[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter))]
public enum ChainProblemSeverity
{
    Information,
    Warning,
    Error,
}

/// <summary>One finding of Test-KvmSnapshotChain about one layer of a chain.</summary>
public sealed class ChainProblem
{
    public required ChainProblemKind Kind { get; init; }
    public required ChainProblemSeverity Severity { get; init; }
    /// <summary>The layer the finding is about.</summary>
    public required string Image { get; init; }
    public required string Message { get; init; }
    /// <summary>Other images involved (for a shared base: the images outside this chain that use it).</summary>
    public IReadOnlyList<string> RelatedImages { get => _relatedImages; init => _relatedImages = DisplayList.Of(value); }
    private readonly IReadOnlyList<string> _relatedImages = DisplayList<string>.None;

    public override string ToString() => $"{Severity} {Kind}: {Message}";
}

/// <summary>Test-KvmSnapshotChain's verdict on one chain.</summary>
public sealed class SnapshotChainTestResult
{
    public required SnapshotChain Chain { get; init; }
    public required IReadOnlyList<ChainProblem> Problems { get => _problems; init => _problems = DisplayList.Of(value, "; "); }
    private readonly IReadOnlyList<ChainProblem> _problems = DisplayList<ChainProblem>.None;
    public string Path => Chain.Path;
    public string? Domain => Chain.Domain;
    public string? Disk => Chain.Disk;
    public int Depth => Chain.Depth;
    /// <summary>The libvirt URI of a live chain's host (null for an image file's chain); binds by property name.</summary>
    public string? ConnectionUri => Chain.ConnectionUri;
    /// <summary>True when no finding has Error severity.</summary>
    public bool Passed
    {
        get
        {
            foreach (var p in Problems) if (p.Severity == ChainProblemSeverity.Error) return false;
            return true;
        }
    }
}
