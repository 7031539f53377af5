using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;

namespace KvmSnapshot.Offline;

// Shortening chains offline: commit down (qemu-img commit + rebase -u) and pull up (safe qemu-img rebase).
public sealed partial class OfflineEngine
{
    /// <summary>Validates a commit and returns what it would do, without changing anything (-WhatIf text, safety).</summary>
    public CommitPlan PlanCommit(CommitRequest request, IOperationContext ctx)
    {
        var chain = GetChain(request.Path, ctx);
        ImageValidation.CompleteChain(chain, "commit");
        var top = request.Top is null ? chain.Active : LayerLookup.Find(chain, request.Top, "Top");
        if (top.Position == chain.Depth - 1)
        {
            throw new KvmSnapshotException(ErrorIds.ChainLayerNotFound, ErrorCategory.InvalidArgument, top.Path,
                $"'{top.Path}' has no backing file to commit into. Chain: {chain}");
        }
        var baseLayer = request.Base is null ? chain.Layers[top.Position + 1] : LayerLookup.Find(chain, request.Base, "Base");
        if (baseLayer.Position <= top.Position)
        {
            throw new KvmSnapshotException(ErrorIds.ChainBaseAboveTop, ErrorCategory.InvalidArgument, baseLayer.Path,
                $"-Base '{baseLayer.Name}' must be below -Top '{top.Name}' in the chain {chain}.");
        }
        var merged = chain.Layers.Skip(top.Position).Take(baseLayer.Position - top.Position).ToList();

        // Everything from just below Top down to Base reads differently after the commit: images outside the
        // chain that use one of those layers would see their disk change under them.
        var searchDirectories = request.SearchDirectories.Select(Path.GetFullPath).ToList();
        var scan = ScanAround(chain, searchDirectories, ctx);
        var inChain = new HashSet<string>(chain.Layers.Select(l => l.Path), StringComparer.Ordinal);
        var affected = chain.Layers.Skip(top.Position + 1).Take(baseLayer.Position - top.Position)
            .SelectMany(l => scan.UsersOf(l.Path))
            .Where(u => !inChain.Contains(u))
            .Distinct(StringComparer.Ordinal).OrderBy(u => u, StringComparer.Ordinal).ToList();
        if (affected.Count > 0)
        {
            var message = $"Committing {top.Name} into {baseLayer.Name} changes what {affected.Count} other image(s) see, because they use "
                + $"{baseLayer.Name} or a layer between it and {top.Name} as their backing file: {string.Join(", ", affected)}.";
            if (!request.Force)
            {
                throw new KvmSnapshotException(ErrorIds.ChainBaseShared, ErrorCategory.InvalidOperation, baseLayer.Path, message)
                {
                    RecommendedAction = "Pull into the overlay instead (Invoke-KvmBlockPull), or use -Force if those images may change.",
                };
            }
            ctx.Warning(message + " Proceeding because of -Force.");
        }

        return new CommitPlan
        {
            Chain = chain,
            Top = top,
            Base = baseLayer,
            Overlay = top.Position > 0 ? chain.Layers[top.Position - 1] : null,
            MergedLayers = merged,
            AffectedImages = affected,
            RemoveMergedLayers = request.RemoveMergedLayers,
            SearchDirectories = searchDirectories,
        };
    }

