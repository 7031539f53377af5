using System;
using System.Collections.Generic;

namespace KvmSnapshot.Live;

internal sealed record RevertOptions
{
    public bool Force { get; init; }
    public bool Running { get; init; }
    public bool Paused { get; init; }
}

internal sealed record DeleteSnapshotOptions
{
    public bool Children { get; init; }
    public bool ChildrenOnly { get; init; }
    public bool MetadataOnly { get; init; }
}

internal sealed record BlockCommitRequest
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

internal sealed record BlockPullRequest
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
