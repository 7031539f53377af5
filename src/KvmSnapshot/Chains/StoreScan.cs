using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using KvmSnapshot.Engine;
using KvmSnapshot.Errors;
using KvmSnapshot.Model;

namespace KvmSnapshot.Chains;

/// <summary>
/// The forest of an image store: every image found in some directories, every backing file they lead to (also
/// outside those directories), and for each image the images that use it as their backing file. Headers are read
/// natively, once per file; no subprocess runs for qcow2 or raw images.
/// </summary>
internal sealed class StoreScan
{
    private static readonly string[] RawExtensions = { ".img", ".raw" };

    /// <summary>Header reads in flight at once: one per core, at most four (they are memory copies, not waits).</summary>
    private static readonly int PrefetchThreads = Math.Clamp(Environment.ProcessorCount, 1, 4);

    private readonly ImageCatalog _catalog;
    private readonly List<ImageNode> _scanned = new();
    private readonly Dictionary<FileIdentity, ImageNode> _nodes = new();
    private readonly Dictionary<FileIdentity, List<string>> _users = new();
    /// <summary>Every name under which an image was read, so chain layers map back to files without another stat.</summary>
    private readonly Dictionary<string, FileIdentity> _identities = new(StringComparer.Ordinal);

    private readonly List<string> _incomplete = new();
    private long _entriesLeft;

    private StoreScan(ImageCatalog catalog, long entryBudget)
    {
        _catalog = catalog;
        _entriesLeft = entryBudget;
    }

    /// <summary>Directories that were not scanned completely, and why (an entry budget ran out, a listing failed).</summary>
    public IReadOnlyList<string> Incomplete => _incomplete;

    /// <summary>The images found in the scanned directories (not the backing files found through them).</summary>
    public IReadOnlyList<ImageNode> ScannedImages => _scanned;

    /// <summary>Every image read: the scanned ones and the backing files they lead to.</summary>
    public IReadOnlyCollection<ImageNode> Images => _nodes.Values;

    public ImageCatalog Catalog => _catalog;

    /// <summary>Scans <paramref name="directories"/> (and their subdirectories when <paramref name="recurse"/>).</summary>
    public static StoreScan Run(IEnumerable<string> directories, bool recurse, IOperationContext ctx, ImageCatalog? catalog = null)
    {
        // Not through the tuple overload: a store scan's first call should compile no generic code over value types.
        var roots = new List<ScanRoot>();
        foreach (var directory in directories) roots.Add(new ScanRoot(directory, recurse ? int.MaxValue : 0));
        return Run(roots, ctx, catalog, long.MaxValue, missingRootsAreEmpty: false);
    }

    /// <summary>
    /// Scans each root down to <c>MaxDepth</c> levels of subdirectories (0: the directory only). At most
    /// <paramref name="entryBudget"/> directory entries are looked at in all; what the budget left out is listed in
    /// <see cref="Incomplete"/>.
    /// </summary>
    /// <paramref name="missingRootsAreEmpty"/>: a root that does not exist (any more) is scanned as empty instead of
    /// being an error, for roots the user did not name (the folders around a chain, which another session may remove
    /// between their listing and the scan: nothing in a removed folder can use an image any more).
    public static StoreScan Run(IEnumerable<(string Directory, int MaxDepth)> roots, IOperationContext ctx, ImageCatalog? catalog = null,
        long entryBudget = long.MaxValue, bool missingRootsAreEmpty = false)
    {
        var list = new List<ScanRoot>();
        foreach (var (directory, depth) in roots) list.Add(new ScanRoot(directory, depth));
        return Run(list, ctx, catalog, entryBudget, missingRootsAreEmpty);
    }

    /// <summary>A directory to scan and how many levels of subdirectories below it (0: the directory only).</summary>
    private sealed record ScanRoot(string Directory, int MaxDepth);

    private static StoreScan Run(List<ScanRoot> roots, IOperationContext ctx, ImageCatalog? catalog, long entryBudget, bool missingRootsAreEmpty)
    {
        var scan = new StoreScan(catalog ?? new ImageCatalog(ctx), entryBudget);
        foreach (var (directory, depth) in roots)
        {
            var full = Path.GetFullPath(directory);
            if (!Directory.Exists(full))
            {
                if (File.Exists(full))
                {
                    throw new KvmSnapshotException(ErrorIds.DiskImageNotFound, KvmErrorKind.InvalidArgument, full,
                        $"'{full}' is a file; a store scan needs a directory.");
                }
                if (missingRootsAreEmpty)
                {
                    ctx.Verbose($"'{full}' is gone (removed while the check ran): nothing in it can use an image.");
                    continue;
                }
                throw new KvmSnapshotException(ErrorIds.DiskImageNotFound, KvmErrorKind.ObjectNotFound, full,
                    $"The directory '{full}' does not exist.");
            }
            scan.ScanDirectory(full, depth, ctx);
        }
        scan.FollowBackingFiles(ctx);
        return scan;
    }

    /// <summary>Full paths of the images (scanned or reached) whose backing file is <paramref name="image"/>.</summary>
    public IReadOnlyList<string> UsersOf(ImageNode image) => UsersOf(image.Identity);

    public IReadOnlyList<string> UsersOf(FileIdentity identity)
        => _users.TryGetValue(identity, out var users) ? users : Array.Empty<string>();

