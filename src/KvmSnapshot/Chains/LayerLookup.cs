using System;
using System.Globalization;
using System.IO;
using System.Linq;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;

namespace KvmSnapshot.Chains;

/// <summary>
/// Finds the chain layer a user means by -Top or -Base, with one set of rules for offline and live chains: libvirt's
/// index notation (<c>vda[3]</c>, live chains only), a full or relative path, another spelling of the same file (a
/// symlink, a hard link), the backing name as an overlay records it, or a file name that only one layer has.
/// </summary>
internal static class LayerLookup
{
    public static ChainLayer Find(SnapshotChain chain, string given, string parameter)
    {
        if (string.IsNullOrWhiteSpace(given)) throw NotFound(chain, given, parameter, "no layer was named");
        var present = chain.Layers.Where(l => l.State == ChainLayerState.Present).ToList();

        // 1. libvirt's index notation, as virsh blockcommit --top vda[3] takes it.
        if (TryParseIndex(chain, given, out var index))
        {
            return present.FirstOrDefault(l => l.Index == index)
                ?? throw NotFound(chain, given, parameter, $"no layer of {chain.Domain}/{chain.Disk} has libvirt index {index}");
        }

        // 2. The same file: by path, then by identity (a symlink or another spelling of the same file).
        var full = Path.GetFullPath(given);
        var byPath = present.FirstOrDefault(l => string.Equals(l.Path, full, StringComparison.Ordinal) || string.Equals(l.Path, given, StringComparison.Ordinal));
        if (byPath is not null) return byPath;
        if (File.Exists(full))
        {
            var facts = HostFile.Describe(full);
            var same = present.FirstOrDefault(l => File.Exists(l.Path) && HostFile.Describe(l.Path).Identity == facts.Identity);
            if (same is not null) return same;
            // An existing file that is not in the chain: never guess another layer with the same file name.
            throw NotFound(chain, given, parameter, facts.IdentityProblem is { } problem
                ? $"'{full}' is not a layer of this chain by its path, and whether it is another name of one cannot be told ({problem})"
                : $"'{full}' is not a layer of this chain");
        }

        // 3. A relative name as recorded in the chain (relative to the overlay's directory), or a bare file name.
        var byRecordedName = present.Where(l => l.Position > 0
            && string.Equals(chain.Layers[l.Position - 1].BackingFile, given, StringComparison.Ordinal)).ToList();
        if (byRecordedName.Count == 1) return byRecordedName[0];
        var relativeToActive = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(chain.Path) ?? "/", given));
        var byActiveDir = present.FirstOrDefault(l => string.Equals(l.Path, relativeToActive, StringComparison.Ordinal));
        if (byActiveDir is not null) return byActiveDir;
        var name = Path.GetFileName(given);
        var byName = present.Where(l => string.Equals(l.Name, name, StringComparison.Ordinal)).ToList();
        if (byName.Count == 1) return byName[0];
        if (byName.Count > 1)
        {
            throw NotFound(chain, given, parameter,
                $"the name '{name}' matches several layers ({string.Join(", ", byName.Select(l => l.Path))}); give the full path");
        }
        throw NotFound(chain, given, parameter, $"no layer of this chain is named '{given}'");
    }

    private static bool TryParseIndex(SnapshotChain chain, string given, out int index)
    {
        index = 0;
        var open = given.IndexOf('[', StringComparison.Ordinal);
        return chain.Disk is not null && open > 0 && given.EndsWith(']') && given[..open] == chain.Disk
            && int.TryParse(given[(open + 1)..^1], NumberStyles.Integer, CultureInfo.InvariantCulture, out index);
    }

    private static KvmSnapshotException NotFound(SnapshotChain chain, string given, string parameter, string why)
    {
        var valid = string.Join(", ", chain.Layers.Where(l => l.State == ChainLayerState.Present)
            .Select(l => l.Index is { } i && chain.Disk is not null ? $"{chain.Disk}[{i}] {l.Path}" : l.Path));
        var owner = chain.Domain is null ? string.Empty : $" of {chain.Domain}/{chain.Disk}";
        return new(ErrorIds.ChainLayerNotFound, KvmErrorKind.ObjectNotFound, given,
            $"-{parameter} '{given}': {why}. Chain{owner}: {chain}. Its layers, active first: {valid}.");
    }
}
