using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;

namespace KvmSnapshot.Offline;

// Shortening chains offline: commit down (qemu-img commit + rebase -u) and pull up (safe qemu-img rebase).
internal sealed partial class OfflineEngine
{
    /// <summary>Validates a commit and returns what it would do, without changing anything (-WhatIf text, safety).</summary>
    public CommitPlan PlanCommit(CommitRequest request, IOperationContext ctx)
    {
        var references = LocalReferences(ctx);
        var catalog = NewCatalog(ctx, references);
        var full = ImageValidation.ExistingImage(request.Path);
        var chain = ReadChain(full, ctx, catalog, ImageValidation.GivenFormat(request.Format, full));
        ImageValidation.CompleteChain(chain, "commit");
        ImageValidation.FormatSafety(chain, request.Format is not null || request.Force, "commit");
        var top = request.Top is null ? chain.Active : LayerLookup.Find(chain, request.Top, "Top");
        if (top.Position == chain.Depth - 1)
        {
            throw new KvmSnapshotException(ErrorIds.ChainLayerNotFound, KvmErrorKind.InvalidArgument, top.Path,
                $"'{top.Path}' has no backing file to commit into. Chain: {chain}");
        }
        var baseLayer = request.Base is null ? chain.Layers[top.Position + 1] : LayerLookup.Find(chain, request.Base, "Base");
        if (baseLayer.Position <= top.Position)
        {
            throw new KvmSnapshotException(ErrorIds.ChainBaseAboveTop, KvmErrorKind.InvalidArgument, baseLayer.Path,
                $"-Base '{baseLayer.Name}' must be below -Top '{top.Name}' in the chain {chain}.");
        }
        var merged = chain.Layers.Skip(top.Position).Take(baseLayer.Position - top.Position).ToList();

        // Everything from just below Top down to Base reads differently after the commit: images outside the
        // chain that use one of those layers, and domains that name one, would see their disk change under them.
        var searchDirectories = request.SearchDirectories.Select(Path.GetFullPath).ToList();
        var usage = _images.Usage(PresentFiles(chain), searchDirectories, references, catalog, ctx);
        var changed = chain.Layers.Skip(top.Position + 1).Take(baseLayer.Position - top.Position).ToList();
        var affected = ChainGuard.AffectedImages(chain.Layers.Select(l => l.Path), changed.Where(l => l.State == ChainLayerState.Present).Select(l => l.Path), usage, null, null);
        ChainGuard.WarnAboutGaps(usage, ctx, "images there may use the layers this commit changes");
        if (affected.Count > 0)
        {
            var message = $"Committing {top.Name} into {baseLayer.Name} changes what {affected.Count} other image(s) see, because they use "
                + $"{baseLayer.Name} or a layer between it and {top.Name} as their backing file: {string.Join(", ", affected)}.";
            if (!request.Force)
            {
                throw new KvmSnapshotException(ErrorIds.ChainBaseShared, KvmErrorKind.InvalidOperation, baseLayer.Path, message)
                {
                    RecommendedAction = "Pull into the overlay instead (Invoke-KvmBlockPull), or use -Force if those images may change.",
                };
            }
            ctx.Warning(message + " Proceeding because of -Force.");
        }
        var stale = ChainGuard.StaleSnapshots(usage, catalog, top, baseLayer);
        if (stale.Count > 0) ctx.Warning(ChainGuard.StaleWarning(top, baseLayer, stale));
        var space = DiskSpace.ForLayers(merged, baseLayer.Path);
        if (!request.SkipSpaceCheck) space.Require(baseLayer.Path, $"commit {top.Name} into {baseLayer.Name}");

        return new CommitPlan
        {
            Chain = chain,
            Top = top,
            Base = baseLayer,
            Overlay = top.Position > 0 ? chain.Layers[top.Position - 1] : null,
            MergedLayers = merged,
            AffectedImages = affected,
            StaleSnapshots = stale,
            Space = space,
            RemoveMergedLayers = request.RemoveMergedLayers,
            SearchDirectories = searchDirectories,
            RemovalPreview = request.RemoveMergedLayers
                ? LayerRemovalPlan.Decide(merged.Select(l => l.Path).ToList(), usage, NeverDelete(chain), chain.Layers.Take(baseLayer.Position).Select(l => l.Path))
                : null,
        };
    }