    /// <summary>Users of the image at <paramref name="path"/>, or none when it is not an image of this scan.</summary>
    public IReadOnlyList<string> UsersOf(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) return Array.Empty<string>();
        return UsersOf(HostFile.Describe(full).Identity);
    }

    /// <summary>
    /// One chain per leaf (a scanned image no other image uses), with ReferencedBy filled in on every layer. Images
    /// only reachable through a loop get a chain too, so every scanned image appears in some chain.
    /// </summary>
    public IReadOnlyList<SnapshotChain> Chains()
    {
        var chains = new List<SnapshotChain>();
        var covered = new HashSet<FileIdentity>();
        void Emit(ImageNode leaf)
        {
            var chain = ChainResolver.Resolve(leaf, _catalog, UsersOf);
            chains.Add(chain);
            foreach (var layer in chain.Layers)
            {
                if (_identities.TryGetValue(layer.Path, out var identity)) covered.Add(identity);
            }
        }

        var ordered = _scanned.OrderBy(n => n.Path, StringComparer.Ordinal).ToList();
        foreach (var node in ordered.Where(n => UsersOf(n).Count == 0)) Emit(node);
        foreach (var node in ordered)
        {
            if (!covered.Contains(node.Identity)) Emit(node);
        }
        return chains;
    }

    private void ScanDirectory(string directory, int maxDepth, IOperationContext ctx)
    {
        var (files, links) = ListFiles(directory, maxDepth, ctx);
        // The headers are read on several threads first (page-cache copies and system calls dominate a scan); the
        // decisions below then run in order on this thread, exactly as if each file were read in turn.
        _catalog.Prefetch(files.Count + links.Count == 0 ? files : files.Concat(links).ToList(), PrefetchThreads, ctx.Cancellation);
        // Real files first: when a symlink and its target are both in the store, the image keeps its real name.
        foreach (var file in files.Concat(links))
        {
            if (ctx.Cancellation.IsCancellationRequested)
            {
                throw new KvmSnapshotException(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, directory, "The store scan was cancelled.");
            }
            // qcow2 by its magic; raw only by extension here (a raw file any image names is read while following chains).
            var rawByName = RawExtensions.Contains(Path.GetExtension(file), StringComparer.OrdinalIgnoreCase);
            var node = _catalog.GetIfContent(file, content => content == ImageFormatProbe.Qcow2 || rawByName);
            if (node is null || node.State != ChainLayerState.Present && Directory.Exists(file)) continue;
            _identities[node.Path] = node.Identity;
            if (!_nodes.TryAdd(node.Identity, node)) continue; // a second name for a file already seen
            _scanned.Add(node);
        }
    }

    private sealed record PendingDirectory(string Path, int Depth);

    /// <summary>
    /// Regular files and symlinks to files, sorted. Recursion never enters a symlinked directory, so a link back up
    /// the tree cannot make the walk endless.
    /// </summary>
    private (List<string> Files, List<string> Links) ListFiles(string root, int maxDepth, IOperationContext ctx)
    {
        var files = new List<string>();
        var links = new List<string>();
        var directories = new List<string>();
        // Of a class, not of (directory, depth) tuples: generic code over a value type is compiled at first use.
        var pending = new Stack<PendingDirectory>();
        pending.Push(new PendingDirectory(root, 0));
        while (pending.Count > 0)
        {
            var (dir, depth) = pending.Pop();
            if (_entriesLeft <= 0)
            {
                _incomplete.Add($"'{dir}' was not scanned: the scan's limit of directory entries was reached");
                continue;
            }
            directories.Clear();
            try
            {
                // From each directory entry's own type (d_type): no stat per file.
                _entriesLeft -= Linux.DirectoryEntries.Read(dir, files, links, directories);
            }
            catch (DirectoryNotFoundException)
            {
                // Removed while the scan ran: nothing in it can use an image any more.
                continue;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                ctx.Warning($"'{dir}' could not be listed: {e.Message}");
                _incomplete.Add($"'{dir}' could not be listed: {e.Message}");
                continue;
            }
            if (depth >= maxDepth) continue;
            foreach (var subdirectory in directories)
            {
                // Symbolic links to directories are not among them: a link back up the tree cannot make the walk endless.
                pending.Push(new PendingDirectory(subdirectory, depth + 1));
            }
        }
        files.Sort(StringComparer.Ordinal);
        links.Sort(StringComparer.Ordinal);
        return (files, links);
    }

    /// <summary>Reads each backing file once (also outside the scanned directories) and records who uses whom.</summary>
    private void FollowBackingFiles(IOperationContext ctx)
    {
        var pending = new Queue<ImageNode>(_nodes.Values);
        var steps = 0;
        while (pending.Count > 0)
        {
            if ((++steps & 1023) == 0 && ctx.Cancellation.IsCancellationRequested)
            {
                throw new KvmSnapshotException(ErrorIds.OperationCancelled, KvmErrorKind.OperationStopped, null, "The store scan was cancelled.");
            }
            var node = pending.Dequeue();
            if (node.State != ChainLayerState.Present) continue;
            var backingPath = _catalog.BackingPath(node);
            if (backingPath is null) continue;
            var backing = _catalog.Get(backingPath, node.BackingFormat);
            if (backing is null) continue;
            // A host file named as raw backing data is no image of the store (ChainResolver marks it NotAnImage).
            if (backing.NotAnImageReason is not null && backing.FormatSource != Model.FormatSource.Libvirt) continue;
            _identities[backing.Path] = backing.Identity;
            if (!_users.TryGetValue(backing.Identity, out var users)) _users[backing.Identity] = users = new List<string>();
            users.Add(node.Path);
            if (_nodes.TryAdd(backing.Identity, backing)) pending.Enqueue(backing);
        }
        foreach (var users in _users.Values) users.Sort(StringComparer.Ordinal);
    }
}
