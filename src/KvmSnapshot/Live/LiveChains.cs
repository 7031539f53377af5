using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

/// <summary>
/// A domain disk's backing chain. A running domain's live XML lists every layer with libvirt's index
/// (<c>&lt;source index&gt;</c>, <c>&lt;backingStore index&gt;</c>); a shut-off domain's XML names only the active image,
/// so then the chain is followed through the image headers, as the offline cmdlets do (local connections only).
/// Local image files are read for what libvirt's XML does not say: the backing name as recorded, sizes.
/// </summary>
internal static class LiveChains
{
    public static SnapshotChain Build(string domain, string? uri, bool local, DiskXml disk, IOperationContext ctx, ImageCatalog? catalog)
    {
        catalog = local ? catalog ?? LocalImageStore.Instance.NewCatalog(ctx) : null;
        var layers = new List<(string Path, string? Format, int? Index, bool Network)>();
        if (disk.Source is not null) layers.Add((disk.Source, disk.Format, disk.Index, disk.Type is "network"));
        foreach (var b in disk.Backing) layers.Add((b.Source ?? "(unnamed)", b.Format, b.Index, b.Type is "network" || b.Source is null));

        if (!disk.BackingKnown && local && disk.IsLocalFile && disk.Source is not null && LocalImageStore.Instance.Exists(disk.Source))
        {
            // libvirt did not describe the chain (inactive XML): follow it through the headers.
            // The format libvirt records, never the content's: a guest can write any header into its raw disk.
            var offline = ChainResolver.Resolve(disk.Source, catalog!, format: disk.Format, formatSource: FormatSource.Libvirt);
            return new SnapshotChain(offline.Layers.Select(l => WithDomain(l, domain, disk.Target, uri, null)).ToList())
            {
                Domain = domain, Disk = disk.Target, ConnectionUri = uri,
            };
        }

        var result = new List<ChainLayer>();
        for (var i = 0; i < layers.Count; i++)
        {
            var (path, format, index, network) = layers[i];
            var next = i + 1 < layers.Count ? layers[i + 1] : default;
            var role = ChainLayer.RoleAt(i, layers.Count);
            ImageNode? node = null;
            var state = ChainLayerState.Present;
            if (network)
            {
                state = ChainLayerState.NotFollowed;
            }
            else if (local)
            {
                node = format is null ? catalog!.Get(path, null) : catalog!.GetAs(path, format, FormatSource.Libvirt);
                state = node?.State ?? ChainLayerState.Missing;
            }
            result.Add(new ChainLayer
            {
                Path = path,
                Position = i,
                Role = role,
                State = state,
                Format = format ?? node?.Format,
                FormatSource = format is not null ? FormatSource.Libvirt : node?.FormatSource,
                ContentFormat = node?.ContentFormat,
                BackingFile = node?.BackingFile ?? (i + 1 < layers.Count ? next.Path : null),
                BackingFormat = node?.BackingFormat ?? (i + 1 < layers.Count ? next.Format : null),
                VirtualSize = node?.VirtualSize,
                ActualSize = node?.ActualSize,
                Domain = domain,
                Disk = disk.Target,
                ConnectionUri = uri,
                Index = index,
            });
        }
        return new SnapshotChain(result) { Domain = domain, Disk = disk.Target, ConnectionUri = uri };
    }

    /// <summary>A disk's chain from its host's storage pools (a remote host: no file is opened here).</summary>
    public static SnapshotChain FromPools(string domain, string uri, DiskXml disk, PoolCatalog pools, IOperationContext ctx)
    {
        var chain = pools.ChainFrom(disk.Source!, ctx.Warning);
        return new SnapshotChain(chain.Layers.Select(l => WithDomain(l, domain, disk.Target, uri, null)).ToList())
        {
            Domain = domain, Disk = disk.Target, ConnectionUri = uri,
        };
    }

    private static ChainLayer WithDomain(ChainLayer l, string domain, string disk, string? uri, int? index)
        => l with { Domain = domain, Disk = disk, ConnectionUri = uri, Index = index };

    /// <summary>The layer a user named (see <see cref="LayerLookup"/>); ChainLayerNotFound when the chain has no such layer.</summary>
    public static ChainLayer Find(SnapshotChain chain, string name, string what) => LayerLookup.Find(chain, name, what);
}
