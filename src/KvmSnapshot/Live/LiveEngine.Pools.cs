using System.Collections.Generic;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

// Chain facts through libvirt's storage pools: what a host (local or remote) keeps in a pool and which image backs on
// which, as its daemon reads them; nothing is opened on this side.
internal sealed partial class LiveEngine
{
    /// <summary>
    /// Get-KvmSnapshotChain -Pool: the forest of one storage pool, one chain per volume no volume backs on, followed
    /// through the volumes of every pool of the host (refreshed first). StoragePoolNotFound for an unknown pool and
    /// for a stopped one (its volumes cannot be listed: nothing of it is found).
    /// </summary>
    public IReadOnlyList<SnapshotChain> GetPoolChains(string? connectionUri, string pool, IOperationContext ctx)
        => GetPoolChains(connectionUri, new[] { pool }, ctx);

    /// <summary>The forests of several pools, the pools read (and refreshed) once.</summary>
    public IReadOnlyList<SnapshotChain> GetPoolChains(string? connectionUri, IReadOnlyList<string> pools, IOperationContext ctx)
    {
        using var connection = LibvirtConnection.Get(connectionUri, ctx.Verbose);
        var names = new List<string>();
        foreach (var pool in pools)
        {
            // Each named pool first: an unknown name is StoragePoolNotFound before anything is refreshed.
            var named = StoragePools.List(connection, refresh: false, ctx.Verbose, pool).Single();
            if (!named.Active)
            {
                throw new KvmSnapshotException(ErrorIds.StoragePoolNotFound, KvmErrorKind.ObjectNotFound, pool,
                    $"Storage pool '{pool}' of {connection.Uri} is not active, so its volumes cannot be listed.")
                {
                    RecommendedAction = $"Start it (virsh -c '{connection.Uri}' pool-start {pool}).",
                };
            }
            names.Add(named.Name);
        }
        if (names.Count == 0) return new List<SnapshotChain>();
        var catalog = PoolCatalog.Read(connection, ctx);
        return names.SelectMany(n => catalog.Forest(n, ctx.Warning)).ToList();
    }

    /// <summary>The names of the active storage pools of the connection (for -Pool wildcards and completion).</summary>
    public IReadOnlyList<string> GetPoolNames(string? connectionUri, IOperationContext ctx)
    {
        using var connection = LibvirtConnection.Get(connectionUri, ctx.Verbose);
        return StoragePools.List(connection, refresh: false, null).Where(p => p.Active).Select(p => p.Name).ToList();
    }
}