    /// <summary>
    /// qemu-img commit -p -d -b base top (the merged data fingerprinted beside it); verify the base against it; then rebase -u the overlay above. With
    /// RemoveMergedLayers, the merged layers nothing uses any more are deleted afterwards, unless
    /// <paramref name="deferRemoval"/>: then the result's Removal says which may go and the caller deletes them one by one.
    /// </summary>
    public ChainOperationResult Commit(CommitPlan plan, IOperationContext ctx, bool deferRemoval = false)
    {
        RequireUnchanged(plan.Chain, ctx);
        var top = plan.Top;
        var baseLayer = plan.Base;

        // What the merged layers hold, mapped before the data step: the verification reads only that.
        using var check = MergedDataCheck.Capture(_qemuImg, plan.Chain, top, top.Position, baseLayer.Position, ctx);
        check?.StartReading(ctx);
        // -d keeps Top's clusters: if anything below goes wrong, everything above Top still reads as before.
        _qemuImg.Commit(top.Path, top.Format!, baseLayer.Path, ctx);
        AfterDataStep?.Invoke(baseLayer.Path);
        if (!Verified(check, plan.Chain.Layers.Skip(baseLayer.Position).ToList(),
                () => _qemuImg.Compare(top.Path, top.Format, baseLayer.Path, baseLayer.Format, ctx), ctx))
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageContentMismatch, KvmErrorKind.InvalidResult, baseLayer.Path,
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

        var resultPath = _images.Exists(plan.Chain.Path) ? plan.Chain.Path : baseLayer.Path;
        return Finish(plan.Chain, resultPath, plan.MergedLayers, plan.RemoveMergedLayers, plan.SearchDirectories, deferRemoval, ctx);
    }

    public PullPlan PlanPull(PullRequest request, IOperationContext ctx)
    {
        var references = LocalReferences(ctx);
        var catalog = NewCatalog(ctx, references);
        var full = ImageValidation.ExistingImage(request.Path);
        var chain = ReadChain(full, ctx, catalog, ImageValidation.GivenFormat(request.Format, full));
        ImageValidation.CompleteChain(chain, "pull");
        ImageValidation.FormatSafety(chain, request.Format is not null || request.Force, "pull");
        var target = chain.Active;
        if (chain.Depth == 1)
        {
            throw new KvmSnapshotException(ErrorIds.ChainLayerNotFound, KvmErrorKind.InvalidArgument, target.Path,
                $"'{target.Path}' has no backing file; there is nothing to pull.");
        }
        ChainLayer? baseLayer = null;
        if (request.Base is not null)
        {
            baseLayer = LayerLookup.Find(chain, request.Base, "Base");
            if (baseLayer.Position == 0)
            {
                throw new KvmSnapshotException(ErrorIds.ChainBaseAboveTop, KvmErrorKind.InvalidArgument, baseLayer.Path,
                    $"-Base '{baseLayer.Name}' is the image being pulled into; it must be one of its backing files. Chain: {chain}");
            }
        }
        var end = baseLayer?.Position ?? chain.Depth;
        var merged = chain.Layers.Skip(1).Take(end - 1).ToList();
        var searchDirectories = request.SearchDirectories.Select(Path.GetFullPath).ToList();
        LayerRemovalPlan? preview = null;
        if (request.RemoveMergedLayers)
        {
            var usage = _images.Usage(PresentFiles(chain), searchDirectories, references, catalog, ctx);
            preview = LayerRemovalPlan.Decide(merged.Select(l => l.Path).ToList(), usage, NeverDelete(chain), new[] { target.Path });
        }
        var space = DiskSpace.ForLayers(merged, target.Path);
        if (!request.SkipSpaceCheck) space.Require(target.Path, $"pull into {target.Name}");
        return new PullPlan
        {
            Chain = chain,
            Target = target,
            Base = baseLayer,
            MergedLayers = merged,
            RemoveMergedLayers = request.RemoveMergedLayers,
            SearchDirectories = searchDirectories,
            RemovalPreview = preview,
            Space = space,
        };
    }

