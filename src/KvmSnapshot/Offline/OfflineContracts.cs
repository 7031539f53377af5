using System.Collections.Generic;
using KvmSnapshot.Model;

namespace KvmSnapshot.Offline;

// Requests the offline cmdlets hand to the offline engine. Plain records: cmdlets fill them from parameters.

internal sealed record NewImageRequest
{
    public required string Path { get; init; }
    /// <summary>qcow2 or raw.</summary>
    public string Format { get; init; } = "qcow2";
    /// <summary>Virtual size in bytes; optional with a backing file (then the backing file's size).</summary>
    public long? Size { get; init; }
    public string? BackingFile { get; init; }
    /// <summary>Always recorded; probed natively when the caller gives none.</summary>
    public string? BackingFormat { get; init; }
    public int? ClusterSize { get; init; }
    /// <summary>off, metadata, falloc, full.</summary>
    public string? Preallocation { get; init; }
    /// <summary>Store the backing file name relative to the overlay's directory.</summary>
    public bool RelativeBackingFile { get; init; }
    /// <summary>Do not refuse up front when the space estimate exceeds the free space (a write that runs out still fails with DiskFull).</summary>
    public bool SkipSpaceCheck { get; init; }
}

internal sealed record ConvertImageRequest
{
    public required string Source { get; init; }
    public required string Destination { get; init; }
    /// <summary>qcow2 or raw.</summary>
    public string Format { get; init; } = "qcow2";
    public bool Compress { get; init; }
    /// <summary>When set, the destination keeps this image as its backing file (qemu-img convert -B) instead of being flattened.</summary>
    public string? BackingFile { get; init; }
    /// <summary>The source's format as the user vouches for it; null: libvirt's record, else probed.</summary>
    public string? SourceFormat { get; init; }
    /// <summary>Convert although the source's format was probed and its chain reads raw or host files.</summary>
    public bool Force { get; init; }
    /// <summary>Do not refuse up front when the space estimate exceeds the free space (a write that runs out still fails with DiskFull).</summary>
    public bool SkipSpaceCheck { get; init; }
}

internal sealed record CommitRequest
{
    /// <summary>Any image of the chain above or at Top: the active image the user names with -Path.</summary>
    public required string Path { get; init; }
    /// <summary>The format of the image named by Path as the user vouches for it; null: libvirt's record, else probed.</summary>
    public string? Format { get; init; }
    /// <summary>Highest layer to merge; default: the active image.</summary>
    public string? Top { get; init; }
    /// <summary>Layer receiving the data; default: Top's backing file.</summary>
    public string? Base { get; init; }
    /// <summary>Commit even though images outside the chain use the base (their view will change).</summary>
    public bool Force { get; init; }
    /// <summary>Delete the merged layers after a verified commit, when nothing else references them.</summary>
    public bool RemoveMergedLayers { get; init; }
    /// <summary>Extra directories to scan for other users of the base (the chain's own directories are always scanned).</summary>
    public IReadOnlyList<string> SearchDirectories { get; init; } = System.Array.Empty<string>();
    /// <summary>Do not refuse up front when the space estimate exceeds the free space (a write that runs out still fails with DiskFull).</summary>
    public bool SkipSpaceCheck { get; init; }
}

internal sealed record PullRequest
{
    /// <summary>The image that receives the data (an overlay).</summary>
    public required string Path { get; init; }
    /// <summary>New backing file after the pull; null flattens the image (no backing file).</summary>
    public string? Base { get; init; }
    /// <summary>The format of the image named by Path as the user vouches for it; null: libvirt's record, else probed.</summary>
    public string? Format { get; init; }
    /// <summary>Pull although the image's format was probed and its chain reads raw or host files.</summary>
    public bool Force { get; init; }
    public bool RemoveMergedLayers { get; init; }
    public IReadOnlyList<string> SearchDirectories { get; init; } = System.Array.Empty<string>();
    /// <summary>Do not refuse up front when the space estimate exceeds the free space (a write that runs out still fails with DiskFull).</summary>
    public bool SkipSpaceCheck { get; init; }
}

/// <summary>What a commit or pull did, for the cmdlet to emit and report.</summary>
internal sealed class ChainOperationResult
{
    public required SnapshotChain Chain { get; init; }
    public IReadOnlyList<string> MergedLayers { get; init; } = System.Array.Empty<string>();
    public IReadOnlyList<string> RemovedLayers { get; init; } = System.Array.Empty<string>();
    /// <summary>Layers kept although asked to remove them, with why.</summary>
    public IReadOnlyList<string> KeptLayers { get; init; } = System.Array.Empty<string>();
    /// <summary>When merged layers are to be removed: which may go (ask for each) and which stay, decided after the data step.</summary>
    internal Chains.LayerRemovalPlan? Removal { get; init; }
}
