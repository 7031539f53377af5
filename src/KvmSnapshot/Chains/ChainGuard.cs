using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;

namespace KvmSnapshot.Chains;

/// <summary>
/// What a change to some layers of a chain does outside the chain, from <see cref="ImageUsage"/>: the images that
/// would read differently, and the snapshots whose saved content would no longer be what was saved. One rule for the
/// offline and the live engines.
/// </summary>
internal static class ChainGuard
{
    /// <summary>
    /// Images outside the chain (<paramref name="chainFiles"/>) that use one of <paramref name="changed"/> as a backing
    /// file, and domain disks that name one of them, except the disk the chain belongs to (<paramref name="ownDomain"/>
    /// and <paramref name="ownDisk"/>; a null disk: any disk of that domain).
    /// </summary>
    /// <param name="localFiles">False for a remote host: its files are compared by path only, none is opened here.</param>
    public static IReadOnlyList<string> AffectedImages(IEnumerable<string> chainFiles, IEnumerable<string> changed, ImageUsage usage, string? ownDomain, string? ownDisk,
        bool localFiles = true)
    {
        var inChain = new HashSet<string>(chainFiles, StringComparer.Ordinal);
        // The chain's own files seen under another name (its folder reached through a symlink) are not other users.
        var inChainFiles = localFiles ? new HashSet<FileIdentity>(inChain.Where(File.Exists).Select(p => HostFile.Describe(p).Identity)) : new HashSet<FileIdentity>();
        bool InChain(string image) => inChain.Contains(image) || (localFiles && File.Exists(image) && inChainFiles.Contains(HostFile.Describe(image).Identity));
        var affected = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var path in changed.Distinct(StringComparer.Ordinal))
        {
            affected.UnionWith(usage.ImageUsersOf(path).Where(u => !InChain(u)));
            affected.UnionWith(usage.ReferencesTo(path)
                .Where(r => r.Kind is ImageReferenceKind.DomainDisk or ImageReferenceKind.DomainBackingStore)
                .Where(r => !(ownDomain is not null && r.Domain == ownDomain && (ownDisk is null || r.Disk == ownDisk)))
                .Select(r => r.Describe()));
        }
        return affected.ToList();
    }

    /// <summary>
    /// libvirt snapshots whose content a commit of <paramref name="top"/> into <paramref name="baseLayer"/> changes:
    /// the chain a snapshot reverts to reads Base, and either does not hold Top above it (an external snapshot taken
    /// before Top existed, so the merged data is new to it) or keeps its content inside a layer (an internal snapshot,
    /// whose unallocated clusters fall through to Base).
    /// </summary>
    public static IReadOnlyList<string> StaleSnapshots(ImageUsage usage, ImageCatalog catalog, ChainLayer top, ChainLayer baseLayer)
        => StaleSnapshots(usage, r => catalog.Get(r.Path, r.Format) is { State: ChainLayerState.Present } node ? ChainResolver.Resolve(node, catalog) : null,
            top, baseLayer, new List<string>());

    /// <summary>
    /// <see cref="StaleSnapshots(ImageUsage, ImageCatalog, ChainLayer, ChainLayer)"/> on a host known through its storage
    /// pools (a remote URI: no file is opened here). A snapshot whose chain leaves every pool before it reaches Base
    /// may read Base or not: it goes to <paramref name="unknown"/> (with the layer that is outside), never counted as safe.
    /// </summary>
    /// <remarks>
    /// Unknown counts the snapshots of <paramref name="domain"/> and those whose chain runs through a pool volume before
    /// it leaves the pools; a snapshot of another domain whose images all live outside the pools (another tenant's
    /// folder on a shared daemon) is as invisible to this check as to the shared-base guard, and not named.
    /// </remarks>
    public static IReadOnlyList<string> StaleSnapshots(ImageUsage usage, PoolCatalog pools, ChainLayer top, ChainLayer baseLayer, string domain,
        ICollection<string> unknown)
        => StaleSnapshots(usage, r =>
        {
            var chain = pools.ChainFrom(r.Path, _ => { });
            return r.Domain != domain && chain.Layers.All(l => l.State != ChainLayerState.Present) ? null : chain;
        }, top, baseLayer, unknown);

    private static IReadOnlyList<string> StaleSnapshots(ImageUsage usage, Func<ImageReference, SnapshotChain?> chainOf, ChainLayer top, ChainLayer baseLayer,
        ICollection<string> unknown)
    {
        var stale = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var r in usage.Libvirt.References.Where(r => r.Kind == ImageReferenceKind.SnapshotDomainDisk && r.SnapshotMode is "internal" or "external"))
        {
            if (chainOf(r) is not { } chain) continue;
            var paths = chain.Layers.Select(l => l.Path).ToList();
            if (!paths.Contains(baseLayer.Path, StringComparer.Ordinal))
            {
                if (chain.Layers.LastOrDefault(l => l.State == ChainLayerState.NotFollowed) is { } outside)
                {
                    unknown.Add($"{r.Domain}/{r.Snapshot} ({outside.Path} is in no storage pool)");
                }
                continue;
            }
            if (r.SnapshotMode == "external" && paths.Contains(top.Path, StringComparer.Ordinal)) continue;
            stale.Add($"{r.Domain}/{r.Snapshot}");
        }
        return stale.ToList();
    }

    /// <summary>The warning for snapshots a commit may or may not change: their chain could not be followed to Base.</summary>
    public static string StaleUnknownWarning(ChainLayer top, ChainLayer baseLayer, IEnumerable<string> unknown)
        => $"Committing {top.Name} into {baseLayer.Name} may change the content of snapshot(s) whose chain could not be followed, "
            + $"because a layer is outside every storage pool of the host: {string.Join(", ", unknown.Distinct(StringComparer.Ordinal))}. "
            + "Whether they read " + baseLayer.Name + " is unknown.";

    /// <summary>
    /// What reverting <paramref name="target"/> to an internal snapshot (it then takes new writes) does to others: images
    /// that use it as their backing file (an overlay of a later external snapshot, which leaves every chain), external
    /// snapshots that froze it (their content would change), and other domains' chains that read it. A domain that has
    /// the file as its own disk is not harmed: that is the revert. <paramref name="reverting"/>: the snapshot itself.
    /// </summary>
    public static IReadOnlyList<string> RevertHarms(string target, ImageUsage usage, ImageCatalog catalog, (string Domain, string Snapshot)? reverting)
        => RevertHarms(target, usage, r => catalog.Get(r.Path, r.Format) is { State: ChainLayerState.Present } node ? ChainResolver.Resolve(node, catalog) : null, reverting);

    /// <summary>
    /// <see cref="RevertHarms(string, ImageUsage, ImageCatalog, ValueTuple{string, string}?)"/> on a host known through its
    /// storage pools (a remote URI): the external snapshots' chains are followed through the pools' volumes.
    /// </summary>
    public static IReadOnlyList<string> RevertHarms(string target, ImageUsage usage, PoolCatalog pools, (string Domain, string Snapshot)? reverting)
        => RevertHarms(target, usage, r => pools.ChainFrom(r.Path, _ => { }), reverting);

    private static IReadOnlyList<string> RevertHarms(string target, ImageUsage usage, Func<ImageReference, SnapshotChain?> chainOf, (string Domain, string Snapshot)? reverting)
    {
        var harmed = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var user in usage.ImageUsersOf(target))
        {
            harmed.Add($"{user} uses {target} as its backing file: it would read the writes made after the revert, and leave the chain");
        }
        foreach (var r in usage.Libvirt.References.Where(r => r.Kind == ImageReferenceKind.SnapshotDomainDisk && r.SnapshotMode == "external"))
        {
            if (reverting is { } own && r.Domain == own.Domain && r.Snapshot == own.Snapshot) continue;
            if (chainOf(r) is not { } chain) continue;
            if (chain.Layers.Any(l => string.Equals(l.Path, target, StringComparison.Ordinal)))
            {
                harmed.Add($"external snapshot {r.Domain}/{r.Snapshot} froze {target}; its content would change");
            }
        }
        foreach (var r in usage.ReferencesTo(target).Where(r => r.Kind == ImageReferenceKind.DomainBackingStore))
        {
            if (reverting is { } own && r.Domain == own.Domain) continue;
            harmed.Add($"{r.Describe()} reads {target}");
        }
        return harmed.ToList();
    }

    public static string StaleWarning(ChainLayer top, ChainLayer baseLayer, IReadOnlyList<string> stale)
        => $"Committing {top.Name} into {baseLayer.Name} changes the content of {stale.Count} snapshot(s) that read {baseLayer.Name}: "
            + $"{string.Join(", ", stale)}. Reverting to them afterwards gives a disk with data written after they were taken; "
            + "Restore-KvmSnapshot refuses that without -Force.";

    /// <summary>Says what the check could not see; the caller decides whether that blocks.</summary>
    public static void WarnAboutGaps(ImageUsage usage, IOperationContext ctx, string consequence)
    {
        foreach (var gap in usage.Gaps) ctx.Warning($"Not checked: {gap}; {consequence}.");
    }
}
