using System;
using System.Collections.Generic;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Model;

namespace KvmSnapshot.Offline;

// The plans OfflineEngine.Chains.cs makes for Invoke-KvmBlockCommit/-Pull -Path: what the data step will do, checked
// before anything changes.

/// <summary>A validated commit: every path resolved, safety checks passed (or forced).</summary>
internal sealed class CommitPlan
{
    public required SnapshotChain Chain { get; init; }
    public required ChainLayer Top { get; init; }
    public required ChainLayer Base { get; init; }
    /// <summary>The layer directly above Top, rebased onto Base after the commit; null when Top is the active image.</summary>
    public ChainLayer? Overlay { get; init; }
    /// <summary>Top and every layer between Top and Base.</summary>
    public required IReadOnlyList<ChainLayer> MergedLayers { get; init; }
    /// <summary>Images outside the chain whose view the commit changes (they use Base or a layer below Top).</summary>
    public IReadOnlyList<string> AffectedImages { get; init; } = Array.Empty<string>();
    /// <summary>libvirt snapshots whose content the commit changes (their frozen chain reads Base but not Top).</summary>
    public IReadOnlyList<string> StaleSnapshots { get; init; } = Array.Empty<string>();
    public bool RemoveMergedLayers { get; init; }
    /// <summary>With RemoveMergedLayers: which merged layers would go if nothing changes before the commit ends (for -WhatIf).</summary>
    internal LayerRemovalPlan? RemovalPreview { get; init; }
    /// <summary>The extra directories the user asked to search (scanned with their subdirectories).</summary>
    public IReadOnlyList<string> SearchDirectories { get; init; } = Array.Empty<string>();
    /// <summary>What the commit may write into Base's file system (the allocated size of the merged layers).</summary>
    public SpaceEstimate? Space { get; init; }
    public override string ToString() => (Overlay is null
        ? $"commit {Top.Name} down into {Base.Name}"
        : $"commit {Top.Name} down into {Base.Name}, then point {Overlay.Name} at {Base.Name}") + SpaceEstimate.ActionSuffix(Space);
}

internal sealed class PullPlan
{
    public required SnapshotChain Chain { get; init; }
    /// <summary>The image receiving the data.</summary>
    public required ChainLayer Target { get; init; }
    /// <summary>The new backing file, or null to flatten.</summary>
    public ChainLayer? Base { get; init; }
    public required IReadOnlyList<ChainLayer> MergedLayers { get; init; }
    public bool RemoveMergedLayers { get; init; }
    /// <summary>With RemoveMergedLayers: which merged layers would go if nothing changes before the pull ends (for -WhatIf).</summary>
    internal LayerRemovalPlan? RemovalPreview { get; init; }
    /// <summary>The extra directories the user asked to search for other users of the merged layers.</summary>
    public IReadOnlyList<string> SearchDirectories { get; init; } = Array.Empty<string>();
    /// <summary>What the pull may write into Target's file system (the allocated size of the merged layers).</summary>
    public SpaceEstimate? Space { get; init; }
    public override string ToString() => (Base is null
        ? $"pull all backing data into {Target.Name} (flatten)"
        : $"pull {string.Join(", ", System.Linq.Enumerable.Select(MergedLayers, l => l.Name))} into {Target.Name}, then back it with {Base.Name}")
        + SpaceEstimate.ActionSuffix(Space);
}
