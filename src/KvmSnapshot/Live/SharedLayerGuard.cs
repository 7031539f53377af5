using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Chains;
using KvmSnapshot.Engine;
using KvmSnapshot.Model;

namespace KvmSnapshot.Live;

/// <summary>
/// Finds images outside a domain's chain that use one of its layers as their backing file: a branch abandoned by
/// a revert (which shares the frozen image with the new overlay), or another domain's overlay on a template.
/// Merging data into such a layer, or deleting it, would silently change or break those images. Only the
/// directories of the layers concerned are scanned (non-recursively); local connections only.
/// </summary>
internal static class SharedLayerGuard
{
    public static IReadOnlyList<string> UsersOutsideChain(IEnumerable<string> layers, IEnumerable<string> chainFiles, IOperationContext ctx)
    {
        var wanted = layers.Where(File.Exists).Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).ToList();
        if (wanted.Count == 0) return Array.Empty<string>();
        var inChain = new HashSet<string>(chainFiles.Select(Path.GetFullPath), StringComparer.Ordinal);
        var directories = wanted.Select(Path.GetDirectoryName).Where(d => d is not null && Directory.Exists(d)).Select(d => d!).Distinct(StringComparer.Ordinal);
        var scan = StoreScan.Run(directories, recurse: false, ctx);
        return wanted.SelectMany(scan.UsersOf)
            .Where(u => !inChain.Contains(u))
            .Distinct(StringComparer.Ordinal)
            .OrderBy(u => u, StringComparer.Ordinal)
            .ToList();
    }

    public static IEnumerable<string> Files(SnapshotChain chain) => chain.Layers.Select(l => l.Path);
}
