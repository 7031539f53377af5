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
    {
        using var connection = LibvirtConnection.Get(connectionUri, ctx.Verbose);
        // The named pool first: an unknown name is StoragePoolNotFound before anything is refreshed.
        var named = StoragePools.List(connection, refresh: false, ctx.Verbose, pool).Single();
        if (!named.Active)
        {
            throw new KvmSnapshotException(ErrorIds.StoragePoolNotFound, KvmErrorKind.ObjectNotFound, pool,
                $"Storage pool '{pool}' of {connection.Uri} is not active, so its volumes cannot be listed.")
            {
                RecommendedAction = $"Start it (virsh -c '{connection.Uri}' pool-start {pool}).",
            };
        }
        var catalog = PoolCatalog.Read(connection, ctx);
        return catalog.Forest(named.Name, ctx.Warning);
    }
}
