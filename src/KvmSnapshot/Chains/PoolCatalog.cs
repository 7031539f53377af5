using System;
using System.Collections.Generic;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;

namespace KvmSnapshot.Chains;

/// <summary>
/// "Which images does this host keep, and which backs on which", from libvirt's storage pools and volumes rather than
/// from files: the answer is the daemon's, so it holds on any URI (a remote host's folders are never opened here).
/// Only what lies in an active pool is known; everything else is unknown, never unused (<see cref="Contains"/>).
/// </summary>
internal sealed class PoolCatalog
{
    private readonly Dictionary<string, StorageVolumeInfo> _byPath = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _users = new(StringComparer.Ordinal);
    private readonly List<string> _gaps = new();

    private PoolCatalog(string uri, IReadOnlyList<StoragePoolInfo> pools)
    {
        Uri = uri;
        Pools = pools;
        foreach (var pool in pools)
        {
            if (!pool.Active)
            {
                // Its images (and what they back on) cannot be listed while it is stopped.
                _gaps.Add(pool.Problem is null
                    ? $"storage pool '{pool.Name}' of {uri} is not active, so the images in it could not be listed"
                    : $"storage pool '{pool.Name}' of {uri} could not be read ({pool.Problem})");
                continue;
            }
            foreach (var v in pool.Volumes)
            {
                _byPath.TryAdd(v.Path, v);
                if (v.BackingPath is null) continue;
                if (!_users.TryGetValue(v.BackingPath, out var list)) _users[v.BackingPath] = list = new List<string>();
                if (!list.Contains(v.Path, StringComparer.Ordinal)) list.Add(v.Path);
            }
        }
        foreach (var list in _users.Values) list.Sort(StringComparer.Ordinal);
    }

    /// <summary>The connection the pools were read through.</summary>
    public string Uri { get; }

    public IReadOnlyList<StoragePoolInfo> Pools { get; }

    /// <summary>Pools whose volumes could not be listed: an image there may back on anything.</summary>
    public IReadOnlyList<string> Gaps => _gaps;

    /// <summary>Reads every pool of <paramref name="connection"/>, refreshing the active ones first.</summary>
    public static PoolCatalog Read(LibvirtConnection connection, IOperationContext ctx, bool refresh = true)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var catalog = new PoolCatalog(connection.Uri, StoragePools.List(connection, refresh, ctx.Verbose));
        ctx.Verbose($"Read {catalog._byPath.Count} volumes of {catalog.Pools.Count} storage pool(s) of {connection.Uri} in {watch.ElapsedMilliseconds} ms.");
        return catalog;
    }

    /// <summary>Whether <paramref name="path"/> is a volume of an active pool (so who backs on it is known).</summary>
    public bool Contains(string path) => _byPath.ContainsKey(path);

    public StorageVolumeInfo? Volume(string path) => _byPath.TryGetValue(path, out var v) ? v : null;

    /// <summary>Volumes (of any pool) whose backing file is <paramref name="path"/>.</summary>
    public IReadOnlyList<string> UsersOf(string path) => _users.TryGetValue(path, out var u) ? u : Array.Empty<string>();

    /// <summary>Why who backs on <paramref name="path"/> is unknown; null when it is a volume of an active pool.</summary>
    public string? Unknown(string path) => Contains(path) ? null : $"{path} is outside every active storage pool of {Uri}, so who backs on it is unknown";

    /// <summary>
    /// The forest of one pool, like -Directory gives a folder's: one chain per volume of the pool that no volume backs
    /// on, each followed through the volumes of every pool; a backing file outside every pool ends the chain as
    /// NotFollowed (and <paramref name="warn"/> names it).
    /// </summary>
    public IReadOnlyList<SnapshotChain> Forest(string pool, Action<string> warn)
    {
        var volumes = Pools.Where(p => p.Name == pool).SelectMany(p => p.Volumes).ToList();
        var chains = new List<SnapshotChain>();
        var covered = new HashSet<string>(StringComparer.Ordinal);
        var unknown = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var leaf in volumes.Where(v => UsersOf(v.Path).Count == 0).Concat(volumes))
        {
            if (covered.Contains(leaf.Path)) continue;
            var chain = Chain(leaf.Path, unknown);
            chains.Add(chain);
            covered.UnionWith(chain.Layers.Select(l => l.Path));
        }
        foreach (var path in unknown) warn($"{path} is outside every active storage pool of {Uri}: it is not followed, and who else backs on it is unknown.");
        return chains;
    }

    /// <summary>
    /// The chain from <paramref name="top"/> down through the volumes of every pool (a shut-off domain's disk on a
    /// remote host, whose domain XML names only the active image); a layer outside every pool ends it as NotFollowed,
    /// and <paramref name="warn"/> names it.
    /// </summary>
    public SnapshotChain ChainFrom(string top, Action<string> warn)
    {
        var unknown = new SortedSet<string>(StringComparer.Ordinal);
        var chain = Chain(top, unknown);
        foreach (var path in unknown) warn($"{path} is outside every active storage pool of {Uri}: the chain is not followed below it.");
        return chain;
    }

    private SnapshotChain Chain(string top, ISet<string> unknown)
    {
        var paths = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var loop = false;
        for (string? p = top; p is not null; p = Volume(p)?.BackingPath)
        {
            if (!seen.Add(p))
            {
                loop = true;
                paths.Add(p);
                break;
            }
            paths.Add(p);
            if (!Contains(p)) break;
        }
        var layers = new List<ChainLayer>();
        for (var i = 0; i < paths.Count; i++)
        {
            var v = Volume(paths[i]);
            var state = loop && i == paths.Count - 1 ? ChainLayerState.Loop : v is null ? ChainLayerState.NotFollowed : ChainLayerState.Present;
            if (state == ChainLayerState.NotFollowed) unknown.Add(paths[i]);
            layers.Add(new ChainLayer
            {
                Path = paths[i],
                Position = i,
                Role = ChainLayer.RoleAt(i, paths.Count),
                State = state,
                Format = v?.Format,
                FormatSource = v?.Format is null ? null : FormatSource.Libvirt,
                BackingFile = v?.BackingPath,
                BackingFormat = v?.BackingFormat,
                VirtualSize = v?.Capacity,
                ActualSize = v?.Allocation,
                ConnectionUri = Uri,
                ReferencedBy = UsersOf(paths[i]).ToList(),
            });
        }
        return new SnapshotChain(layers) { ConnectionUri = Uri };
    }
}
