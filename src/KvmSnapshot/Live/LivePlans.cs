using System.Collections.Generic;
using System.Linq;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

/// <summary>
/// A checked live commit (LiveEngine.PlanBlockCommit): the domain, disk, chain and layers resolved read-only, the
/// safety checks passed. Its text names the real files, for -WhatIf and -Confirm. LiveEngine.BlockCommit(plan)
/// refuses to start when the disk's chain changed since.
/// </summary>
internal sealed class LiveCommitPlan
{
    public required BlockCommitRequest Request { get; init; }
    /// <summary>The domain's name as libvirt spells it.</summary>
    public required string Domain { get; init; }
    /// <summary>The disk target (vda), even when the request named the disk by its image path.</summary>
    public required string Disk { get; init; }
    public required SnapshotChain Chain { get; init; }
    public required ChainLayer Top { get; init; }
    public required ChainLayer Base { get; init; }
    /// <summary>Top and every layer between it and Base.</summary>
    public required IReadOnlyList<ChainLayer> MergedLayers { get; init; }
    /// <summary>With RemoveMergedLayers: which merged layers would go if nothing changes before the job ends (for -WhatIf).</summary>
    internal Chains.LayerRemovalPlan? RemovalPreview { get; init; }
    /// <summary>What the commit may write into Base's file system (local connections; null when unknown).</summary>
    public Chains.SpaceEstimate? Space { get; init; }
    /// <summary>Top is the layer the domain writes to: an active commit, pivoted or left mirroring.</summary>
    public bool IsActiveCommit => Top.Position == 0;

    public override string ToString()
    {
        var text = IsActiveCommit ? $"commit the active layer {Top.Path}" : $"commit {Top.Path}";
        if (MergedLayers.Count > 1) text += $" and the layers below it ({string.Join(", ", MergedLayers.Skip(1).Select(l => l.Path))})";
        text += $" into {Base.Path} on {Domain}/{Disk}";
        if (IsActiveCommit && !Request.NoWait)
        {
            text += Request.Pivot ? $", then pivot {Domain}/{Disk} onto {Base.Path}" : ", then leave it mirroring until Complete-KvmBlockJob pivots it";
        }
        if (Request.RemoveMergedLayers) text += ", then delete the merged layers that no image uses";
        return text + Chains.SpaceEstimate.ActionSuffix(Space);
    }
}

/// <summary>A checked live pull (LiveEngine.PlanBlockPull); see <see cref="LiveCommitPlan"/>.</summary>
internal sealed class LivePullPlan
{
    public required BlockPullRequest Request { get; init; }
    public required string Domain { get; init; }
    public required string Disk { get; init; }
    public required SnapshotChain Chain { get; init; }
    /// <summary>The active layer, which receives the data.</summary>
    public required ChainLayer Target { get; init; }
    /// <summary>The layer that stays as backing file; null for a full pull.</summary>
    public ChainLayer? Base { get; init; }
    /// <summary>The layers whose data is pulled into Target.</summary>
    public required IReadOnlyList<ChainLayer> MergedLayers { get; init; }
    /// <summary>With RemoveMergedLayers: which merged layers would go if nothing changes before the job ends (for -WhatIf).</summary>
    internal Chains.LayerRemovalPlan? RemovalPreview { get; init; }
    /// <summary>What the pull may write into Target's file system (local connections; null when unknown).</summary>
    public Chains.SpaceEstimate? Space { get; init; }

    public override string ToString()
    {
        var layers = MergedLayers.Count == 0 ? "nothing" : string.Join(", ", MergedLayers.Select(l => l.Path));
        var text = $"pull {layers} into {Target.Path} on {Domain}/{Disk}";
        text += Base is null ? ", which then has no backing file" : $", then back it with {Base.Path}";
        if (Request.RemoveMergedLayers) text += ", then delete the pulled-in layers that no image uses";
        return text + Chains.SpaceEstimate.ActionSuffix(Space);
    }
}
