using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.IO;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Libvirt;
using KvmSnapshot.Model;

namespace KvmSnapshot.Chains;

/// <summary>
/// The one answer to "who still uses this file", shared by the offline and the live engines. It consults:
/// the image files around a chain (the chain's folders and their sibling folders under the same parent, a few
/// levels deep), the target folders of libvirt's storage pools, the folders the user added (-SearchDirectory, all
/// the way down), every disk chain of every domain the libvirt of this host defines (running or not), and every
/// file a libvirt snapshot names (overlays, memory state, the disks it reverts to). Whatever could not be checked
/// is in <see cref="Gaps"/>: a file may only be deleted when there is no gap and no user.
/// </summary>
internal sealed class ImageUsage
{
    /// <summary>Levels of subfolders scanned below a chain folder's parent and below a pool's folder.</summary>
    public const int NeighbourDepth = 3;

    /// <summary>Directory entries looked at in one scan at most; a bigger tree is a gap, never a silent partial answer.</summary>
    public const long EntryBudget = 200_000;

    private readonly Func<FileIdentity, IEnumerable<string>> _scanUsers;
    private readonly Func<string, FileIdentity?> _identity;
    private readonly Dictionary<FileIdentity, List<string>> _chainUsers = new();
    private readonly Dictionary<FileIdentity, List<ImageReference>> _named = new();
    private readonly List<string> _gaps = new();

    private ImageUsage(StoreScan scan, HostImageReferences libvirt, IReadOnlyList<string> roots)
    {
        _scanUsers = scan.UsersOf;
        _identity = LocalIdentity;
        Libvirt = libvirt;
        ScannedRoots = roots;
        _gaps.AddRange(libvirt.Gaps);
        _gaps.AddRange(scan.Incomplete);
    }

    /// <summary>The pools' answer (a host that may be remote): files are named by path, and none is opened here.</summary>
    private ImageUsage(PoolCatalog pools, HostImageReferences libvirt)
    {
        _scanUsers = id => id.FallbackPath is { } p ? pools.UsersOf(p) : Array.Empty<string>();
        _identity = p => new FileIdentity(0, 0, p);
        Libvirt = libvirt;
        ScannedRoots = pools.Pools.Where(p => p.Active && p.TargetPath is not null).Select(p => p.TargetPath!).ToList();
        _gaps.AddRange(libvirt.Gaps);
        _gaps.AddRange(pools.Gaps);
    }

    /// <summary>
    /// Who uses the files of a host that may be remote, from its storage pools (<paramref name="pools"/>) and what its
    /// libvirt names (<paramref name="libvirt"/>), without opening a file. Each of <paramref name="subjects"/> (the
    /// files whose users matter) outside every active pool is a gap: who backs on it is unknown, never "nobody".
    /// </summary>
    public static ImageUsage FromPools(PoolCatalog pools, IEnumerable<string> subjects, HostImageReferences libvirt, IOperationContext ctx)
    {
        var usage = new ImageUsage(pools, libvirt);
        foreach (var path in subjects.Distinct(StringComparer.Ordinal))
        {
            if (pools.Unknown(path) is { } why) usage._gaps.Add(why);
        }
        foreach (var reference in libvirt.References)
        {
            var id = new FileIdentity(0, 0, reference.Path);
            if (!usage._named.TryGetValue(id, out var list)) usage._named[id] = list = new List<ImageReference>();
            list.Add(reference);
        }
        ctx.Verbose($"Checked who uses the images through the storage pools of {pools.Uri}: {pools.Pools.Sum(p => p.Volumes.Count)} volumes; "
            + $"{libvirt.References.Count} files named by libvirt.");
        return usage;
    }

    /// <summary>What libvirt was asked, and answered.</summary>
    public HostImageReferences Libvirt { get; }

    /// <summary>The folders whose images were read.</summary>
    public IReadOnlyList<string> ScannedRoots { get; }

    /// <summary>What could not be checked, and why. Not empty means: keep every file.</summary>
    public IReadOnlyList<string> Gaps => _gaps;