    /// <summary>Safe qemu-img rebase -p -b base -F fmt image (or -b "" to flatten); see <see cref="Commit"/> for <paramref name="deferRemoval"/>.</summary>
    public ChainOperationResult Pull(PullPlan plan, IOperationContext ctx, bool deferRemoval = false)
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
        var end = plan.Base?.Position ?? plan.Chain.Depth;
        using var check = MergedDataCheck.Capture(_qemuImg, plan.Chain, target, 1, end, ctx);
        check?.StartReading(ctx);
        _qemuImg.Rebase(target.Path, target.Format!, name, plan.Base?.Format, unsafeRebase: false, ctx);
        AfterDataStep?.Invoke(target.Path);

        // The old backing layers are untouched: the target must read exactly as it did through them.
        var oldBacking = plan.Chain.Layers[1];
        var oldView = QemuImg.QemuImgJsonFilename.WithBacking(target.Path, target.Format!, oldBacking.Path, oldBacking.Format!);
        var receiverChain = new[] { target }.Concat(plan.Chain.Layers.Skip(end)).ToList();
        if (!Verified(check, receiverChain, () => _qemuImg.Compare(target.Path, target.Format, oldView, null, ctx), ctx))
        {
            throw new KvmSnapshotException(ErrorIds.DiskImageContentMismatch, KvmErrorKind.InvalidResult, target.Path,
                $"After the pull, '{target.Path}' does not read as it did through its old backing file '{plan.Chain.Layers[1].Path}'; no layer was removed.");
        }
        return Finish(plan.Chain, target.Path, plan.MergedLayers, plan.RemoveMergedLayers, plan.SearchDirectories, deferRemoval, ctx);
    }

    /// <summary>Test seam: runs right after the data step of a commit or pull, before it is verified (the receiving image's path).</summary>
    internal Action<string>? AfterDataStep { get; set; }

    /// <summary>
    /// The merged data reads the same in the receiving image (<see cref="MergedDataCheck"/>); when that check cannot
    /// tell (formats or extents it does not read), <paramref name="fullCompare"/> compares the whole images.
    /// </summary>
    private bool Verified(MergedDataCheck? check, IReadOnlyList<ChainLayer> receiverChain, Func<bool> fullCompare, IOperationContext ctx)
    {
        if (check is not null)
        {
            MergedDataCheck.Outcome outcome;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                outcome = check.Verify(_qemuImg, receiverChain, ctx);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                // A merged layer the check reads the data from went away after the data step: another session
                // finished the same merge and removed it (-RemoveMergedLayers). The chain changed under this
                // operation, as RequireUnchanged says before the data step; re-point nothing.
                var file = (e as FileNotFoundException)?.FileName ?? e.Message;
                throw new KvmSnapshotException(ErrorIds.ChainLayerNotFound, KvmErrorKind.InvalidOperation, file,
                    $"The chain changed while the merge ran: '{file}', a layer whose data was merged into '{receiverChain[0].Path}', was removed "
                    + "(by another session?) before the merged data could be verified. This command re-pointed nothing; check the chain with Test-KvmSnapshotChain.", e);
            }
            if (outcome != MergedDataCheck.Outcome.CannotTell)
            {
                ctx.Verbose(outcome == MergedDataCheck.Outcome.Same
                    ? $"Verified the {check.DataBytes} bytes of merged data against '{receiverChain[0].Path}' (mapped from {check.MapSource}, then its bytes against the merged data's) in {clock.ElapsedMilliseconds} ms."
                    : check.Reason is { } reason ? $"The merged data cannot be verified in '{receiverChain[0].Path}': {reason}."
                    : $"The merged data differs in '{receiverChain[0].Path}' at guest offset {check.DifferenceAt}.");
                return outcome == MergedDataCheck.Outcome.Same;
            }
        }
        ctx.Verbose($"Comparing the whole images with qemu-img compare (the merged data could not be checked by its map).");
        return fullCompare();
    }

    /// <summary>
    /// Deletes, top down, the candidates of <paramref name="removal"/> that <paramref name="confirm"/> agrees to (the
    /// cmdlet asks per file); a declined layer keeps the layers below it that it uses. Returns the deleted files.
    /// </summary>
    internal IReadOnlyList<string> RemoveMergedLayers(LayerRemovalPlan removal, Func<string, bool> confirm, IOperationContext ctx)
    {
        var removed = new List<string>();
        foreach (var path in removal.Candidates)
        {
            if (!confirm(path))
            {
                removal.Decline(path);
                continue;
            }
            if (removal.Delete(path, ctx, out _)) removed.Add(path);
        }
        return removed;
    }

    /// <summary>
    /// After the data step: the chain of <paramref name="resultPath"/> as it is now and, when asked, which merged layers
    /// may go. libvirt is asked once, now: the layers have left the chain, other users have not.
    /// </summary>
    private ChainOperationResult Finish(SnapshotChain before, string resultPath, IReadOnlyList<ChainLayer> merged, bool remove,
        IReadOnlyList<string> searchDirectories, bool deferRemoval, IOperationContext ctx)
    {
        var references = LocalReferences(ctx);
        var catalog = NewCatalog(ctx, references);
        // The format the user vouched for still holds for the image they named.
        var after = ReadChain(resultPath, ctx, catalog, before.Active.FormatSource == FormatSource.Specified && resultPath == before.Path ? before.Active.Format : null);
        LayerRemovalPlan? removal = null;
        IReadOnlyList<string> removed = Array.Empty<string>();
        if (remove)
        {
            var usage = _images.Usage(PresentFiles(before).Concat(PresentFiles(after)), searchDirectories, references, catalog, ctx);
            removal = LayerRemovalPlan.Decide(merged.Select(l => l.Path).ToList(), usage, NeverDelete(before));
            if (!deferRemoval)
            {
                removed = RemoveMergedLayers(removal, _ => true, ctx);
                foreach (var (path, reason) in removal.Kept) ctx.Warning($"Kept merged layer {path}: {reason}");
            }
        }
        return new ChainOperationResult
        {
            Chain = after,
            MergedLayers = merged.Select(l => l.Path).ToList(),
            RemovedLayers = removed,
            KeptLayers = removal is null || deferRemoval ? Array.Empty<string>() : removal.Kept.Select(k => $"{k.Path}: {k.Reason}").ToList(),
            Removal = deferRemoval ? removal : null,
        };
    }

    /// <summary>The image the user named stays whatever happens to the layers around it.</summary>
    private static IReadOnlyDictionary<string, string> NeverDelete(SnapshotChain chain)
        => new Dictionary<string, string>(StringComparer.Ordinal) { [chain.Path] = "it is the image named by -Path" };

    private static IEnumerable<string> PresentFiles(SnapshotChain chain)
        => chain.Layers.Where(l => l.State == ChainLayerState.Present).Select(l => l.Path);

    /// <summary>The plan was made against this chain; refuse to act if the files changed since.</summary>
    private void RequireUnchanged(SnapshotChain planned, IOperationContext ctx)
    {
        var now = GetChain(planned.Path, ctx, planned.Active.FormatSource == FormatSource.Specified ? planned.Active.Format : null);
        if (!now.Layers.Select(l => (l.Path, l.State, l.BackingFile)).SequenceEqual(planned.Layers.Select(l => (l.Path, l.State, l.BackingFile))))
        {
            throw new KvmSnapshotException(ErrorIds.ChainLayerNotFound, KvmErrorKind.InvalidOperation, planned.Path,
                $"The chain changed since the operation was planned: it was {planned}, it is now {now}. Nothing was done.");
        }
    }
}
