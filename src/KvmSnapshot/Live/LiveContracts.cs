using System;
using System.Collections.Generic;

namespace KvmSnapshot.Live;

public sealed record DiskSpec
{
    /// <summary>Disk target (vda).</summary>
    public required string Disk { get; init; }
    /// <summary>internal, external or no.</summary>
    public string Snapshot { get; init; } = "external";
    /// <summary>External overlay path; default chosen by libvirt (next to the image, suffixed with the snapshot name).</summary>
    public string? File { get; init; }
    public string? Driver { get; init; }
}

public sealed record NewDomainSnapshotRequest
{
    public string? Name { get; init; }
    public string? Description { get; init; }
    /// <summary>External disk-only snapshot (VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY).</summary>
    public bool DiskOnly { get; init; }
    /// <summary>External snapshot with memory saved to this file.</summary>
    public string? MemoryFile { get; init; }
    public IReadOnlyList<DiskSpec> DiskSpecs { get; init; } = System.Array.Empty<DiskSpec>();
    public bool Atomic { get; init; }
    public bool Quiesce { get; init; }
    public bool NoMetadata { get; init; }
    public bool ReuseExternal { get; init; }
    /// <summary>Overwrite an existing MemoryFile, unless snapshot metadata names it (then it is never overwritten).</summary>
    public bool Force { get; init; }
    /// <summary>Do not refuse up front when the space estimate exceeds the free space (a write that runs out still fails with DiskFull).</summary>
    public bool SkipSpaceCheck { get; init; }
}

public sealed record RevertOptions
{
    public bool Force { get; init; }
    public bool Running { get; init; }
    public bool Paused { get; init; }
}

public sealed record DeleteSnapshotOptions
{
    public bool Children { get; init; }
    public bool ChildrenOnly { get; init; }
    public bool MetadataOnly { get; init; }
}

public sealed record BlockCommitRequest
{
    public required string Domain { get; init; }
    public required string Disk { get; init; }
    /// <summary>Path of the top layer; null = the active layer (active commit).</summary>
    public string? Top { get; init; }
    /// <summary>Path of the base layer; null = Top's immediate backing file... per libvirt: the chain's base.</summary>
    public string? Base { get; init; }
    /// <summary>Merge only Top into its immediate backing file (VIR_DOMAIN_BLOCK_COMMIT_SHALLOW).</summary>
    public bool Shallow { get; init; }
    /// <summary>Active commit: wait for ready, then pivot the disk onto Base.</summary>
    public bool Pivot { get; init; }
    public bool KeepRelative { get; init; }
    /// <summary>Bytes per second; 0 = unlimited.</summary>
    public ulong Bandwidth { get; init; }
    /// <summary>Return right after starting the job.</summary>
    public bool NoWait { get; init; }
    /// <summary>Commit even though images outside the chain use Base or a layer between it and Top (their content
    /// changes); without it that is a ChainBaseShared error, checked before the job starts (local connections).</summary>
    public bool Force { get; init; }
    /// <summary>After the job ended (and, for an active commit, pivoted), delete the merged layers that left the chain
    /// and that no other image uses. Needs waiting: refused with NoWait and with an active commit without Pivot.</summary>
    public bool RemoveMergedLayers { get; init; }
    /// <summary>
    /// With RemoveMergedLayers: receives which merged layers may go once the job ended, and deletes nothing itself
    /// (the cmdlet asks per file). Null: every layer the plan allows is deleted.
    /// </summary>
    internal Action<Chains.LayerRemovalPlan>? OnMergedLayers { get; init; }
    /// <summary>Do not refuse up front when the space estimate exceeds the free space (a write that runs out still fails with DiskFull).</summary>
    public bool SkipSpaceCheck { get; init; }
}

public sealed record BlockPullRequest
{
    public required string Domain { get; init; }
    public required string Disk { get; init; }
    /// <summary>Path of the new base (the layers above it are pulled in); null = full pull.</summary>
    public string? Base { get; init; }
    public bool KeepRelative { get; init; }
    public ulong Bandwidth { get; init; }
    public bool NoWait { get; init; }
    /// <summary>After the pull ended, delete the pulled-in layers that left the chain and that no other image uses.</summary>
    public bool RemoveMergedLayers { get; init; }
    /// <summary>
    /// With RemoveMergedLayers: receives which merged layers may go once the job ended, and deletes nothing itself
    /// (the cmdlet asks per file). Null: every layer the plan allows is deleted.
    /// </summary>
    internal Action<Chains.LayerRemovalPlan>? OnMergedLayers { get; init; }
    /// <summary>Do not refuse up front when the space estimate exceeds the free space (a write that runs out still fails with DiskFull).</summary>
    public bool SkipSpaceCheck { get; init; }
}
