using System;
using System.Collections.Generic;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

// What a commit or pull must leave alone: images outside the chain that use its base or merged layers, and which merged
// layers may be deleted afterwards. Locally from the files around the chain; on a remote host from its storage pools
// (PoolCatalog), where a layer outside every pool is unknown and kept.
internal sealed partial class LiveEngine
{
    /// <summary>
    /// Committing changes Base, so every image outside this chain that uses Base, or a layer between it and Top,
    /// would see its disk change (a branch abandoned by a revert shares the frozen image; another domain's overlay on a
    /// template), and so would another domain whose disk names one of them. Refused unless Force. Snapshots whose
    /// content the commit changes are named in a warning.
    /// </summary>
    private ImageUsage? GuardSharedBase(LibvirtDomain dom, SnapshotChain chain, ChainLayer top, ChainLayer baseLayer, bool force, IOperationContext ctx)
    {
        var changed = chain.Layers.Skip(top.Position + 1).Take(baseLayer.Position - top.Position).Select(l => l.Path).ToList();
        ImageUsage usage;
        ImageCatalog? catalog = null;
        PoolCatalog? pools = null;
        if (dom.Connection.IsLocal)
        {
            (usage, catalog) = UsageAround(dom, chain.Layers.Select(l => l.Path), ctx);
        }
        else
        {
            var remote = RemoteUsage(dom, changed, ctx);
            (usage, pools) = (remote.Usage, remote.Store.Pools);
        }
        var users = ChainGuard.AffectedImages(chain.Layers.Select(l => l.Path), changed, usage, dom.Name, chain.Disk, dom.Connection.IsLocal);
        ChainGuard.WarnAboutGaps(usage, ctx, "images there may use the layers this commit changes");
        if (users.Count > 0)
        {
            var message = $"Committing {top.Name} into {baseLayer.Name} changes what {users.Count} image(s) outside {dom.Name}/{chain.Disk}'s chain see, "
                + $"because they use {baseLayer.Name} or a layer between it and {top.Name} as their backing file: {string.Join(", ", users)}.";
            if (!force)
            {
                throw new KvmSnapshotException(ErrorIds.ChainBaseShared, KvmErrorKind.InvalidOperation, baseLayer.Path, message + " Nothing was started.")
                {
                    RecommendedAction = "Pull into the active layer instead (Invoke-KvmBlockPull), or use -Force if those images may change.",
                };
            }
            ctx.Warning(message + " Proceeding because of -Force.");
        }
        // Which snapshots read Base: locally from their chains' headers, on a remote host from its pools' volumes (a chain
        // that leaves every pool first is named as unknown).
        var unknown = new List<string>();
        var stale = catalog is not null ? ChainGuard.StaleSnapshots(usage, catalog, top, baseLayer)
            : ChainGuard.StaleSnapshots(usage, pools!, top, baseLayer, dom.Name, unknown);
        if (stale.Count > 0) ctx.Warning(ChainGuard.StaleWarning(top, baseLayer, stale));
        if (unknown.Count > 0) ctx.Warning(ChainGuard.StaleUnknownWarning(top, baseLayer, unknown));
        return usage;
    }

    /// <summary>
    /// For -WhatIf: the merged layers that would be deleted if nothing changes until the job ends. The disk's own
    /// chain does not count as a user: the job takes the merged layers out of it (the layers from the top down to
    /// <paramref name="goingAwayBelow"/> stop using them).
    /// </summary>
    private LayerRemovalPlan RemovalPreview(LibvirtDomain dom, SnapshotChain chain, IReadOnlyList<ChainLayer> merged, int goingAwayBelow, ImageUsage? usage)
    {
        var paths = merged.Where(l => l.State == ChainLayerState.Present).Select(l => l.Path).ToList();
        IImageStore? store = null;
        if (!dom.Connection.IsLocal)
        {
            (usage, store) = RemoteUsage(dom, paths, NullOperationContext.Instance);
        }
        usage ??= UsageAround(dom, chain.Layers.Select(l => l.Path), NullOperationContext.Instance).Usage;
        var disk = chain.Disk;
        return LayerRemovalPlan.Decide(paths, usage, new Dictionary<string, string>(StringComparer.Ordinal),
            chain.Layers.Take(goingAwayBelow).Concat(merged).Select(l => l.Path),
            r => r.Domain == dom.Name && r.Disk == disk && r.Kind is ImageReferenceKind.DomainDisk or ImageReferenceKind.DomainBackingStore, store);
    }

