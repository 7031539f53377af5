using System;
using System.Collections.Generic;
using KvmSnapshot.Engine;
using KvmSnapshot.Model;

namespace KvmSnapshot.Offline;

/// <summary>
/// The offline engine as the cmdlets see it: every operation on image files, no libvirt.
/// Methods validate their input first and change nothing when it is bad (they throw KvmSnapshotException
/// with an ErrorId from ErrorIds). Every state change is announced with ctx.Verbose (the exact qemu-img
/// command line) before it is made.
/// CONTRACT: cmdlets call exactly these signatures; add members freely, change these only with the cmdlet author.
/// </summary>
public sealed class OfflineEngine
{
    public static OfflineEngine Default { get; } = new();

    /// <summary>Get-KvmDiskImage: qemu-img info -U --output=json, typed.</summary>
    public DiskImage GetImage(string path, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>New-KvmDiskImage.</summary>
    public DiskImage CreateImage(NewImageRequest request, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>Convert-KvmDiskImage (qemu-img convert -p): raw↔qcow2, -c, flattening a chain.</summary>
    public DiskImage ConvertImage(ConvertImageRequest request, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>Get-KvmSnapshotChain -Path: follow backing files from the image down. Problems (missing, loop,
    /// json:/protocol names) end the chain with a layer in that State; they do not throw.</summary>
    public SnapshotChain GetChain(string path, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>Get-KvmSnapshotChain -Directory: one chain per leaf image (an image no other scanned image uses
    /// as its backing file), with ChainLayer.ReferencedBy filled in.</summary>
    public IReadOnlyList<SnapshotChain> ScanStore(string directory, bool recurse, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>Test-KvmSnapshotChain for one chain. <paramref name="store"/>: the scanned forest when known,
    /// used to report shared bases; null = scan the chain's own directories.</summary>
    public SnapshotChainTestResult TestChain(SnapshotChain chain, IReadOnlyList<SnapshotChain>? store, bool checkImages, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>Internal snapshots of a qcow2 file (native snapshot-table reader).</summary>
    public IReadOnlyList<InternalSnapshot> GetInternalSnapshots(string path, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>qemu-img snapshot -c. Raw images: SnapshotNeedsQcow2. Existing name: SnapshotExists.</summary>
    public InternalSnapshot CreateInternalSnapshot(string path, string name, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>qemu-img snapshot -a.</summary>
    public void ApplyInternalSnapshot(string path, string name, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>qemu-img snapshot -d.</summary>
    public void DeleteInternalSnapshot(string path, string name, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>Validates a commit and returns what it would do, without changing anything (-WhatIf text, safety).</summary>
    public CommitPlan PlanCommit(CommitRequest request, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>qemu-img commit -p -d -b base top; verify (qemu-img compare top base); then rebase -u the overlay above.</summary>
    public ChainOperationResult Commit(CommitPlan plan, IOperationContext ctx) => throw new NotImplementedException();

    public PullPlan PlanPull(PullRequest request, IOperationContext ctx) => throw new NotImplementedException();

    /// <summary>Safe qemu-img rebase -p -b base -F fmt image (or -b "" to flatten).</summary>
    public ChainOperationResult Pull(PullPlan plan, IOperationContext ctx) => throw new NotImplementedException();
}

/// <summary>A validated commit: every path resolved, safety checks passed (or forced).</summary>
public sealed class CommitPlan
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
    public bool RemoveMergedLayers { get; init; }
    public override string ToString() => Overlay is null
        ? $"commit {Top.Name} down into {Base.Name}"
        : $"commit {Top.Name} down into {Base.Name}, then point {Overlay.Name} at {Base.Name}";
}

public sealed class PullPlan
{
    public required SnapshotChain Chain { get; init; }
    /// <summary>The image receiving the data.</summary>
    public required ChainLayer Target { get; init; }
    /// <summary>The new backing file, or null to flatten.</summary>
    public ChainLayer? Base { get; init; }
    public required IReadOnlyList<ChainLayer> MergedLayers { get; init; }
    public bool RemoveMergedLayers { get; init; }
    public override string ToString() => Base is null
        ? $"pull all backing data into {Target.Name} (flatten)"
        : $"pull {string.Join(", ", System.Linq.Enumerable.Select(MergedLayers, l => l.Name))} into {Target.Name}, then back it with {Base.Name}";
}