    /// <summary>qemu-img commit -p -d -b base top; verify (qemu-img compare top base); then rebase -u the overlay above.</summary>
    public ChainOperationResult Commit(CommitPlan plan, IOperationContext ctx)
    {
        RequireUnchanged(plan.Chain, ctx);
        var top = plan.Top;
        var baseLayer = plan.Base;

        // -d keeps Top's clusters: if anything below goes wrong, everything above Top still reads as before.
        _qemuImg.Commit(top.Path, top.Format!, baseLayer.Path, ctx);
        if (!_qemuImg.Compare(top.Path, top.Format, baseLayer.Path, baseLayer.Format, ctx))
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageContentMismatch, ErrorCategory.InvalidResult, baseLayer.Path,
                $"After committing, '{baseLayer.Path}' does not read the same as '{top.Path}'. Nothing was rebased; the chain above "
                + $"'{top.Name}' is unchanged, but '{baseLayer.Name}' holds part of the data.");
        }

        if (plan.Overlay is { } overlay)
        {
            var name = overlay.BackingFile is not null && BackingName.IsRelative(overlay.BackingFile)
                ? BackingName.MakeRelative(overlay.Path, baseLayer.Path)
                : baseLayer.Path;
            // The data is already in Base (verified above), so only the overlay's header changes.
            _qemuImg.Rebase(overlay.Path, overlay.Format!, name, baseLayer.Format, unsafeRebase: true, ctx);
        }

        var (removed, kept) = plan.RemoveMergedLayers
            ? RemoveUnusedLayers(plan.Chain, plan.MergedLayers, plan.SearchDirectories, ctx)
            : (new List<string>(), new List<string>());
        var resultPath = File.Exists(plan.Chain.Path) ? plan.Chain.Path : baseLayer.Path;
        return new ChainOperationResult
        {
            Chain = GetChain(resultPath, ctx),
            MergedLayers = plan.MergedLayers.Select(l => l.Path).ToList(),
            RemovedLayers = removed,
            KeptLayers = kept,
        };
    }

    public PullPlan PlanPull(PullRequest request, IOperationContext ctx)
    {
        var chain = GetChain(request.Path, ctx);
        ImageValidation.CompleteChain(chain, "pull");
        var target = chain.Active;
        if (chain.Depth == 1)
        {
            throw new KvmSnapshotException(ErrorIds.ChainLayerNotFound, ErrorCategory.InvalidArgument, target.Path,
                $"'{target.Path}' has no backing file; there is nothing to pull.");
        }
        ChainLayer? baseLayer = null;
        if (request.Base is not null)
        {
            baseLayer = LayerLookup.Find(chain, request.Base, "Base");
            if (baseLayer.Position == 0)
            {
                throw new KvmSnapshotException(ErrorIds.ChainBaseAboveTop, ErrorCategory.InvalidArgument, baseLayer.Path,
                    $"-Base '{baseLayer.Name}' is the image being pulled into; it must be one of its backing files. Chain: {chain}");
            }
        }
        var end = baseLayer?.Position ?? chain.Depth;
        return new PullPlan
        {
            Chain = chain,
            Target = target,
            Base = baseLayer,
            MergedLayers = chain.Layers.Skip(1).Take(end - 1).ToList(),
            RemoveMergedLayers = request.RemoveMergedLayers,
            SearchDirectories = request.SearchDirectories.Select(Path.GetFullPath).ToList(),
        };
    }

    /// <summary>Safe qemu-img rebase -p -b base -F fmt image (or -b "" to flatten).</summary>
    public ChainOperationResult Pull(PullPlan plan, IOperationContext ctx)
    {
        RequireUnchanged(plan.Chain, ctx);
        var target = plan.Target;
        string name;
        if (plan.Base is null)
        {
            name = string.Empty;
        }
        else
        {
            name = target.BackingFile is not null && BackingName.IsRelative(target.BackingFile)
                ? BackingName.MakeRelative(target.Path, plan.Base.Path)
                : plan.Base.Path;
        }
        _qemuImg.Rebase(target.Path, target.Format!, name, plan.Base?.Format, unsafeRebase: false, ctx);

        // The old backing layers are untouched: the target must read exactly as it did through them.
        var oldBacking = plan.Chain.Layers[1];
        var oldView = QemuImg.QemuImgJsonFilename.WithBacking(target.Path, target.Format!, oldBacking.Path, oldBacking.Format!);
        if (!_qemuImg.Compare(target.Path, target.Format, oldView, null, ctx))
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageContentMismatch, ErrorCategory.InvalidResult, target.Path,
                $"After the pull, '{target.Path}' does not read as it did through its old backing file '{plan.Chain.Layers[1].Path}'; no layer was removed.");
        }

        var (removed, kept) = plan.RemoveMergedLayers
            ? RemoveUnusedLayers(plan.Chain, plan.MergedLayers, plan.SearchDirectories, ctx)
            : (new List<string>(), new List<string>());
        return new ChainOperationResult
        {
            Chain = GetChain(target.Path, ctx),
            MergedLayers = plan.MergedLayers.Select(l => l.Path).ToList(),
            RemovedLayers = removed,
            KeptLayers = kept,
        };
    }

    /// <summary>The chain's own directories (not recursed) and the user's extra ones (recursed).</summary>
    private StoreScan ScanAround(SnapshotChain chain, IReadOnlyList<string> searchDirectories, IOperationContext ctx)
    {
        var roots = chain.Layers.Where(l => l.State == ChainLayerState.Present)
            .Select(l => Path.GetDirectoryName(l.Path)).OfType<string>()
            .Distinct(StringComparer.Ordinal)
            .Select(d => (d, false))
            .Concat(searchDirectories.Select(d => (d, true)))
            .ToList();
        return StoreScan.Run(roots, ctx, new ImageCatalog(ctx, _qemuImg));
    }

    /// <summary>The plan was made against this chain; refuse to act if the files changed since.</summary>
    private void RequireUnchanged(SnapshotChain planned, IOperationContext ctx)
    {
        var now = GetChain(planned.Path, ctx);
        if (!now.Layers.Select(l => (l.Path, l.State, l.BackingFile)).SequenceEqual(planned.Layers.Select(l => (l.Path, l.State, l.BackingFile))))
        {
            throw new KvmSnapshotException(ErrorIds.ChainLayerNotFound, ErrorCategory.InvalidOperation, planned.Path,
                $"The chain changed since the operation was planned: it was {planned}, it is now {now}. Nothing was done.");
        }
    }

    /// <summary>Deletes merged layers that no image around the chain uses any more (see MergedLayerRemoval).</summary>
    private (List<string> Removed, List<string> Kept) RemoveUnusedLayers(SnapshotChain chain, IReadOnlyList<ChainLayer> merged,
        IReadOnlyList<string> searchDirectories, IOperationContext ctx)
        => MergedLayerRemoval.Remove(merged.Select(l => l.Path), ScanAround(chain, searchDirectories, ctx), ctx);
}