    /// <summary>
    /// Scans around <paramref name="chainFiles"/> (the files whose users matter and their chain) and asks
    /// <paramref name="libvirt"/>. <paramref name="catalog"/> should carry the formats libvirt records.
    /// </summary>
    public static ImageUsage Scan(IEnumerable<string> chainFiles, IEnumerable<string> searchDirectories, HostImageReferences libvirt,
        ImageCatalog catalog, IOperationContext ctx, long entryBudget = EntryBudget)
    {
        var roots = new List<(string Directory, int MaxDepth)>();
        foreach (var dir in chainFiles.Select(f => Path.GetDirectoryName(Path.GetFullPath(f))).OfType<string>().Distinct(StringComparer.Ordinal))
        {
            var parent = Path.GetDirectoryName(dir);
            // The chain's folder and its siblings (a template folder next to the guests' folders); never the whole file system.
            roots.Add(parent is null || parent == "/" ? (dir, NeighbourDepth) : (parent, NeighbourDepth));
        }
        roots.AddRange(libvirt.PoolDirectories.Select(p => (p, NeighbourDepth)));
        roots.AddRange(searchDirectories.Select(d => (Path.GetFullPath(d), int.MaxValue)));
        var distinct = roots.Where(r => Directory.Exists(r.Directory))
            .GroupBy(r => r.Directory, StringComparer.Ordinal)
            .Select(g => (g.Key, g.Max(r => r.MaxDepth)))
            .ToList();

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var scan = StoreScan.Run(distinct, ctx, catalog, entryBudget, missingRootsAreEmpty: true);
        var usage = new ImageUsage(scan, libvirt, distinct.Select(r => r.Item1).ToList());
        usage.AddLibvirtChains(catalog);
        ctx.Verbose($"Checked who uses the images: {scan.Images.Count} images under {string.Join(", ", usage.ScannedRoots)}; "
            + $"{libvirt.References.Count} files named by libvirt{(libvirt.Uri is null ? string.Empty : $" ({libvirt.Uri})")}; {watch.ElapsedMilliseconds} ms.");
        return usage;
    }

    /// <summary>Images (full paths) that use the file at <paramref name="path"/> as their backing file.</summary>
    public IReadOnlyList<string> ImageUsersOf(string path)
    {
        if (!TryIdentity(path, out var identity)) return Array.Empty<string>();
        var users = new SortedSet<string>(_scanUsers(identity), StringComparer.Ordinal);
        if (_chainUsers.TryGetValue(identity, out var more)) users.UnionWith(more);
        return users.ToList();
    }

    /// <summary>The libvirt domains and snapshots that name the file at <paramref name="path"/> directly.</summary>
    public IReadOnlyList<ImageReference> ReferencesTo(string path)
        => TryIdentity(path, out var identity) && _named.TryGetValue(identity, out var refs) ? refs : Array.Empty<ImageReference>();

    /// <summary>Everything that uses the file, in words; <paramref name="ignoring"/> lists images that do not count (they go too).</summary>
    /// <param name="ignoreReference">libvirt references that do not count either (a disk's own chain, which the job changes).</param>
    public IReadOnlyList<string> DescribeUsers(string path, ISet<string>? ignoring = null, Func<ImageReference, bool>? ignoreReference = null)
    {
        var users = ImageUsersOf(path).Where(u => ignoring is null || !ignoring.Contains(u)).Select(u => $"the backing file of {u}");
        var named = ReferencesTo(path).Where(r => ignoreReference is null || !ignoreReference(r)).Select(r => $"named by {r.Describe()}");
        return users.Concat(named).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Every disk chain libvirt knows of: each layer is used by the one above it, even outside the scanned folders.</summary>
    private void AddLibvirtChains(ImageCatalog catalog)
    {
        foreach (var reference in Libvirt.References)
        {
            if (!TryIdentity(reference.Path, out var identity)) continue;
            if (!_named.TryGetValue(identity, out var list)) _named[identity] = list = new List<ImageReference>();
            list.Add(reference);
        }
        var tops = Libvirt.References.Where(r => r.Kind is not ImageReferenceKind.SnapshotMemory).Select(r => r.Path).Distinct(StringComparer.Ordinal);
        foreach (var top in tops)
        {
            var node = catalog.Get(top, null);
            if (node is null || node.State != ChainLayerState.Present) continue;
            var chain = ChainResolver.Resolve(node, catalog);
            for (var i = 1; i < chain.Layers.Count; i++)
            {
                var layer = chain.Layers[i];
                if (layer.State != ChainLayerState.Present || !TryIdentity(layer.Path, out var below)) continue;
                if (!_chainUsers.TryGetValue(below, out var users)) _chainUsers[below] = users = new List<string>();
                if (!users.Contains(chain.Layers[i - 1].Path, StringComparer.Ordinal)) users.Add(chain.Layers[i - 1].Path);
            }
        }
    }

    private bool TryIdentity(string path, [MaybeNullWhen(false)] out FileIdentity identity)
    {
        identity = _identity(path);
        return identity is not null;
    }

    private static FileIdentity? LocalIdentity(string path)
    {
        var full = Path.GetFullPath(path);
        return File.Exists(full) ? HostFile.Describe(full).Identity : null;
    }
}