    /// <summary>Who uses the images around <paramref name="files"/>, as the libvirt of the domain's (local) host sees them.</summary>
    private (ImageUsage Usage, ImageCatalog Catalog) UsageAround(LibvirtDomain dom, IEnumerable<string> files, IOperationContext ctx)
    {
        var (references, catalog) = LocalImageFacts(dom, ctx);
        return (_images.Usage(files, Array.Empty<string>(), references, catalog, ctx), catalog);
    }

    /// <summary>
    /// Who uses <paramref name="subjects"/> on the domain's host as its storage pools (refreshed first) and its libvirt
    /// say, without opening a file here: the answer for a remote connection. A subject outside every pool is a gap.
    /// </summary>
    private static (ImageUsage Usage, StoragePoolImageStore Store) RemoteUsage(LibvirtDomain dom, IReadOnlyList<string> subjects, IOperationContext ctx)
    {
        var store = StoragePoolImageStore.Read(dom.Connection, ctx);
        var references = HostImageReferences.Collect(dom.Connection);
        return (ImageUsage.FromPools(store.Pools, subjects, references, ctx), store);
    }

    /// <summary>What the libvirt of the domain's (local) host names, and a catalog that opens those files as it records them.</summary>
    private (HostImageReferences References, ImageCatalog Catalog) LocalImageFacts(LibvirtDomain dom, IOperationContext ctx)
    {
        var references = HostImageReferences.Collect(dom.Connection);
        return (references, _images.NewCatalog(ctx, known: KnownFormats.From(references)));
    }

    /// <summary>
    /// After a finished commit or pull: which merged layers nothing uses any more (no chain of any domain, no
    /// snapshot, no image around them). Handed to <paramref name="onPlan"/> when given (the cmdlet asks per file);
    /// otherwise every such layer is deleted and every kept one is a warning.
    /// </summary>
    private void RemoveMergedLayers(LibvirtDomain dom, IReadOnlyList<ChainLayer> merged, Action<LayerRemovalPlan>? onPlan, IOperationContext ctx)
    {
        var paths = merged.Where(l => l.State == ChainLayerState.Present).Select(l => l.Path).ToList();
        LayerRemovalPlan plan;
        if (!dom.Connection.IsLocal)
        {
            var (usage, store) = RemoteUsage(dom, paths, ctx);
            plan = LayerRemovalPlan.Decide(paths, usage, new Dictionary<string, string>(StringComparer.Ordinal), store: store);
        }
        else
        {
            var disks = DomainXml.Disks(dom.GetXml(), dom.Name).Where(d => d.Source is not null);
            var chainFiles = disks.SelectMany(d => LiveChains.Build(dom.Name, dom.Connection.Uri, true, d, ctx, null).Layers.Select(l => l.Path));
            plan = LayerRemovalPlan.Decide(paths, UsageAround(dom, paths.Concat(chainFiles), ctx).Usage, new Dictionary<string, string>(StringComparer.Ordinal));
        }
        if (onPlan is not null)
        {
            onPlan(plan);
            return;
        }
        foreach (var path in plan.Candidates) plan.Delete(path, ctx, out _);
        foreach (var (path, reason) in plan.Kept) ctx.Warning($"Kept merged layer {path}: {reason}");
    }
}
